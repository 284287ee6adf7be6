"""What each of the paper's studies runs: its rows, and for a sweep the row that holds each value.
One place, so that ``python -m studies.status`` counts exactly what ``python -m studies`` would run."""

from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import OURS
from recbole_sdmtmp.experiments.planning import plan_cells, tuned_overrides
from studies.catalogue import ABLATIONS, CHANGE_STUDIES, sweep_label, sweep_values


def plan_study(study: str, datasets, protocol: str, seeds, results: Path, tuned: bool = False,
               param: str | None = None, values=None, storage: str | None = None, data_root: str = "dataset/"):
    """The cells of ``ablation``, ``readings``, ``variants`` or ``sensitivity``, and for the sweep
    the row holding each (dataset, value): in a tuned sweep, the tuned value itself is the tuned
    model's row (same configuration, the same cells)."""
    if study == "ablation":
        rows = [(OURS, "SDMTMP", ())] + [(name, "SDMTMP", (("ablation", name),)) for name in ABLATIONS]
        return plan_cells(rows, datasets, protocol, seeds, results, tuned, storage, data_root), {}
    if study in CHANGE_STUDIES:
        rows = [(OURS, "SDMTMP", ())] + [(name, "SDMTMP", change) for name, change in CHANGE_STUDIES[study][0].items()]
        return plan_cells(rows, datasets, protocol, seeds, results, tuned, storage, data_root), {}
    cells, sweep_rows = [], {}
    for dataset in datasets:
        chosen = tuned_overrides(results, "SDMTMP", dataset, protocol, storage, data_root) if tuned else {}
        rows = []
        for value in sweep_values(param, values):
            label = OURS if param in chosen and chosen[param] == value else sweep_label(param, value)
            sweep_rows[dataset, value] = label
            rows.append((label, "SDMTMP", ((param, value),)))
        cells += plan_cells(rows, [dataset], protocol, seeds, results, tuned, storage, data_root)
    return cells, sweep_rows
