"""Which row holds each swept value, and what one step of the paper-claim study did."""

from recbole_sdmtmp.experiments.statistics import RowStats, aggregate, rank_of, ranked, significance
from studies.catalogue import sweep_label


def sweep_points(records: dict, dataset: str, param: str, values, row_labels: dict) -> list[RowStats]:
    """The row of each swept value: its own, or the tuned model's where ``row_labels`` says so."""
    rows = {row.label: row for row in aggregate(records, dataset)}
    return [rows[row_labels.get((dataset, value), sweep_label(param, value))] for value in values]



def step_summary(number: int, ours: RowStats, others: list[RowStats]) -> dict:
    """What a step of the paper-claim study did: SD-MTMP's scores and rank, the best other row
    and the paired tests against it."""
    best = ranked(others)[0]
    tests = {test["metric"]: test for test in significance(ours, best)}
    return {
        "step": number, "rank": rank_of(ours, others), "of": 1 + len(others),
        "ours_ndcg": ours.mean("ndcg@10"), "ours_hr": ours.mean("hit@10"),
        "best": best.label, "best_ndcg": best.mean("ndcg@10"), "best_hr": best.mean("hit@10"),
        "ndcg_difference": tests["NDCG@10"]["difference"], "ndcg_wilcoxon_p": tests["NDCG@10"]["wilcoxon_p"],
        "ndcg_ttest_p": tests["NDCG@10"]["ttest_p"], "hr_difference": tests["HR@10"]["difference"],
        "hr_wilcoxon_p": tests["HR@10"]["wilcoxon_p"], "hr_ttest_p": tests["HR@10"]["ttest_p"],
        "cases": tests["NDCG@10"]["cases"], "seeds": len(ours.runs),
    }

