"""The comparison table in Markdown and CSV, rebuilt from the cells each time, and the table
parts that every report shares."""

import csv
import io
from pathlib import Path

import numpy as np

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.catalogue import BACKBONE, FLOORS, METRIC_NAMES, METRICS, OURS, protocol_title
from recbole_sdmtmp.experiments.figures import plot_comparison
from recbole_sdmtmp.experiments.statistics import RowStats, aggregate, significance


def format_cell(row: RowStats, metric: str, best: bool) -> str:
    text = f"{row.mean(metric):.4f} ± {row.std(metric):.4f}"
    return f"**{text}**" if best else text


def metrics_table(rows: list[RowStats], metrics=METRICS, first: str = "model") -> list[str]:
    """Markdown rows: mean ± std over seeds, the best mean of each column in bold."""
    best = {metric: max(row.mean(metric) for row in rows) for metric in metrics}
    lines = [f"| {first} | seeds | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |"]
    lines.append("|---|---|" + "---|" * len(metrics))
    for row in rows:
        cells = [format_cell(row, m, row.mean(m) == best[m]) for m in metrics]
        lines.append(f"| {row.label} | {len(row.runs)} | " + " | ".join(cells) + " |")
    return lines


UNRECORDED = "not recorded (cells from before machines were recorded)"


def machines_of(row: RowStats) -> tuple[str, ...]:
    """The machines a row's cells ran on (``RunResult.machine``)."""
    return tuple(sorted({run.get("machine") or UNRECORDED for run in row.runs}))


def machine_letters(rows: list[RowStats]) -> dict[str, str]:
    """A letter per machine, in order of first appearance."""
    letters: dict[str, str] = {}
    for row in rows:
        for machine in machines_of(row):
            letters.setdefault(machine, chr(ord("A") + len(letters)))
    return letters


