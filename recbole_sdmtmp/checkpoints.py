"""A checkpoint knows what it was trained as, and is loaded only into that.

RecBole loads any state dict whose parameter names fit: a BPR checkpoint evaluated as LightGCN
(the same two embedding tables) gave metrics without a word, and other mismatches ended in a
``load_state_dict`` traceback. The checkpoint's Config already records the model, dataset,
protocol and settings; :func:`stamp` adds what the data was (the ``.inter``'s sha256 from its
summary, and the topic fit's id for a model that reads topics), and :func:`check_checkpoint`,
:func:`check_data` and :func:`check_shapes` refuse a checkpoint used with anything else, naming
what differs, in one ``CheckpointMismatch`` paragraph. :func:`checked_data` checks the data
itself (``dataset_preprocess.verify``) before a checkpoint is used on it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import recbole
import torch
import yaml
from recbole.utils.argument_list import evaluation_arguments, general_arguments, training_arguments

from dataset_preprocess import verify
from dataset_preprocess.pipeline import RawDataMissing
from recbole_sdmtmp.config import PROPERTIES, ensure_prepared
from recbole_sdmtmp.data.topic_fit import current_topic_fit
from recbole_sdmtmp.registry import needs_topics

IDENTITY_KEY = "trained_on"
# Settings that change how a model is trained or evaluated, never what a trained model computes.
NOT_THE_MODEL = set(general_arguments) | set(training_arguments) | set(evaluation_arguments) | {
    "show_progress", "checkpoint_dir", "data_path", "device", "gpu_id", "seed", "reproducibility",
}


class CheckpointMismatch(ValueError):
    """A checkpoint that cannot be read, or was trained as something else than it is used for."""


def data_identity(config, topics_fit: str | None = None) -> dict[str, str | None]:
    """What the run reads: the ``.inter``'s sha256 as its summary records it, and the topic fit's
    id for a model that reads topics (None where there is none): ``topics_fit`` where the caller
    knows it, else the fit of the run's training split (:mod:`recbole_sdmtmp.data.topic_fit`)."""
    folder = Path(config["data_path"])
    summary = folder / f"{config['dataset']}.summary.json"
    try:
        inter = json.loads(summary.read_text(encoding="utf-8")).get("inter_sha256")
    except (OSError, ValueError, AttributeError):
        inter = None
    fit = None
    if needs_topics(config):
        fit = topics_fit or current_topic_fit(config)
    return {"inter_sha256": inter, "topic_fit": fit}


def stamp(config, topics_fit: str | None = None) -> None:
    """Record the data identity in ``config``: RecBole writes the Config into the checkpoint."""
    config[IDENTITY_KEY] = data_identity(config, topics_fit)


def read_checkpoint(path: str | Path) -> dict:
    """The saved state of ``path``; a missing, cut or foreign file is one paragraph."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatch(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            AttributeError, ModuleNotFoundError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise CheckpointMismatch(f"checkpoint {path} cannot be read ({reason}): it was cut short or "
                                 "is not a saved model; train again or use another checkpoint") from None
    if not isinstance(state, dict) or "state_dict" not in state or "config" not in state:
        raise CheckpointMismatch(f"checkpoint {path} is not a model saved by this project or RecBole "
                                 "(no state_dict and config)")
    return state


def model_settings(model: str) -> set[str]:
    """The keys of ``model``'s own YAML files (RecBole's and the project's) that shape what the
    trained model computes."""
    keys = set()
    for path in (Path(recbole.__file__).parent / "properties" / "model" / f"{model}.yaml",
                 PROPERTIES / "model" / f"{model}.yaml"):
        if path.is_file():
            keys |= set(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    # (MAX_ITEM_LIST_LENGTH is cut to the data's longest history when the data is loaded: the
    # data's identity and the parameters' shapes stand for it)
    return keys - NOT_THE_MODEL - {"MAX_ITEM_LIST_LENGTH"}


def _setting(config, key):
    return config[key] if key in config else None


def differences(saved, config) -> list[str]:
    """What differs between the Config a checkpoint was trained with and ``config``."""
    found = []
    for key in ("model", "dataset", "protocol"):
        if _setting(saved, key) != _setting(config, key):
            found.append(f"{key} {_setting(saved, key)} there, {_setting(config, key)} here")
    if found:
        return found  # the rest follows from these
    for key in sorted(model_settings(config["model"])):
        if _setting(saved, key) != _setting(config, key):
            found.append(f"{key}={_setting(saved, key)!r} there, {_setting(config, key)!r} here")
    return found + data_differences(saved, config)


def data_differences(saved, config) -> list[str]:
    """The data identity recorded at training against the data at hand (checkpoints written
    before it was recorded compare nothing here; :func:`check_shapes` still applies)."""
    recorded = _setting(saved, IDENTITY_KEY)
    if not isinstance(recorded, dict):
        return []
    now = data_identity(config)
    found = []
    if recorded.get("inter_sha256") and recorded["inter_sha256"] != now["inter_sha256"]:
        found.append(f"the atomic file {Path(config['data_path']) / (config['dataset'] + '.inter')} "
                     f"is not the one it was trained on (sha256 {recorded['inter_sha256'][:12]} there, "
                     f"{(now['inter_sha256'] or 'none')[:12]} here)")
    if recorded.get("topic_fit") and recorded["topic_fit"] != now["topic_fit"]:
        found.append(f"topic fit {recorded['topic_fit']} there, {now['topic_fit'] or 'none'} here")
    return found


def mismatch(path, found: list[str]) -> CheckpointMismatch:
    return CheckpointMismatch(f"checkpoint {path} was trained on something else than this run: "
                              f"{'; '.join(found)}. Use the checkpoint with the settings and data it "
                              "was trained on, or train again")


def check_checkpoint(path: str | Path, config) -> dict:
    """The saved state of ``path`` when it was trained as ``config`` describes the run, else
    :class:`CheckpointMismatch` naming what differs."""
    state = read_checkpoint(path)
    found = differences(state["config"], config)
    if found:
        raise mismatch(path, found)
    return state


def checked_data(config) -> None:
    """The dataset a checkpoint is used on, checked before it is trusted: a ``.inter`` or topic
    side-file changed since it was written is rebuilt from the raw file when that is at hand,
    else refused (``dataset_preprocess.verify``)."""
    problems = [p for p in verify.dataset_problem(Path(config["data_path"]), config["dataset"],
                                                  needs_topics(config)) if p]
    if problems:
        try:
            ensure_prepared(config)
        except RawDataMissing:
            raise verify.refusal(config["dataset"], problems) from None


def check_data(path: str | Path, config) -> None:
    """A checkpoint used with its own Config (``recommend``): the data at hand is the data it
    was trained on."""
    found = data_differences(config, config)  # recorded in the checkpoint's Config, against now
    if found:
        raise mismatch(path, found)


def check_shapes(path: str | Path, state_dict: dict, model: torch.nn.Module) -> None:
    """Every parameter of ``model`` is in ``state_dict`` with its shape, and nothing else is
    (a checkpoint of data with other users or items, written before data identities)."""
    own = model.state_dict()
    found = [f"{name} missing" for name in own if name not in state_dict]
    found += [f"{name} not in {type(model).__name__}" for name in state_dict if name not in own]
    found += [f"{name} of shape {tuple(state_dict[name].shape)} there, {tuple(tensor.shape)} here"
              for name, tensor in own.items()
              if name in state_dict and tuple(state_dict[name].shape) != tuple(tensor.shape)]
    if found:
        raise mismatch(path, found[:5] + ([f"{len(found) - 5} more"] if len(found) > 5 else []))
