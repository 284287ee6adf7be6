"""The Markdown and CSV reports of the studies, rebuilt from the cells each time."""

import csv
import io
from pathlib import Path

import numpy as np

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.catalogue import (
    ABLATIONS, BACKBONE, CHANGE_STUDIES, CLAIM_BASELINES, FLOORS, METRIC_NAMES, METRICS, OURS, SWEEP_LABELS, protocol_title,
)
from recbole_sdmtmp.experiments.figures import plot_comparison, plot_paper_claim
from recbole_sdmtmp.experiments.statistics import RowStats, aggregate, rank_of, ranked, significance, step_summary, sweep_points
from recbole_sdmtmp.experiments.tuning import configuration


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


def write_ablation(records: dict, dataset: str, results: Path, command: str,
                   protocol: str = "paper", tuned: str | None = None) -> Path:
    rows = aggregate(records, dataset)
    order = [OURS, *ABLATIONS]
    rows.sort(key=lambda row: order.index(row.label))
    lines = [f"# {dataset}: ablation of SD-MTMP (paper section 3.4), protocol {protocol_title(protocol)}", "",
             f"Produced by `{command}`. {tuning_note(tuned)} Test split, mean ± standard deviation over seeds; the best "
             "mean in bold. w/o-H: no topic hypergraphs (and no distillation); w/o-S1: InfoNCE "
             "instead of self-distillation; w/o-S2: concatenation instead of self-distillation; "
             "w/o-A: no short-term attention.", ""]
    for k, table in ((10, 3), (20, 4)):
        lines += [f"## K = {k} (paper Table {table})", "",
                  *metrics_table(rows, (f"hit@{k}", f"ndcg@{k}")), ""]
    ours = next((row for row in rows if row.label == OURS), None)
    parts = [row for row in rows if row.label != OURS]
    if ours and parts:  # a positive difference: the removed part helps
        lines += paired_section(f"What each part adds: the full {OURS} against each ablation", ours, parts)
    path = results / f"ablation_{dataset}_{protocol}.md"
    atomic_write_text(path, "\n".join(lines))
    write_csv(results / f"ablation_{dataset}_{protocol}.csv", rows, dataset)
    return path


