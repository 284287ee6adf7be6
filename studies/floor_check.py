"""The popularity floor of every committed table, checked outside RecBole.

    python -m studies.floor_check

RecBole 1.2.1's ``Pop`` added 1 once per batch to an item repeated in it and counted the sampled
negatives (``recbole_sdmtmp/compat.py`` now counts each training interaction once). For each
dataset and protocol this runs the corrected Pop (deterministic: its counts do not depend on the
seed) into ``results/floors/``, and writes ``results/floors.md``: the independent HR@10 range of
``studies/floors.py`` (pandas and numpy on the atomic file; ``paper`` and ``global_time``), the
corrected Pop, the Pop row the committed table prints (whether it lies in the independent range),
and the committed SD-MTMP row with its per-user (per-case) paired tests against the corrected Pop.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.cells import Cell, run_cells
from recbole_sdmtmp.experiments.statistics import RowStats, significance
from studies.floors import global_time_split, paper_split, popularity_hit_bounds

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("Instrument", "Gift_Cards", "Magazine_Subscriptions")
PROTOCOLS = ("paper", "global_time", "next_item")
SPLITS = {"paper": paper_split, "global_time": global_time_split}  # what the independent count reads


def committed(results: Path, protocol: str, dataset: str, row: str) -> RowStats:
    folder = results / "cells_tuned" / protocol / dataset / row
    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("seed*.json"))]
    if not runs:
        raise FileNotFoundError(f"{folder}: no committed cells")
    return RowStats(row, runs)


def mean_std(row: RowStats, metric: str) -> str:
    return f"{row.mean(metric):.4f} ± {row.std(metric):.4f}"


def counted_pop(results: Path, protocol: str, dataset: str, data_path: str) -> RowStats:
    """The corrected Pop's row (one run: its counts do not depend on the seed)."""
    cell = Cell("Pop (counted)", "Pop", dataset, 2024, (), protocol=protocol, study="floors")
    return RowStats("Pop (counted)", [run_cells([cell], results, data_path)[cell]])


def paired_against(ours: RowStats, pop: RowStats) -> str:
    """'difference (Wilcoxon p)' on NDCG@10 and on HR@10, as two table cells."""
    tests = {test["metric"]: test for test in significance(ours, pop)}
    return " | ".join(f"{tests[m]['difference']:+.4f} ({tests[m]['wilcoxon_p']:.3g})" for m in ("NDCG@10", "HR@10"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    lines = ["# The popularity floor, checked outside RecBole", "",
             "Produced by `python -m studies.floor_check`. *Independent*: HR@10 of ranking by the "
             "training counts, computed with pandas and numpy from the atomic file "
             "(`studies/floors.py`, `paper` and `global_time`), pessimistic .. optimistic over the ties. "
             "*Corrected Pop*: the runner's Pop with `compat.py`'s count (one run: its counts do not "
             "depend on the seed). *Table's Pop* and *SD-MTMP*: the rows of the committed tables "
             "`results/<D>_<protocol>.md`, read from their cells (`results/cells_tuned/`), mean ± "
             "standard deviation over their seeds. The paired tests compare SD-MTMP's per-user "
             "(`paper`, `global_time`) or per-case (`next_item`) metrics, averaged over its seeds, with "
             "the corrected Pop's. RecBole's own Pop, which the first tables printed, and its numbers: "
             "`docs/RESULTS.md`, first section.", ""]
    for protocol in args.protocols:
        lines += [f"## Protocol `{protocol}`", "",
                  "| dataset | independent HR@10 | corrected Pop HR@10 | NDCG@10 | table's Pop HR@10 | in the independent range | "
                  "SD-MTMP seeds | HR@10 | NDCG@10 | SD-MTMP − Pop NDCG@10 (Wilcoxon p) | HR@10 (Wilcoxon p) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for dataset in args.datasets:
            pop = counted_pop(results, protocol, dataset, args.data_path)
            table_pop = committed(results, protocol, dataset, "Pop")
            ours = committed(results, protocol, dataset, "SD-MTMP")
            independent, inside = "n/a", "n/a"
            if protocol in SPLITS:
                low, high = popularity_hit_bounds(SPLITS[protocol](Path(args.data_path) / dataset / f"{dataset}.inter"))
                independent = f"{low:.4f} .. {high:.4f}"
                rounding = 5e-5  # the range and the row are printed to 4 decimals
                inside = "yes" if low - rounding <= table_pop.mean("hit@10") <= high + rounding else "**no**"
            lines.append(
                f"| {dataset} | {independent} | {pop.mean('hit@10'):.4f} | {pop.mean('ndcg@10'):.4f} | "
                f"{mean_std(table_pop, 'hit@10')} | {inside} | {len(ours.runs)} | "
                f"{mean_std(ours, 'hit@10')} | {mean_std(ours, 'ndcg@10')} | {paired_against(ours, pop)} |")
        lines.append("")
    path = results / "floors.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
