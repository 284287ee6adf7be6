"""Side-by-side comparison under one protocol: baselines, ablations and sensitivity sweeps.

    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned
    python -m recbole_sdmtmp.compare ablation --protocol paper --datasets Instrument
    python -m recbole_sdmtmp.compare sensitivity --protocol paper --datasets Instrument --param beta

Every (row, dataset, seed) cell is one ``runner.run`` on the same dataset, dataloaders, split and
evaluator, in this process, one after the other (timings are comparable). A finished cell is a
JSON file under ``<results>/cells/<protocol>/``; it is not run again unless ``--rerun``. Tables
are rebuilt from the cell files each time. ``--tuned`` runs each model with the configuration
that ``python -m recbole_sdmtmp.tune`` chose on validation, read from its study store.
"""

import argparse
import csv
import io
import json
import logging
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm import tqdm

from dataset_preprocess.atomic_io import atomic_write_json, atomic_write_text

METRICS = ("hit@10", "hit@20", "ndcg@10", "ndcg@20")
METRIC_NAMES = {"hit@10": "HR@10", "hit@20": "HR@20", "ndcg@10": "NDCG@10", "ndcg@20": "NDCG@20"}
OURS = "SD-MTMP"
FLOORS = ("Pop", "ItemKNN")
BACKBONE = "NGCF"  # SD-MTMP's rating-aware graph encoder (paper section 2.1.1)
# The paper's review-aware and multimodal baselines (Table 2), cheapest first: MISSRec trains
# about 20x slower than SD-MTMP per epoch on CPU, so a study that stops early has the others.
REVIEW_BASELINES = ("RGCL", "RRPU", "MISSRec")
BASELINES = (*FLOORS, "BPR", "NGCF", "LightGCN", "SelfCF", "XSimGCL", "GRU4Rec", "SASRec", *REVIEW_BASELINES)
ABLATIONS = ("w/o-H", "w/o-S1", "w/o-S2", "w/o-A")
# SPEC 3: where the first version departed from the paper, or where the paper reads two ways.
# One row per change against the faithful defaults, on the same split and seeds; the ambiguous
# ones (attention, distillation) are chosen on validation.
READINGS = {
    "L2: RecBole's EmbLoss on the batch (first version)": (("reg_type", "batch_embeddings"),),
    "negatives: only the target excluded (first version)": (("train_neg_exclude", "target"),),
    "dropout: on GCN messages (first version)": (("dropout_type", "message"),),
    "attention: product divided by its sum": (("attention_norm", "sum"),),
    "distillation: KL as printed, KL(p_inter || p_topic)": (("sd_direction", "as_printed"),),
    "distillation: teacher not detached": (("sd_detach_teacher", False),),
}
# SPEC 3 / issue 7: departures from the paper, as extra labelled rows that never replace it.
VARIANTS = {
    "beyond the paper: cross-entropy over every item": (("loss_type", "CE"), ("train_neg_sample_args", None)),
    "beyond the paper: distillation temperature 0.1": (("sd_temperature", 0.1),),
    "beyond the paper: LightGCN propagation in the rating-aware graph": (("graph_encoder", "lightgcn"),),
    "beyond the paper: order-aware short-term part (a GRU over the window)": (("short_term_encoder", "gru"),),
    "beyond the paper: a GRU over the whole history as the short-term part": (
        ("short_term_encoder", "gru"), ("short_term_ratio", 1.0)),
    "beyond the paper: both (a GRU over the whole history, cross-entropy over every item)": (
        ("short_term_encoder", "gru"), ("short_term_ratio", 1.0), ("loss_type", "CE"), ("train_neg_sample_args", None)),
    "for scale: sampled 2-hop sub-graph batches (fanout 10, sparse embeddings)": (
        ("graph_batch", "subgraph"), ("subgraph_fanout", 10), ("sparse_embeddings", True)),
}
CHANGE_STUDIES = {
    "readings": (READINGS, "SD-MTMP's readings of the paper",
                 "The first row is the faithful default (squared L2 of all parameters, negatives the "
                 "user never had, edge dropout, softmax attention, KL(p_topic || p_inter) with the "
                 "teacher detached); each other row changes one thing. Validation NDCG@10 chooses "
                 "between readings; test metrics for the record."),
    "variants": (VARIANTS, "SD-MTMP and variants beyond the paper",
                 "The first row is the faithful model; each other row is a labelled departure from "
                 "the paper (never a replacement for it), on the same split and seeds."),
}
# Paper section 3.6: the values swept in figures 2-9.
SWEEPS = {
    "embedding_size": (64, 128, 256, 512),
    "n_layers": (1, 2, 3),
    "beta": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "gamma2": (0.2, 0.25, 0.4, 0.45, 0.6),
}
SWEEP_LABELS = {"embedding_size": "d", "n_layers": "L", "beta": "β", "gamma2": "γ2"}

