"""SD-MTMP, one module per section of the paper: the rating-aware graph (``layers.graph``, 2.1.1),
the topic hypergraphs (``hypergraph``, 2.1.2), the dual-aware short-term attention
(``attention``, 2.2), self-distillation (``layers.distillation``, 2.3), the model that joins
them (``model``), and sampled sub-graph batches for scale (``subgraph``)."""

from recbole_sdmtmp.model.sdmtmp.model import SDMTMP, parse_ablation

__all__ = ["SDMTMP", "parse_ablation"]
