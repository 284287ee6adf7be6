"""The plugin's own route in three calls, as ``recbole.quick_start`` is RecBole's.

    from recbole_sdmtmp import prepare, run
    prepare("Gift_Cards")                       # atomic files + the side-files SD-MTMP reads
    result = run("SDMTMP", "Gift_Cards", config_dict={"epochs": 5})
    result.test_result                          # {'hit@10': ..., 'ndcg@10': ...}

``run`` applies the project's protocol (``protocol`` in ``properties/protocol.yaml``: ``paper`` by
default) through ``recbole_sdmtmp.runner``; RecBole's own ``data_preparation`` applies RecBole's
split (``eval_args``) instead (``docs/API.md``).
"""

import os
from pathlib import Path

from recbole_sdmtmp import console
from recbole_sdmtmp.config import build_config, config_files_for, ensure_prepared
from recbole_sdmtmp.runner import RunResult
from recbole_sdmtmp.runner import run as run_config


def config_files(model: str = "SDMTMP", dataset: str = "Instrument") -> list[str]:
    """The plugin's YAML files for ``model`` on ``dataset`` (the protocol, the model's defaults,
    SD-MTMP's per-dataset values), in the order RecBole should read them."""
    return config_files_for(model, dataset)


def prepare(dataset: str, model: str = "SDMTMP", data_path: str | os.PathLike[str] = "dataset",
            raw_file: str | os.PathLike[str] | None = None, **options) -> Path:
    """Convert ``dataset`` into ``<data_path>/<dataset>/`` and write the side-files ``model``
    reads (topics for SD-MTMP, review vectors for RGCL, RRPU and MISSRec) where they are missing
    or stale; return the dataset folder. ``options``: the converter's (``columns``, ``kcore``...)."""
    console.show_stages()  # the preparation's stage lines on stderr, unless logging is set up already
    config = build_config(model, dataset, config_dict={"data_path": str(data_path)})
    return ensure_prepared(config, raw_file=raw_file, **options)


def run(model: str = "SDMTMP", dataset: str = "Instrument", config_dict: dict | None = None,
        config_file_list=(), checkpoint: str | None = None, saved: bool = True) -> RunResult:
    """Train ``model`` on ``dataset`` (prepared first where needed) and test it under the
    project's protocol; with ``checkpoint``, only test that saved model. ``config_dict`` and
    ``config_file_list`` override the plugin's YAML, as in RecBole."""
    console.show_stages()
    config = build_config(model, dataset, config_file_list, config_dict)
    ensure_prepared(config)
    return run_config(config, checkpoint=checkpoint, saved=saved)
