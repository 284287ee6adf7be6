"""The paper's studies' figures (matplotlib, Agg): the sensitivity curves of section 3.6 and the
paper-claim steps."""

from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import METRIC_NAMES, OURS, protocol_title
from recbole_sdmtmp.experiments.figures import save_figure
from recbole_sdmtmp.experiments.statistics import aggregate
from studies.catalogue import SWEEP_LABELS
from studies.rows import sweep_points


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
        ax.set_title(f"SD-MTMP: {name} at different {symbol} (protocol {protocol_title(protocol, code=False)})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = figures / f"sensitivity_{param}_{'-'.join(datasets)}_{protocol}_{name.lower()}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_paper_claim(summaries: list[dict], dataset: str, results: Path) -> Path:
    """SD-MTMP's rank after each step of the printed procedure (left) and its test NDCG@10
    against the best other row of the step (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s["step"] for s in summaries]
    fig, (rank_ax, score_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    rank_ax.plot(steps, [s["rank"] for s in summaries], "o-", color="tab:red")
    rows = max(s["of"] for s in summaries)
    rank_ax.set_ylim(rows + 0.5, 0.5)
    rank_ax.set_yticks(range(1, rows + 1))
    rank_ax.set_ylabel(f"{OURS} rank by test NDCG@10 (1 = best)")
    score_ax.plot(steps, [s["ours_ndcg"] for s in summaries], "o-", color="tab:red", label=OURS)
    score_ax.plot(steps, [s["best_ndcg"] for s in summaries], "s--", color="tab:blue", label="best other row")
    for s in summaries:
        score_ax.annotate(s["best"], (s["step"], s["best_ndcg"]), fontsize=7, xytext=(4, -10), textcoords="offset points")
    score_ax.set_ylabel(f"test NDCG@10 (mean, {max(s['seeds'] for s in summaries)} seeds)")
    score_ax.legend(fontsize=8)
    for ax in (rank_ax, score_ax):
        ax.set_xticks(range(1, 6))
        ax.set_xlabel("step of the printed procedure (2-5: selection on the test split)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dataset}: the paper's procedure step by step (steps 2-5 select on the test split)", fontsize=10)
    return save_figure(fig, results, f"paper_claim_{dataset}.png")
