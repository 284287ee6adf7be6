"""A comparison table at a glance (matplotlib, Agg)."""

from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import FLOORS, METRIC_NAMES, OURS, protocol_title
from recbole_sdmtmp.experiments.statistics import RowStats, ranked


def save_figure(fig, results: Path, name: str) -> Path:
    """Lay out, write to ``<results>/figures/<name>`` and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    figures = results / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    fig.suptitle(f"{dataset}, protocol {protocol_title(protocol, code=False)}")
    return save_figure(fig, results, f"{dataset}_{protocol}.png")