def write_readings(records: dict, dataset: str, results: Path, command: str,
                   protocol: str = "paper", tuned: str | None = None, study: str = "readings") -> Path:
    """docs/DESIGN.md §3: each change of the faithful model (its first version, its other reading, or a
    labelled variant beyond the paper) with the validation score that chooses between readings."""
    changes, title, intro = CHANGE_STUDIES[study]
    rows = aggregate(records, dataset)
    order = [OURS, *changes]
    rows.sort(key=lambda row: order.index(row.label))
    lines = [f"# {dataset}: {title}, protocol {protocol_title(protocol)}", "",
             f"Produced by `{command}`. {tuning_note(tuned)} {intro}",
             "", "| change | seeds | valid NDCG@10 | test HR@10 | test NDCG@10 | test HR@20 | test NDCG@20 |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        valid = [run["best_valid_result"]["ndcg@10"] for run in row.runs]
        spread = float(np.std(valid, ddof=1)) if len(valid) > 1 else 0.0
        cells = [f"{row.mean(m):.4f} ± {row.std(m):.4f}" for m in ("hit@10", "ndcg@10", "hit@20", "ndcg@20")]
        lines.append(f"| {row.label} | {len(row.runs)} | {np.mean(valid):.4f} ± {spread:.4f} | " + " | ".join(cells) + " |")
    path = results / f"{study}_{dataset}_{protocol}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    write_csv(results / f"{study}_{dataset}_{protocol}.csv", rows, dataset)
    return path


def write_sensitivity(records: dict, datasets: list[str], param: str, values, results: Path,
                      command: str, protocol: str, tuned: str | None, row_labels: dict,
                      figures: list[Path]) -> Path:
    """The numbers behind the sensitivity figures, so that a figure quoted in prose has a table
    and a command."""
    symbol = SWEEP_LABELS.get(param, param)
    stem = f"sensitivity_{param}_{'-'.join(datasets)}_{protocol}"
    lines = [f"# SD-MTMP at different {symbol} (`{param}`, paper section 3.6), protocol {protocol_title(protocol)}", "",
             f"Produced by `{command}`. {tuning_note(tuned)} Only `{param}` changes between "
             "rows; test split (the last column: validation, which chose the tuned value), mean ± "
             "standard deviation over seeds; the best test mean in bold. "
             "\"(tuned)\" marks the tuned value, whose row is the tuned model's own cells.", ""]
    for dataset in datasets:
        points = [RowStats(f"{symbol} = {value}" + (" (tuned)" if row.label == OURS else ""), row.runs)
                  for value, row in zip(values, sweep_points(records, dataset, param, values, row_labels))]
        table = metrics_table(points, first=symbol)
        valid = [[run["best_valid_result"]["ndcg@10"] for run in row.runs] for row in points]
        table[0] += " valid NDCG@10 |"
        table[1] += "---|"
        table[2:] = [line + f" {np.mean(v):.4f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.4f} |"
                     for line, v in zip(table[2:], valid)]
        lines += [f"## {dataset}", "", *table, ""]
    lines += [f"![{name}](figures/{path.name})" for name, path in zip(("HR", "NDCG"), figures)] + [""]
    path = results / f"{stem}.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def write_paper_claim(steps: list, dataset: str, results: Path, command: str) -> Path:
    """One row per step of the paper's procedure, SD-MTMP's rank and its paired gap to
    the best other row after each, then each step's full table (``experiments/paper_claim.py``)."""
    done = [rows for rows in steps if rows.pending is None]
    summaries = {rows.step.number: step_summary(rows.step.number, rows.ours, rows.others) for rows in done}
    seeds = sorted({len(rows.ours.runs) for rows in done})
    lines = [f"# {dataset}: why the paper found otherwise, its procedure step by step "
             "(steps 2-5: selection on the test split)", "",
             f"Produced by `{command}`. Each step keeps the ones before it and adds one thing the paper's "
             f"text does. Rows: {OURS}, the paper's Table 2 baselines that this project runs and the floors "
             f"({', '.join(CLAIM_BASELINES)}). Test split, full ranking, mean over "
             f"{'/'.join(map(str, seeds)) or 'no'} seeds; rank by test NDCG@10 among the "
             f"{1 + len(CLAIM_BASELINES)} rows; paired two-sided Wilcoxon signed-rank test and t-test over "
             "the test users (per-user metrics averaged over seeds) against the step's best other row. "
             "**Steps 2-5 stop training or choose configurations on the test split**: they show what the "
             "printed procedure does, never which model is better (step 1 is the verdict).", "",
             f"| step | what the step adds | {OURS} NDCG@10 | {OURS} HR@10 | {OURS} rank | best other row | "
             "its NDCG@10 | NDCG@10 difference | Wilcoxon p | t-test p | HR@10 difference | Wilcoxon p | t-test p |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rows in steps:
        number = rows.step.number
        if rows.pending is not None:
            lines.append(f"| {number} | {rows.step.adds} | not run yet: {rows.pending} |" + " |" * 10)
            continue
        s = summaries[number]
        lines.append(f"| {number} | {rows.step.adds} | {s['ours_ndcg']:.4f} | {s['ours_hr']:.4f} | "
                     f"{s['rank']} of {s['of']} | {s['best']} | {s['best_ndcg']:.4f} | {s['ndcg_difference']:+.4f} | "
                     f"{s['ndcg_wilcoxon_p']:.3g} | {s['ndcg_ttest_p']:.3g} | {s['hr_difference']:+.4f} | "
                     f"{s['hr_wilcoxon_p']:.3g} | {s['hr_ttest_p']:.3g} |")
    lines.append("")
    if summaries:
        figure = plot_paper_claim(list(summaries.values()), dataset, results)
        lines += [f"![{OURS}'s rank and test NDCG@10 after each step](figures/{figure.name})", ""]
    for rows in done:
        test_note = " (selection on the test split)" if rows.step.reads_test else ""
        ordered = [rows.ours, *([rows.untrained] if rows.untrained else []), *ranked(rows.others)]
        untrained_note = (f" The row \"{rows.untrained.label}\" is the same configuration with its initial "
                          "weights tested, no epoch trained: what the input gives before anything is learned."
                          if rows.untrained else "")
        lines += [f"## Step {rows.step.number}{test_note}: {rows.step.adds}", "",
                  f"Protocol {protocol_title(rows.step.protocol)}. {OURS}: "
                  f"{configuration(rows.chosen or {})}.{untrained_note}", "", *metrics_table(ordered), ""]
        if rows.sweep:
            lines += [f"{OURS}'s sweeps (section 3.6, one knob at a time from the defaults; the combined "
                      "configuration takes the best test NDCG@10 of each sweep):", "",
                      "| configuration | seeds | test NDCG@10 | test HR@10 |", "|---|---|---|---|"]
            lines += [f"| {label} | {len(row.runs)} | {row.mean('ndcg@10'):.4f} ± {row.std('ndcg@10'):.4f} | "
                      f"{row.mean('hit@10'):.4f} ± {row.std('hit@10'):.4f} |" for label, _, row in rows.sweep]
            lines.append("")
    path = results / f"paper_claim_{dataset}.md"
    atomic_write_text(path, "\n".join(lines))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "step", "model", "seeds", "rank", *[f"{METRIC_NAMES[m]}_{part}" for m in METRICS
                                                                    for part in ("mean", "std")]])
    for rows in done:
        ordered = [rows.ours, *ranked(rows.others)]
        for row in ordered + ([rows.untrained] if rows.untrained else []):  # untrained: not ranked
            rank = rank_of(row, [other for other in ordered if other is not row]) if row is not rows.untrained else ""
            writer.writerow([dataset, rows.step.number, row.label, len(row.runs), rank,
                             *[f"{getattr(row, part)(m):.6f}" for m in METRICS for part in ("mean", "std")]])
    atomic_write_text(results / f"paper_claim_{dataset}.csv", buffer.getvalue())
    return path