def timing_table(rows: list[RowStats]) -> list[str]:
    """Seconds per epoch and per evaluation; the ratio to SD-MTMP only between rows measured on
    the same machines, since another CPU (or one shared with other jobs) changes every time."""
    reference = next((row for row in rows if row.label == OURS), None)
    reference_epoch = reference.median_of("train_seconds_per_epoch") if reference else None
    letters = machine_letters(rows)
    lines = [
        "| model | s / training epoch (median) | s / full evaluation (median) | epochs run (mean) "
        f"| machine | epoch time / {OURS} |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        epoch, evaluation = row.median_of("train_seconds_per_epoch"), row.median_of("eval_seconds")
        epochs = np.mean([run["epochs"] for run in row.runs])
        ratio = "n/a"
        if reference_epoch and epoch:
            same = machines_of(row) == machines_of(reference)
            ratio = f"{epoch / reference_epoch:.2f}" if same else "n/a (other machine)"
        machine = ", ".join(letters[m] for m in machines_of(row))
        lines.append(f"| {row.label} | {epoch:.2f} | {evaluation:.2f} | {epochs:.0f} | {machine} | {ratio} |")
    return lines


def write_csv(path: Path, rows: list[RowStats], dataset: str) -> None:
    header = ["dataset", "model", "seeds"]
    header += [f"{METRIC_NAMES[m]}_{part}" for m in METRICS for part in ("mean", "std")]
    header += ["train_s_per_epoch", "eval_s"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = [dataset, row.label, len(row.runs)]
        values += [f"{getattr(row, part)(m):.6f}" for m in METRICS for part in ("mean", "std")]
        values += [f"{row.median_of(key) or float('nan'):.4f}" for key in ("train_seconds_per_epoch", "eval_seconds")]
        writer.writerow(values)
    atomic_write_text(path, buffer.getvalue())


def device_line(rows: list[RowStats]) -> str:
    devices = sorted({run["device"] for row in rows for run in row.runs})
    machines = "; ".join(f"{letter}: {machine}" for machine, letter in machine_letters(rows).items())
    return (f"Device: {', '.join(devices)}. Machines: {machines}. Each time is a median measured inside "
            "its own cell; cells that ran while other jobs shared the CPU (as during this project's "
            "studies on a 2-core machine) ran slower, so read even a same-machine ratio as rough.")


PROTOCOL_NOTES = {
    "paper": "Protocol `paper` (the paper's section 3.1): each user's interactions split by time, "
             "newest 20% test, 10% validation; one case per user (input: the training history; "
             "ground truth: all its test items; training and validation items never recommended).",
    "next_item": "Protocol `next_item`: one case per held-out interaction, its whole history as "
                 "input and one positive; history items never recommended.",
    "global_time": "Protocol `global_time` (the paper's protocol on one timeline): two global cuts, by "
                   "default the 80th and 90th percentiles of all interaction times; training holds the "
                   "interactions before the first cut; a test case is a user with interactions after the "
                   "second cut (input: its history before it; ground truth: all of them), validation "
                   "likewise between the cuts; a user with no history before a cut is no case, items first "
                   "seen after a cut stay candidates, history items are never recommended.",
    "paper_as_printed": "Protocol `paper_as_printed` (selection on the test split): section 3.1 as printed, "
                        "each user's first 80% by time for training and the rest for testing, no validation "
                        "split; early stopping reads the test split.",
}


def tuning_note(tuned: str | None) -> str:
    if not tuned:
        return "Every model at its default configuration (untuned)."
    return (f"Every model at the configuration chosen on validation NDCG@10 by {tuned} "
            "(the same number of trials for every model; see the tuning report).")


def fit_note(records: dict, dataset: str) -> str:
    """Which topic fit the rows that read topics were measured on (``experiments.fits``)."""
    fits = sorted({record["topics_fit"] for cell, record in records.items()
                   if cell.dataset == dataset and record.get("topics_fit")})
    if not fits:
        return ""
    return (f" {OURS}'s cells read topic fit {', '.join(f'`{fit}`' for fit in fits)} (the ids in "
            "`results/datasets.md`; the baselines read no topics).")


def write_comparison(records: dict, dataset: str, results: Path, command: str,
                     protocol: str = "paper", tuned: str | None = None) -> Path:
    rows = aggregate(records, dataset)
    rows.sort(key=lambda row: (row.label != OURS, -row.mean("ndcg@10")))
    lines = [f"# {dataset}: SD-MTMP against the baselines, protocol {protocol_title(protocol)}", "",
             f"Produced by `{command}`. {PROTOCOL_NOTES[protocol]} {tuning_note(tuned)} Test "
             "split, full ranking, mean ± standard deviation over seeds; the best mean of each "
             f"column in bold. Pop and ItemKNN are floors.{fit_note(records, dataset)}", "",
             *metrics_table(rows), ""]
    ours = next((row for row in rows if row.label == OURS), None)
    others = [row for row in rows if row.label != OURS]
    if ours and others:
        best = max(others, key=lambda row: row.mean("ndcg@10"))
        lines += [f"## Paired significance: {OURS} against the best baseline by NDCG@10 ({best.label})",
                  "", "Per-case metrics averaged over seeds; two-sided Wilcoxon signed-rank test "
                  "and paired t-test over the test cases.", "",
                  "| metric | SD-MTMP | " + best.label + " | difference | Wilcoxon p | t-test p | cases |",
                  "|---|---|---|---|---|---|---|"]
        for test in significance(ours, best):
            lines.append(f"| {test['metric']} | {test['mean_ours']:.4f} | {test['mean_other']:.4f} | "
                         f"{test['difference']:+.4f} | {test['wilcoxon_p']:.3g} | "
                         f"{test['ttest_p']:.3g} | {test['cases']} |")
        lines.append("")
        lines += floor_tests(ours, [row for row in others if row.label in (*FLOORS, BACKBONE)])
    lines += ["## Time (paper section 3.5)", "", device_line(rows), "", *timing_table(rows), ""]
    figure = plot_comparison(rows, dataset, results, protocol)
    lines += [f"![test NDCG@10 and HR@10 per model](figures/{figure.name})", ""]
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{dataset}_{protocol}.md"
    atomic_write_text(path, "\n".join(lines))
    write_csv(results / f"{dataset}_{protocol}.csv", rows, dataset)
    return path


def floor_tests(ours: RowStats, floors: list[RowStats]) -> list[str]:
    """SD-MTMP against the floors and its backbone, which it must beat to add anything."""
    if not floors:
        return []
    title = f"{OURS} against the floors and its backbone ({', '.join(row.label for row in floors)})"
    return paired_section(title, ours, floors)


def paired_section(title: str, ours: RowStats, others: list[RowStats]) -> list[str]:
    """The paired tests of ``significance`` on NDCG@10 and HR@10, one table row per model."""
    lines = [f"## {title}", "", "Per-case metrics averaged over seeds; two-sided Wilcoxon "
             "signed-rank test and paired t-test, on NDCG@10 and HR@10.", "",
             f"| other | metric | {OURS} | other | difference | Wilcoxon p | t-test p |",
             "|---|---|---|---|---|---|---|"]
    for row in others:
        for test in significance(ours, row):
            if test["metric"] in ("NDCG@10", "HR@10"):
                lines.append(f"| {row.label} | {test['metric']} | {test['mean_ours']:.4f} | {test['mean_other']:.4f} | "
                             f"{test['difference']:+.4f} | {test['wilcoxon_p']:.3g} | {test['ttest_p']:.3g} |")
    return lines + [""]
