"""What a study runs: its cells, and for a sweep the row that holds each value. One place, so
that ``status`` counts exactly what ``compare`` would run."""

from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import ABLATIONS, BASELINES, CHANGE_STUDIES, OURS, sweep_label, sweep_values
from recbole_sdmtmp.experiments.cells import Cell, frozen_overrides
from recbole_sdmtmp.experiments.tuning import chosen_trial


def plan_cells(study: str, datasets, protocol: str, seeds, results: Path, tuned: bool = False,
               models=("SDMTMP", *BASELINES), param: str | None = None, values=None,
               storage: str | None = None, data_root: str = "dataset/"):
    """The cells of one study, and for a sweep the row holding each (dataset, value).

    One place decides what a study runs, so that ``status`` counts exactly what ``compare`` would
    run. In a tuned sweep, the tuned value itself is the tuned model's row (same configuration).
    A topic model's study tuned on another topic fit than ``data_root`` holds is refused
    (``experiments.fits.OtherTopicFit``).
    """
    if study == "table":
        rows = [(OURS if model == "SDMTMP" else model, model, ()) for model in models]
    elif study == "ablation":
        rows = [(OURS, "SDMTMP", ())] + [(name, "SDMTMP", (("ablation", name),)) for name in ABLATIONS]
    elif study in CHANGE_STUDIES:
        rows = [(OURS, "SDMTMP", ())] + [(name, "SDMTMP", change)
                                         for name, change in CHANGE_STUDIES[study][0].items()]
    else:
        rows = [(sweep_label(param, v), "SDMTMP", ((param, v),)) for v in sweep_values(param, values)]
    cells, sweep_rows = [], {}
    for dataset in datasets:
        for label, model, overrides in rows:
            settings = dict(tuned_overrides(results, model, dataset, protocol, storage, data_root)) if tuned else {}
            unchanged = all(settings.get(key) == value for key, value in overrides)
            settings.update(overrides)  # the row's own setting wins over the tuned one
            if study == "sensitivity":
                if overrides and unchanged:
                    label = OURS  # the tuned value itself: the tuned model's own cells, not a rerun
                sweep_rows[dataset, overrides[0][1]] = label
            cells += [Cell(label, model, dataset, seed, frozen_overrides(settings), protocol,
                           "cells_tuned" if tuned else "cells") for seed in seeds]
    return cells, sweep_rows


def tuned_overrides(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None,
                    data_root: str = "dataset/") -> dict:
    """The configuration the tuning study in the store chose on validation for ``model``."""
    return chosen_trial(results, model, dataset, protocol, storage, data_root)["overrides"]