logger = logging.getLogger(__name__)


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


@dataclass
class RowStats:
    """The seeds of one row on one dataset, aggregated."""

    label: str
    runs: list = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [run["test_result"][metric] for run in self.runs]

    def mean(self, metric: str) -> float:
        return float(np.mean(self.values(metric)))

    def std(self, metric: str) -> float:
        values = self.values(metric)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def case_metric(self, metric: str) -> np.ndarray:
        """Per test case, the metric averaged over seeds (the split is the same for every seed)."""
        per_seed = [np.asarray(run["test_case_metrics"][metric]) for run in self.runs]
        return np.mean(per_seed, axis=0)

    def median_of(self, key: str) -> float | None:
        values = [run[key] for run in self.runs if run.get(key) is not None]
        return statistics.median(values) if values else None


def finished_record(cell: Cell, results: Path) -> dict | None:
    """The cell's saved record, unless absent or run with other settings (a tuned configuration
    that a longer study has since replaced): such a stale cell is run again."""
    path = cell.path(results)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if "overrides" in record and record["overrides"] != {k: thaw(v) for k, v in cell.overrides}:
        logger.info("%s was run with other settings: running it again", path)
        return None
    return record


def run_cells(cells: list[Cell], results: Path, data_root: str, rerun: bool = False,
              threads: int | None = None) -> dict:
    """Run what is missing (or everything with ``rerun``); return {cell: its JSON record}.

    ``threads`` sets torch's intra-op threads: on a small shared CPU one thread per process
    avoids OpenMP spin-waits that made tiny-tensor steps many times slower when another job ran.
    """
    import torch

    from recbole_sdmtmp.data.preparation import ensure_prepared
    from recbole_sdmtmp.runner import build_config, run

    if threads:
        torch.set_num_threads(threads)

    records = {}
    for cell in cells:
        if not rerun and (record := finished_record(cell, results)) is not None:
            records[cell] = record
    todo = [cell for cell in cells if cell not in records]
    if len(cells) > len(todo):
        logger.info("%d of %d cells already finished: not run again", len(cells) - len(todo), len(cells))
    progress = tqdm(todo, desc="cells", unit="run")
    for cell in progress:
        if not rerun and (record := finished_record(cell, results)) is not None:
            records[cell] = record  # finished meanwhile by another process
            continue
        progress.set_postfix_str(f"{cell.dataset} {cell.label} seed {cell.seed}")
        settings = {
            "seed": cell.seed,
            "protocol": cell.protocol,
            "data_path": data_root,
            "show_progress": False,
            "checkpoint_dir": str(results / "checkpoints"),
        }
        base = build_config(cell.model, cell.dataset, config_dict=settings)
        ensure_prepared(base)
        settings.update(expand_overrides(dict(cell.overrides), base))
        result = run(cell.model, cell.dataset, config_dict=settings, evaluate_test=cell.evaluate_test).to_dict()
        record = {"label": cell.label, "overrides": {k: thaw(v) for k, v in cell.overrides}, **result}
        cell.path(results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cell.path(results), record)
        records[cell] = record
    return records


