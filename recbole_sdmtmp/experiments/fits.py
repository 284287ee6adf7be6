"""The topic fit a result was measured on.

SD-MTMP's numbers depend on the dataset's topics, and the same reviews fitted on another machine
give other topics (float kernels differ by instruction set: 67 topics on one machine, 64 on
another for Magazine_Subscriptions; docs/PREPROCESSING.md). A cell or a tuning trial of a model
that reads topics records the fit's id; a cell measured on another fit is run again rather than
mixed into a table, and a study tuned on another fit is refused until it is restarted
(``python -m recbole_sdmtmp.tune ... --restart``). The fits the committed results read are pinned
(:mod:`dataset_preprocess.topics.pinned`), so a new machine installs them instead of fitting its own.
"""

from pathlib import Path

from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.data.topic_fit import current_topic_fit
from recbole_sdmtmp.registry import reads_topics


class OtherTopicFit(RuntimeError):
    """A tuning study of a topic model was run on another topic fit than the dataset holds now."""


class TopicsNotPrepared(OtherTopicFit):
    """The dataset holds no topic fit yet: preparing it (which installs the pinned fit of a shipped
    dataset) comes first, and nothing needs tuning again."""


# The settings that decide which fit a run reads (and that the protocol checks with it).
FIT_SETTINGS = ("topic_fit", "topic_reviews", "allow_test_leak", "short_term_source", "training_cases",
                "eval_args", "global_time_cuts")


def topic_fit(model: str, dataset: str, data_root: str, protocol: str, overrides: dict | None = None) -> str | None:
    """The id of the topic fit a run of ``model`` on ``dataset`` under ``protocol`` (with the
    fit-deciding keys of ``overrides``) reads, the dataset prepared and the fit made or installed
    where missing; None for a model that does not read topics (its results do not depend on it)."""
    if not reads_topics(model):
        return None
    settings = {"protocol": protocol, "data_path": data_root, "show_progress": False}
    settings.update({key: value for key, value in (overrides or {}).items() if key in FIT_SETTINGS})
    config = build_config(model, dataset, config_dict=settings)
    ensure_prepared(config)
    return current_topic_fit(config)


def same_fit(recorded: str | None, model: str, dataset: str, data_root: str, protocol: str,
             overrides: dict | None = None) -> bool:
    """Whether a result recorded with ``recorded`` belongs with the current fit (always, for a
    model that does not read topics; never, for a topic model's result that recorded none)."""
    if not reads_topics(model):
        return True
    current = topic_fit(model, dataset, data_root, protocol, overrides)
    return current is not None and recorded == current


def check_study_fit(recorded: str | None, model: str, dataset: str, protocol: str, data_root: str) -> None:
    """Refuse a topic model's study tuned on another fit: its choice was made on other topics."""
    if same_fit(recorded, model, dataset, data_root, protocol):
        return
    current = topic_fit(model, dataset, data_root, protocol)
    if current is None:
        raise TopicsNotPrepared(
            f"{Path(data_root) / dataset} holds no topics yet, so the {model} study on {dataset} (tuned on "
            f"fit {recorded}) cannot be checked against them: prepare the dataset first (python -m "
            f"dataset_preprocess {dataset}, which installs the pinned fit of a shipped dataset)")
    raise OtherTopicFit(
        f"the {model} study on {dataset} (protocol {protocol}) was tuned on topic fit "
        f"{recorded or '(not recorded: before fits were recorded)'}, but {Path(data_root) / dataset} now "
        f"holds fit {current or '(none yet)'}; tune it again on these topics: python -m recbole_sdmtmp.tune "
        f"--protocol {protocol} --datasets {dataset} --models {model} --restart"
    )
