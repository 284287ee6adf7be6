"""Why the paper-claim step 5 (the leaking short-term window) puts SD-MTMP first on one dataset
and not on another: the number of propagation layers L, measured (selection on the test split).

    python -m studies.leak_depth --datasets Instrument Gift_Cards Magazine_Subscriptions

Step 5 takes the short-term window from the complete record, which under the printed 80/20 split
is the test period: the test items are in the model's input. Its configuration is step 3's,
chosen on the test split, so L differs per dataset and per topic fit. This runs step 5's
configuration (read from its committed cell) at L = 1, 2, 3, with the leaking window and with the
training-history window, seeds 2024-2026, protocol ``paper_as_printed``, into
``results/leak_depth/`` (resumable, one cell per seed), and writes ``results/leak_depth.md``.
A diagnostic of the paper's procedure, never a comparison of models.
"""

from __future__ import annotations

import json
from pathlib import Path

from studies.cell_study_args import parse_cell_study_args
from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.cells import Cell, frozen_overrides, run_cells
from recbole_sdmtmp.experiments.statistics import RowStats

STEP_5 = "SD-MTMP_short-term_window_from_the_complete_record"  # the paper-claim cell folder
WINDOWS = {"complete_record": "the test period (leaks)", "training_history": "the training history"}
LAYERS = (1, 2, 3)


def step5_overrides(results: Path, dataset: str) -> dict:
    path = results / "cells" / "paper_as_printed" / dataset / STEP_5 / "seed2024.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run python -m studies paper_claim --datasets {dataset} first")
    return json.loads(path.read_text())["overrides"]


def main(argv=None) -> int:
    args = parse_cell_study_args(__doc__, ["Instrument", "Gift_Cards", "Magazine_Subscriptions"], argv)
    results = Path(args.results)
    lines = ["# The leaking window against the number of layers L (selection on the test split)", "",
             f"Produced by `python -m studies.leak_depth --datasets {' '.join(args.datasets)}`. Protocol "
             "`paper_as_printed` (80/20 by time, early stopping on the test split): a diagnostic of the "
             "paper's procedure, never a comparison of models. Each dataset's paper-claim step 5 "
             "configuration (step 3's test-chosen sweeps, topics from every review) at L = 1, 2, 3, with "
             "the short-term window from the complete record (the test period) and from the training "
             "history. Test NDCG@10 and HR@10, mean ± std over seeds "
             f"{', '.join(map(str, args.seeds))}; the L that step 3 chose is marked.", ""]
    for dataset in args.datasets:
        overrides = step5_overrides(results, dataset)
        chosen = overrides.get("n_layers")
        settings = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()) if k not in ("n_layers", "short_term_source"))
        lines += [f"## {dataset}", "", f"Step 5's configuration, L and the window aside: {settings}.", "",
                  "| L | window | seeds | NDCG@10 | HR@10 |", "|---|---|---|---|---|"]
        for layers in LAYERS:
            for window, label in WINDOWS.items():
                cell_overrides = {**overrides, "n_layers": layers, "short_term_source": window}
                cells = [Cell(f"SD-MTMP L={layers} window={window}", "SDMTMP", dataset, seed,
                              frozen_overrides(cell_overrides), protocol="paper_as_printed", study="leak_depth")
                         for seed in args.seeds]
                records = run_cells(cells, results, args.data_path, threads=args.threads)
                stats = RowStats(label, [records[cell] for cell in cells])
                mark = " (step 3's choice)" if layers == chosen else ""
                lines.append(f"| {layers}{mark} | {label} | {len(stats.runs)} | "
                             f"{stats.mean('ndcg@10'):.4f} ± {stats.std('ndcg@10'):.4f} | "
                             f"{stats.mean('hit@10'):.4f} ± {stats.std('hit@10'):.4f} |")
        lines.append("")
    path = results / "leak_depth.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