def aggregate(records: dict, dataset: str) -> list[RowStats]:
    rows: dict[str, RowStats] = {}
    for cell, record in records.items():
        if cell.dataset == dataset:
            rows.setdefault(cell.label, RowStats(cell.label)).runs.append(record)
    return list(rows.values())


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


def significance(ours: RowStats, other: RowStats) -> list[dict]:
    """Paired tests on per-case metrics (averaged over seeds): Wilcoxon signed-rank and t-test."""
    tests = []
    for metric in METRICS:
        a, b = ours.case_metric(metric), other.case_metric(metric)
        if a.shape != b.shape:
            raise ValueError(f"{ours.label} and {other.label} were tested on different cases")
        differences = a - b
        wilcoxon = stats.wilcoxon(a, b) if np.any(differences != 0) else None
        tests.append({
            "metric": METRIC_NAMES[metric],
            "mean_ours": float(a.mean()),
            "mean_other": float(b.mean()),
            "difference": float(differences.mean()),
            "wilcoxon_p": float(wilcoxon.pvalue) if wilcoxon is not None else 1.0,
            "ttest_p": float(stats.ttest_rel(a, b).pvalue) if np.any(differences != 0) else 1.0,
            "cases": int(a.shape[0]),
        })
    return tests


def timing_table(rows: list[RowStats]) -> list[str]:
    reference = next((row for row in rows if row.label == OURS), None)
    reference_epoch = reference.median_of("train_seconds_per_epoch") if reference else None
    lines = [
        "| model | s / training epoch (median) | s / full evaluation (median) | epochs run (mean) "
        f"| epoch time / {OURS} |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        epoch, evaluation = row.median_of("train_seconds_per_epoch"), row.median_of("eval_seconds")
        epochs = np.mean([run["epochs"] for run in row.runs])
        ratio = f"{epoch / reference_epoch:.2f}" if reference_epoch and epoch else "n/a"
        lines.append(f"| {row.label} | {epoch:.2f} | {evaluation:.2f} | {epochs:.0f} | {ratio} |")
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
    return (f"Device: {', '.join(devices)}. Each time is a median measured inside its own cell; cells "
            "that ran while other jobs shared the CPU (as during this project's studies on a 2-core "
            "machine) ran slower, so read the ratios as rough.")


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


def write_comparison(records: dict, dataset: str, results: Path, command: str,
                     protocol: str = "paper", tuned: str | None = None) -> Path:
    rows = aggregate(records, dataset)
    rows.sort(key=lambda row: (row.label != OURS, -row.mean("ndcg@10")))
    lines = [f"# {dataset}: SD-MTMP against the baselines, protocol `{protocol}`", "",
             f"Produced by `{command}`. {PROTOCOL_NOTES[protocol]} {tuning_note(tuned)} Test "
             "split, full ranking, mean ± standard deviation over seeds; the best mean of each "
             "column in bold. Pop and ItemKNN are floors.", "", *metrics_table(rows), ""]
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


def ranked(rows: list[RowStats], metric: str = "ndcg@10") -> list[RowStats]:
    """Rows from the best mean to the worst (ties keep the table's order)."""
    return sorted(rows, key=lambda row: -row.mean(metric))


def plot_comparison(rows: list[RowStats], dataset: str, results: Path, protocol: str) -> Path:
    """One look at a table: every model's test NDCG@10 and HR@10 (mean ± std), best at the top,
    SD-MTMP in red and the floors in grey, so where SD-MTMP ranks needs no reading."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = ranked(rows)[::-1]  # barh draws bottom-up
    colours = ["tab:red" if row.label == OURS else "0.6" if row.label in FLOORS else "tab:blue"
               for row in order]
    n_seeds = max(len(row.runs) for row in rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.32 * len(rows) + 1.4), sharey=True)
    for ax, metric in zip(axes, ("ndcg@10", "hit@10")):
        ax.barh(range(len(order)), [row.mean(metric) for row in order],
                xerr=[row.std(metric) for row in order], color=colours, capsize=2)
        ax.set_xlabel(f"test {METRIC_NAMES[metric]} (mean ± std, {n_seeds} seeds)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(order)), [row.label for row in order])
    fig.suptitle(f"{dataset}, protocol {protocol}")
    fig.tight_layout()
    figures = results / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / f"{dataset}_{protocol}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_ablation(records: dict, dataset: str, results: Path, command: str,
                   protocol: str = "paper", tuned: str | None = None) -> Path:
    rows = aggregate(records, dataset)
    order = [OURS, *ABLATIONS]
    rows.sort(key=lambda row: order.index(row.label))
    lines = [f"# {dataset}: ablation of SD-MTMP (paper section 3.4), protocol `{protocol}`", "",
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
    """SPEC 3: each change of the faithful model (its first version, its other reading, or a
    labelled variant beyond the paper) with the validation score that chooses between readings."""
    changes, title, intro = CHANGE_STUDIES[study]
    rows = aggregate(records, dataset)
    order = [OURS, *changes]
    rows.sort(key=lambda row: order.index(row.label))
    lines = [f"# {dataset}: {title}, protocol `{protocol}`", "",
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


def plot_sensitivity(records: dict, datasets: list[str], param: str, values, results: Path,
                     protocol: str = "paper", row_labels: dict | None = None) -> list[Path]:
    """Paper figures 2-9: one figure for HR and one for NDCG, a line per (dataset, K); named by
    the datasets, so sweeping another dataset later does not overwrite them. ``row_labels`` maps
    (dataset, value) to the row that holds it, where that is not the sweep's own label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = results / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    symbol = SWEEP_LABELS.get(param, param)
    n_seeds = max(len(row.runs) for dataset in datasets for row in aggregate(records, dataset))
    paths = []
    for family in ("hit", "ndcg"):
        name = "HR" if family == "hit" else "NDCG"
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for dataset in datasets:
            points = sweep_points(records, dataset, param, values, row_labels or {})
            for k, style in ((10, "o-"), (20, "s--")):
                metric = f"{family}@{k}"
                means = [row.mean(metric) for row in points]
                errors = [row.std(metric) for row in points]
                ax.errorbar(range(len(values)), means, yerr=errors, fmt=style, capsize=3,
                            label=f"{dataset} {METRIC_NAMES[metric]}")
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(symbol)
        ax.set_ylabel(f"test {name} (mean ± std, {n_seeds} seeds)")
        ax.set_title(f"SD-MTMP: {name} at different {symbol} (protocol {protocol})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = figures / f"sensitivity_{param}_{'-'.join(datasets)}_{protocol}_{name.lower()}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_sensitivity(records: dict, datasets: list[str], param: str, values, results: Path,
                      command: str, protocol: str, tuned: str | None, row_labels: dict,
                      figures: list[Path]) -> Path:
    """The numbers behind the sensitivity figures, so that a figure quoted in prose has a table
    and a command."""
    symbol = SWEEP_LABELS.get(param, param)
    stem = f"sensitivity_{param}_{'-'.join(datasets)}_{protocol}"
    lines = [f"# SD-MTMP at different {symbol} (`{param}`, paper section 3.6), protocol `{protocol}`", "",
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


def sweep_points(records: dict, dataset: str, param: str, values, row_labels: dict) -> list[RowStats]:
    """The row of each swept value: its own, or the tuned model's where ``row_labels`` says so."""
    rows = {row.label: row for row in aggregate(records, dataset)}
    return [rows[row_labels.get((dataset, value), sweep_label(param, value))] for value in values]


def sweep_label(param: str, value) -> str:
    return f"{OURS} {param}={value}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("table", "ablation", "readings", "variants", "sensitivity"))
    parser.add_argument("--protocol", choices=("paper", "next_item"), default="paper")
    parser.add_argument("--tuned", action="store_true",
                        help="run each model with the configuration chosen by recbole_sdmtmp.tune")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025, 2026])
    parser.add_argument("--models", nargs="+", default=["SDMTMP", *BASELINES],
                        help="rows of 'table' (SDMTMP is labelled SD-MTMP)")
    parser.add_argument("--param", choices=sorted(SWEEPS), help="the swept hyperparameter for 'sensitivity'")
    parser.add_argument("--values", nargs="+", type=float, help="values to sweep (default: the paper's)")
    parser.add_argument("--results", default="results", help="output folder")
    parser.add_argument("--data-path", default="dataset/", help="RecBole data_path")
    parser.add_argument("--rerun", action="store_true", help="run finished cells again")
    parser.add_argument("--storage", help="with --tuned: SQLAlchemy URL of the tuning studies "
                                          "(default sqlite:///<results>/tuning/studies.db)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import sys

    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    command = "python -m recbole_sdmtmp.compare " + " ".join(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    if args.study == "sensitivity" and args.param is None:
        raise SystemExit("sensitivity needs --param: one of " + ", ".join(SWEEPS))
    values = sweep_values(args.param, args.values) if args.study == "sensitivity" else None
    cells, sweep_rows = plan_cells(args.study, args.datasets, args.protocol, args.seeds, results,
                                   args.tuned, args.models, args.param, values, args.storage)
    records = run_cells(cells, results, args.data_path, rerun=args.rerun, threads=args.threads)
    tuned = f"`python -m recbole_sdmtmp.tune --protocol {args.protocol}`" if args.tuned else None
    for dataset in args.datasets:
        if args.study == "table":
            print(write_comparison(records, dataset, results, command, args.protocol, tuned))
        elif args.study == "ablation":
            print(write_ablation(records, dataset, results, command, args.protocol, tuned))
        elif args.study in CHANGE_STUDIES:
            print(write_readings(records, dataset, results, command, args.protocol, tuned, args.study))
    if args.study == "sensitivity":
        figures = plot_sensitivity(records, args.datasets, args.param, values, results, args.protocol,
                                   sweep_rows)
        print(write_sensitivity(records, args.datasets, args.param, values, results, command,
                                args.protocol, tuned, sweep_rows, figures))
    return 0


def sweep_values(param: str, values=None) -> list:
    values = values or SWEEPS[param]
    return [int(v) for v in values] if param in ("n_layers", "embedding_size") else list(values)


def plan_cells(study: str, datasets, protocol: str, seeds, results: Path, tuned: bool = False,
               models=("SDMTMP", *BASELINES), param: str | None = None, values=None,
               storage: str | None = None):
    """The cells of one study, and for a sweep the row holding each (dataset, value).

    One place decides what a study runs, so that ``status`` counts exactly what ``compare`` would
    run. In a tuned sweep, the tuned value itself is the tuned model's row (same configuration).
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
            settings = dict(tuned_overrides(results, model, dataset, protocol, storage)) if tuned else {}
            unchanged = all(settings.get(key) == value for key, value in overrides)
            settings.update(overrides)  # the row's own setting wins over the tuned one
            if study == "sensitivity":
                if overrides and unchanged:
                    label = OURS  # the tuned value itself: the tuned model's own cells, not a rerun
                sweep_rows[dataset, overrides[0][1]] = label
            cells += [Cell(label, model, dataset, seed, frozen_overrides(settings), protocol,
                           "cells_tuned" if tuned else "cells") for seed in seeds]
    return cells, sweep_rows


def tuned_overrides(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None) -> dict:
    """The configuration the tuning study in the store chose on validation for ``model``."""
    from recbole_sdmtmp.tune import chosen_trial

    return chosen_trial(results, model, dataset, protocol, storage)["overrides"]


if __name__ == "__main__":
    raise SystemExit(main())
