"""What a comparison ranks: the protocols, the metrics, SD-MTMP and the baselines (the paper's
Table 2 as this project runs them, the floors first)."""

from recbole_sdmtmp.data.protocol import PROTOCOLS

__all__ = ["PROTOCOLS", "protocol_title", "METRICS", "METRIC_NAMES", "OURS", "FLOORS", "BACKBONE", "BASELINES"]


def protocol_title(protocol: str, code: bool = True) -> str:
    """How a title names the protocol: the printed procedure's results say in every title that
    they were selected on the test split (docs/DESIGN.md §4)."""
    name = f"`{protocol}`" if code else protocol
    return f"{name} (selection on the test split)" if protocol == "paper_as_printed" else name


METRICS = ("hit@10", "hit@20", "ndcg@10", "ndcg@20")
METRIC_NAMES = {"hit@10": "HR@10", "hit@20": "HR@20", "ndcg@10": "NDCG@10", "ndcg@20": "NDCG@20"}
OURS = "SD-MTMP"
FLOORS = ("Pop", "ItemKNN")
BACKBONE = "NGCF"  # SD-MTMP's rating-aware graph encoder (paper section 2.1.1)
# The paper's review-aware and multimodal baselines (Table 2), cheapest first: MISSRec trains
# about 20x slower than SD-MTMP per epoch on CPU, so a study that stops early has the others.
REVIEW_BASELINES = ("RGCL", "RRPU", "MISSRec")
BASELINES = (*FLOORS, "BPR", "NGCF", "LightGCN", "SelfCF", "XSimGCL", "GRU4Rec", "SASRec", *REVIEW_BASELINES)
