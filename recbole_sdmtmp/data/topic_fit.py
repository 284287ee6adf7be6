"""Which topic fit a run reads, known before the run: what a checkpoint, a table cell or a tuning
trial records, and checks against the fit at hand.

Under ``topic_fit: train`` the fit is that of the run's training reviews
(:class:`recbole_sdmtmp.data.dataset.SDMTMPDataset`), so naming it takes the training split: the
data is built and split as a run builds it, and the fit made or installed where it is missing.
"""

import json
from pathlib import Path

from dataset_preprocess.topics.files import topic_fit_id
from recbole_sdmtmp.data.dataset import SDMTMPDataset, uses_prepared_fit
from recbole_sdmtmp.data.protocol import prepare


_KNOWN: dict = {}  # (data, split settings, .inter stamp) -> fit id, for this process


def current_topic_fit(config) -> str | None:
    """The id of the topic fit a run of ``config`` (a model that reads topics) reads."""
    if uses_prepared_fit(config["topic_fit"], config["topic_reviews"]):
        return topic_fit_id(Path(config["data_path"]), config["dataset"])
    inter = Path(config["data_path"]) / f"{config['dataset']}.inter"
    split = {"protocol": config["protocol"], "split": config["eval_args"]["split"],
             "cuts": config["global_time_cuts"], "pins": config["pinned_topic_fits"]}
    key = (str(config["data_path"]), config["dataset"], json.dumps(split, sort_keys=True, default=str),
           inter.stat().st_mtime_ns if inter.is_file() else None)
    if key not in _KNOWN:
        train = prepare(config, SDMTMPDataset(config)).train_data._dataset
        _KNOWN[key] = train.topic_fit_id()
    return _KNOWN[key]
