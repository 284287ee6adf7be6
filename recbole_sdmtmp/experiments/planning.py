"""What a comparison runs: its cells, one per (row, dataset, seed). One place, so that a status
report counts exactly what ``compare`` would run."""

from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import OURS
from recbole_sdmtmp.experiments.cells import Cell, frozen_overrides
from recbole_sdmtmp.experiments.tuning import chosen_trial


def table_rows(models) -> list[tuple[str, str, tuple]]:
    """A comparison table's rows as (label, model, overrides): each model as itself."""
    return [(OURS if model == "SDMTMP" else model, model, ()) for model in models]


def plan_cells(rows, datasets, protocol: str, seeds, results: Path, tuned: bool = False,
               storage: str | None = None, data_root: str = "dataset/") -> list[Cell]:
    """The cells of ``rows`` (label, model, overrides) on every dataset and seed. With ``tuned``
    each row starts from the configuration its model's tuning study chose on validation and the
    row's own overrides win over it. A topic model's study tuned on another topic fit than
    ``data_root`` holds is refused (``experiments.fits.OtherTopicFit``)."""
    cells = []
    for dataset in datasets:
        for label, model, overrides in rows:
            settings = dict(tuned_overrides(results, model, dataset, protocol, storage, data_root)) if tuned else {}
            settings.update(overrides)
            cells += [Cell(label, model, dataset, seed, frozen_overrides(settings), protocol,
                           "cells_tuned" if tuned else "cells") for seed in seeds]
    return cells


def tuned_overrides(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None,
                    data_root: str = "dataset/") -> dict:
    """The configuration the tuning study in the store chose on validation for ``model``."""
    return chosen_trial(results, model, dataset, protocol, storage, data_root)["overrides"]
