"""Seeds aggregated per row, and paired tests on per-case metrics."""

import statistics

import numpy as np
from dataclasses import dataclass, field
from scipy import stats

from recbole_sdmtmp.experiments.catalogue import METRIC_NAMES, METRICS


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


def aggregate(records: dict, dataset: str) -> list[RowStats]:
    rows: dict[str, RowStats] = {}
    for cell, record in records.items():
        if cell.dataset == dataset:
            rows.setdefault(cell.label, RowStats(cell.label)).runs.append(record)
    return list(rows.values())


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


def ranked(rows: list[RowStats], metric: str = "ndcg@10") -> list[RowStats]:
    """Rows from the best mean to the worst (ties keep the table's order)."""
    return sorted(rows, key=lambda row: -row.mean(metric))


def rank_of(ours: RowStats, others: list[RowStats], metric: str = "ndcg@10") -> int:
    """SD-MTMP's place among the step's rows by mean test score (1 = best; a tie counts for it)."""
    return 1 + sum(other.mean(metric) > ours.mean(metric) for other in others)
