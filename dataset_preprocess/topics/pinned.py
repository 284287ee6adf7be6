"""Pinned topic fits: the fits the committed results read, shipped so that any machine reads them.

A BERTopic fit does not carry over between machines: the encoder's float kernels differ by
instruction set, UMAP magnifies the last bits, and the same reviews give other topics (Instrument:
326 topics on one machine, 347 on another; docs/PREPROCESSING.md). Every SD-MTMP result records
the fit it read (:mod:`recbole_sdmtmp.experiments.fits`), so on a new machine each of them had to
be measured again. A pinned fit is the four side-files of one fit plus ``pin.json``, under
``results/topic_fits/<Name>/``. Preparing a dataset installs the pin instead of fitting when the
pin was made from the same raw file, the same ``.inter`` and the same fit settings; anything else
fits afresh, and ``--refit-topics`` always does. The default precision (``fastest``) takes the
pin's precision: a pin is used unless another precision is asked for by name.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dataset_preprocess.atomic_io import atomic_write, atomic_write_json
from dataset_preprocess.machine import cpu_description
from dataset_preprocess.topics.files import topic_file_paths, topic_fit_id

if TYPE_CHECKING:
    from dataset_preprocess.topics.fit import TopicConfig

logger = logging.getLogger(__name__)

PINNED_FITS_DIR = Path("results") / "topic_fits"  # relative to the working directory, as dataset/ is
PIN_FILE = "pin.json"
# Copied in this order: topics.json describes the others, so it lands last (as the fit writes it).
COPY_ORDER = ("topic_vec", "review_topic", "summary", "meta")


class BrokenPin(ValueError):
    """Pinned files that no longer hash to their pin's fit id (edited, or half restored)."""


def fit_settings(config: TopicConfig, precision: str | None = None) -> dict:
    """What decides a fit besides its input, JSON-normalised: the encoder, its precision and every
    clustering setting. Paths, batch plans and process counts are left out: they change no number."""
    from dataset_preprocess.topics.fit import cluster_settings

    settings = {"encoder": config.encoder, "encoder_precision": config.encoder_precision,
                "cluster": cluster_settings(config)}
    if precision is not None:
        settings["encoder_precision"] = precision
    return json.loads(json.dumps(settings))


def _inputs(dataset_dir: Path, name: str) -> dict:
    from dataset_preprocess.readers.amazon import summary_path

    summary = json.loads(summary_path(dataset_dir, name).read_text(encoding="utf-8"))
    return {"source_sha256": summary.get("source_sha256"), "inter_sha256": summary.get("inter_sha256")}


def pin_fit(dataset_dir: Path, name: str, config: TopicConfig, root: Path = PINNED_FITS_DIR,
            folder_name: str | None = None, inputs_from: Path | None = None) -> Path:
    """Copy the fit in ``dataset_dir`` to ``root/<folder_name or name>/`` with what it was fitted
    from (the summary of ``inputs_from``, by default ``dataset_dir``); return that folder. Refuses
    a folder without topics. A training fit (:mod:`dataset_preprocess.topics.training_fit`) also
    pins the digest of the pairs it read."""
    dataset_dir, folder = Path(dataset_dir), Path(root) / (folder_name or name)
    fit_id = topic_fit_id(dataset_dir, name)
    if fit_id is None:
        raise FileNotFoundError(f"{dataset_dir} holds no topics of {name} to pin: prepare it first")
    sources, targets = topic_file_paths(dataset_dir, name), topic_file_paths(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    for key in COPY_ORDER:
        _copy(sources[key], targets[key])
    meta = json.loads(sources["meta"].read_text(encoding="utf-8"))
    scope = {key: meta[key] for key in ("fitted_on_scope", "fitted_on_sha256") if key in meta}
    used = (meta.get("encoder_settings") or {}).get("precision")  # what "fastest" resolved to
    if used is None and config.encoder_precision == "fastest":  # a fit from before int8: fp32
        used = "fp32"
    atomic_write_json(folder / PIN_FILE, {
        "dataset": name, "topic_fit": fit_id, **_inputs(Path(inputs_from or dataset_dir), name), **scope,
        "settings": fit_settings(config, used), "n_topics": meta.get("n_topics"),
        "outlier_ratio": meta.get("outlier_ratio"), "machine": cpu_description(),
        "pinned_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    logger.info("pinned topic fit %s of %s in %s", fit_id, name, folder)
    return folder


def read_pin(name: str, root: Path = PINNED_FITS_DIR) -> dict | None:
    """The pin of dataset ``name`` under ``root``, or None where there is none."""
    path = Path(root) / name / PIN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def pin_mismatch(pin: dict, dataset_dir: Path, name: str, config: TopicConfig) -> str | None:
    """Why ``pin`` does not belong to the prepared dataset and these settings, or None."""
    inputs = _inputs(Path(dataset_dir), name)
    for key, what in (("source_sha256", "raw file"), ("inter_sha256", ".inter")):
        if pin.get(key) != inputs[key]:
            return f"it was fitted from another {what} ({key} {str(pin.get(key))[:12]}, here {str(inputs[key])[:12]})"
    asked = pin.get("settings", {}).get("encoder_precision") if config.encoder_precision == "fastest" else None
    if pin.get("settings") != fit_settings(config, asked):
        return "it was fitted with other settings (encoder, precision or clustering)"
    return None


def install_pinned_fit(dataset_dir: Path, name: str, config: TopicConfig,
                       root: Path = PINNED_FITS_DIR, folder_name: str | None = None,
                       target: Path | None = None) -> str | None:
    """Install the pinned fit ``root/<folder_name or name>/`` into ``target`` (by default
    ``dataset_dir``) where it belongs to this dataset (whose summary is in ``dataset_dir``) and
    these settings; return its id, or None (no pin, or one for other inputs: logged)."""
    pinned = Path(root) / (folder_name or name)
    pin = read_pin(folder_name or name, root)
    if pin is None:
        return None
    why = pin_mismatch(pin, dataset_dir, name, config)
    if why is not None:
        logger.warning("not using the pinned topic fit %s of %s in %s: %s; fitting afresh",
                       pin.get("topic_fit"), name, pinned, why)
        return None
    sources, targets = topic_file_paths(pinned, name), topic_file_paths(Path(target or dataset_dir), name)
    if topic_fit_id(pinned, name) != pin["topic_fit"]:
        raise BrokenPin(f"{pinned}: the pinned files do not hash to the pin's fit "
                          f"{pin['topic_fit']}; restore them from git or pin the fit again")
    Path(target or dataset_dir).mkdir(parents=True, exist_ok=True)
    for key in COPY_ORDER:
        _copy(sources[key], targets[key])
    logger.info("%s: installed the pinned topic fit %s (%s topics, fitted on %s); --refit-topics "
                "fits afresh", name, pin["topic_fit"], pin.get("n_topics"), pin.get("machine", "?"))
    return pin["topic_fit"]


def _copy(source: Path, target: Path) -> None:
    with open(source, "rb") as src, atomic_write(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
