"""The cell store: one JSON file per finished (row, dataset, seed) run, under
``<results>/<study>/<protocol>/<Dataset>/<row>/seed<N>.json``; a finished cell is not run again."""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from dataset_preprocess.atomic_io import atomic_write_json
from recbole_sdmtmp import runner
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.experiments.fits import same_fit, topic_fit

logger = logging.getLogger(__name__)
# The code a cell's numbers come from: a cell written by an older version is run again rather
# than mixed into a table. 2: RecBole's Pop counts each training interaction once, general
# models train on every training interaction, SD-MTMP on per-case negatives.
CELL_VERSION = 2


@dataclass(frozen=True)
class Cell:
    """One training run: a table row (or a tuning trial) on one dataset with one seed."""

    label: str  # the row name in tables
    model: str
    dataset: str
    seed: int
    overrides: tuple = ()  # (key, value) pairs of RecBole config; 'a.b' sets key b of dict a
    protocol: str = "paper"
    study: str = "cells"  # folder under the results: 'cells' (tables) or 'tuning' (trials)
    evaluate_test: bool = True  # tuning trials never read the test split
    trained: bool = True  # False: the initial weights tested, no epoch run

    def path(self, results: Path) -> Path:
        slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", self.label)
        return results / self.study / self.protocol / self.dataset / slug / f"seed{self.seed}.json"


def freeze(value):
    """Lists (NGCF's hidden_size_list) as tuples, so that a cell can be hashed."""
    return tuple(freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def thaw(value):
    """Tuples back to the lists RecBole's models expect."""
    return [thaw(v) for v in value] if isinstance(value, (list, tuple)) else value


def frozen_overrides(overrides: dict) -> tuple:
    return tuple(sorted((key, freeze(value)) for key, value in overrides.items()))


def expand_overrides(overrides: dict, config) -> dict:
    """Dotted keys ('train_neg_sample_args.sample_num') update a copy of the dict the base
    ``config`` holds, since RecBole replaces a dict-valued key as a whole."""
    expanded = {}
    cleared = {key for key, value in overrides.items() if "." not in key and value is None}
    for key, value in overrides.items():
        value = thaw(value)
        if "." in key and key.split(".", 1)[0] in cleared:
            continue  # e.g. a CE variant clears train_neg_sample_args that tuning had set
        if "." in key:
            outer, inner = key.split(".", 1)
            base = expanded.get(outer) or dict(config[outer] or {})
            base[inner] = value
            expanded[outer] = base
        else:
            expanded[key] = value
    return expanded


def finished_record(cell: Cell, results: Path, data_root: str = "dataset/") -> dict | None:
    """The cell's saved record, unless absent, run with other settings (a tuned configuration
    that a longer study has since replaced) or, for a model that reads topics, on another topic
    fit than ``data_root`` holds now (``experiments.fits``): such a stale cell is run again."""
    path = cell.path(results)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"a JSON {type(record).__name__}, not a record")
    except (OSError, ValueError) as exc:  # cut short or overwritten: the cell is run again
        logger.warning("%s is damaged (%s): running the cell again", path, exc)
        return None
    if "overrides" in record and record["overrides"] != {k: thaw(v) for k, v in cell.overrides}:
        logger.info("%s was run with other settings: running it again", path)
        return None
    if record.get("cell_version", 1) != CELL_VERSION:
        logger.info("%s was run by older code (cell version %s, now %s): running it again", path,
                    record.get("cell_version", 1), CELL_VERSION)
        return None
    if not same_fit(record.get("topics_fit"), cell.model, cell.dataset, data_root, cell.protocol, dict(cell.overrides)):
        logger.info("%s was run on topic fit %s, not on the fit %s holds now: running it again", path,
                    record.get("topics_fit", "(not recorded)"), Path(data_root) / cell.dataset)
        return None
    return record


def train(model: str, dataset: str, seed: int, protocol: str, data_root: str, results: Path, overrides: dict,
          evaluate_test: bool = True, saved: bool = True, on_valid=None, settings: dict | None = None,
          check=None, trained: bool = True) -> runner.RunResult:
    """One run, as a table cell and a tuning trial both make it: the protocol, the seed and the
    overrides over the model's own configuration, the dataset prepared first. ``check`` sees
    the configuration before anything is trained."""
    config_dict = {"seed": seed, "protocol": protocol, "data_path": data_root, "show_progress": False,
                   "checkpoint_dir": str(Path(results) / "checkpoints"), **(settings or {})}
    base = build_config(model, dataset, config_dict=config_dict)
    if check is not None:
        check(base)
    ensure_prepared(base)
    config_dict.update(expand_overrides(overrides, base))
    return runner.run(build_config(model, dataset, config_dict=config_dict), evaluate_test=evaluate_test,
                      saved=saved and trained, on_valid=on_valid, train=trained)


def run_cells(cells: list[Cell], results: Path, data_root: str, rerun: bool = False,
              threads: int | None = None) -> dict:
    """Run what is missing (or everything with ``rerun``); return {cell: its JSON record}.

    ``threads`` sets torch's intra-op threads: on a small shared CPU one thread per process
    avoids OpenMP spin-waits that made tiny-tensor steps many times slower when another job ran.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)

    records = {}
    for cell in cells:
        if not rerun and (record := finished_record(cell, results, data_root)) is not None:
            records[cell] = record
    todo = [cell for cell in cells if cell not in records]
    if len(cells) > len(todo):
        logger.info("%d of %d cells already finished: not run again", len(cells) - len(todo), len(cells))
    progress = tqdm(todo, desc="cells", unit="run")
    for cell in progress:
        if not rerun and (record := finished_record(cell, results, data_root)) is not None:
            records[cell] = record  # finished meanwhile by another process
            continue
        progress.set_postfix_str(f"{cell.dataset} {cell.label} seed {cell.seed}")
        result = train(cell.model, cell.dataset, cell.seed, cell.protocol, data_root, results, dict(cell.overrides),
                       evaluate_test=cell.evaluate_test, trained=cell.trained).to_dict()
        record = {"label": cell.label, "overrides": {k: thaw(v) for k, v in cell.overrides},
                  "cell_version": CELL_VERSION, **result}
        if (fit := topic_fit(cell.model, cell.dataset, data_root, cell.protocol, dict(cell.overrides))) is not None:
            record["topics_fit"] = fit  # the fit it read (ensure_prepared made it if missing)
        cell.path(results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cell.path(results), record)
        records[cell] = record
    return records
