"""The paper's studies' reports in Markdown and CSV, rebuilt from the cells each time: the
ablation, the readings and variants, the sensitivity sweeps and the paper-claim steps."""

import csv
import io
from pathlib import Path

import numpy as np

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.experiments.catalogue import METRIC_NAMES, METRICS, OURS, protocol_title
from recbole_sdmtmp.experiments.statistics import RowStats, aggregate, rank_of, ranked
from recbole_sdmtmp.experiments.tables import metrics_table, paired_section, tuning_note, write_csv
from recbole_sdmtmp.experiments.tuning import configuration
from studies.catalogue import ABLATIONS, CHANGE_STUDIES, CLAIM_BASELINES, SWEEP_LABELS
from studies.figures import plot_paper_claim
from studies.rows import step_summary, sweep_points


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
    the best other row after each, then each step's full table (``studies/paper_claim.py``)."""
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
