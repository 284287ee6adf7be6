"""SD-MTMP's test metrics before and after per-case negatives, same split and seeds.

    python -m studies.negatives_quality --datasets Instrument Gift_Cards

Fewer optimizer steps per epoch is a different optimisation, not the same numbers: with 16
negatives an epoch was ceil(cases / 64) steps and is now ceil(cases / 1,024). This reruns
SD-MTMP's default and tuned rows of the committed ``paper`` tables (the configurations stored in
their cells: ``results/cells/paper/<D>/SD-MTMP`` and ``results/cells_tuned/paper/<D>/SD-MTMP``)
on the current code, seeds 2024-2026, into ``results/negatives_per_case/`` (resumable, one cell
per seed), and writes ``results/negatives_per_case_paper.md``: mean ± std over the seeds before
and after, the per-user paired tests between the two (metrics averaged over seeds), epochs and
seconds per epoch.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from studies.cell_study_args import parse_cell_study_args
from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.cells import Cell, frozen_overrides, run_cells
from recbole_sdmtmp.experiments.statistics import RowStats, significance

ROWS = {"defaults": "cells", "tuned": "cells_tuned"}  # row -> the committed study folder


def before_records(results: Path, study: str, dataset: str, seeds) -> list[dict]:
    folder = results / study / "paper" / dataset / "SD-MTMP"
    records = []
    for seed in seeds:
        path = folder / f"seed{seed}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the committed cell this comparison starts from")
        records.append(json.loads(path.read_text()))
    return records


def main(argv=None) -> int:
    args = parse_cell_study_args(__doc__, ["Instrument", "Gift_Cards"], argv)
    results = Path(args.results)
    lines = ["# SD-MTMP before and after per-case negatives (protocol `paper`)", "",
             f"Produced by `python -m studies.negatives_quality --datasets {' '.join(args.datasets)}`. "
             "Before: the committed cells of the comparison tables (RecBole's layout: each case "
             "repeated once per negative inside a 1,024-row batch). After: the same configuration "
             "and seeds on the current code (a batch holds 1,024 cases, each with its k negatives; "
             "one propagation per batch). Mean ± std over the seeds; the paired tests compare the "
             "per-user metrics (averaged over the seeds) of after against before.", ""]
    for dataset in args.datasets:
        for row, study in ROWS.items():
            before = before_records(results, study, dataset, args.seeds)
            overrides = before[0]["overrides"]
            cells = [Cell(f"SD-MTMP {row}", "SDMTMP", dataset, seed, frozen_overrides(overrides), protocol="paper",
                          study="negatives_per_case") for seed in args.seeds]
            after = [run_cells([cell], results, args.data_path, threads=args.threads)[cell] for cell in cells]
            old, new = RowStats("before", before), RowStats("after", after)
            negatives = overrides.get("train_neg_sample_args.sample_num", 1)
            settings = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or (
                "the defaults" if row == "defaults" else "the defaults (tuning chose them: the same cells as above)")
            lines += [f"## {dataset}, {row} ({negatives} negative{'s' if negatives != 1 else ''})", "",
                      f"Configuration: {settings}.", "",
                      "| code | seeds | NDCG@10 | HR@10 | NDCG@20 | HR@20 | epochs (median) | s / epoch (median) |",
                      "|---|---|---|---|---|---|---|---|"]
            for stats in (old, new):
                metrics = " | ".join(f"{stats.mean(m):.4f} ± {stats.std(m):.4f}"
                                     for m in ("ndcg@10", "hit@10", "ndcg@20", "hit@20"))
                lines.append(f"| {stats.label} | {len(stats.runs)} | {metrics} | "
                             f"{statistics.median(r['epochs'] for r in stats.runs):.0f} | "
                             f"{statistics.median(r['train_seconds_per_epoch'] for r in stats.runs):.2f} |")
            lines += ["", "| metric | after − before | Wilcoxon p | t-test p | users |", "|---|---|---|---|---|"]
            for test in significance(new, old):
                lines.append(f"| {test['metric']} | {test['difference']:+.4f} | {test['wilcoxon_p']:.3g} | "
                             f"{test['ttest_p']:.3g} | {test['cases']} |")
            lines.append("")
    lines.append("Seconds per epoch are of each run's own process, on a shared machine: "
                 "`benchmarks/train_speed.py` times both codes in one run.")
    path = results / "negatives_per_case_paper.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
