"""Topic-aware hypergraph representation learning (paper section 2.1.2).

Nodes are the users (or items) plus the k topics; hyperedge g holds topic g and every user
linked to it. E_bar = Dv^-1 H B^-1 H^T [P(0); E_T] W, of which only the user (item) rows are
used. Nodes without any topic have degree 0 and get a zero topic-aware vector, never NaN.
"""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from recbole_sdmtmp.model.layers.sparse import safe_power


def hypergraph_operators(incidence: sp.spmatrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split Dv^-1 H B^-1 H^T into its two halves for the node rows of an m x k incidence.

    The full incidence is H = [[incidence], [I_k]] (each topic sits in its own hyperedge).
    Returns (edge_gather, node_scatter): edge_gather = B^-1 H^T, of shape k x (m + k), and
    node_scatter = Dv^-1 H restricted to the m node rows, of shape m x k.
    """
    incidence = sp.csr_matrix(incidence, dtype=np.float64)
    n_topics = incidence.shape[1]
    full_incidence = sp.vstack([incidence, sp.identity(n_topics)], format="csr")
    inv_edge_degree = sp.diags(safe_power(full_incidence.sum(axis=0), -1.0))
    inv_node_degree = sp.diags(safe_power(incidence.sum(axis=1), -1.0))
    edge_gather = (inv_edge_degree @ full_incidence.T).tocsr().astype(np.float32)
    node_scatter = (inv_node_degree @ incidence).tocsr().astype(np.float32)
    return edge_gather, node_scatter


class HypergraphConv(nn.Module):
    """One hypergraph convolution (section 2.1.2), node rows only; W_hu has no bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Linear(dim, dim, bias=False)  # W_hu (or W_hi)

    def forward(
        self,
        edge_gather: torch.Tensor,
        node_scatter: torch.Tensor,
        node_embeddings: torch.Tensor,
        topic_embeddings: torch.Tensor,
    ) -> torch.Tensor:
        # edge_gather: sparse [k, m+k]; node_scatter: sparse [m, k];
        # node_embeddings: [m, d] (P(0) or Q(0)); topic_embeddings: [k, d] (E_T) -> [m, d]
        stacked = torch.cat([node_embeddings, topic_embeddings], dim=0)  # [P(0); E_T]
        hyperedges = torch.sparse.mm(edge_gather, stacked)  # B^-1 H^T [P(0); E_T]: [k, d]
        # Dv^-1 H (B^-1 H^T [P(0); E_T] W): W on the k hyperedges, not the m nodes (the same
        # product by associativity; 347 rows instead of 1,429 users on Instrument)
        return torch.sparse.mm(node_scatter, self.weight(hyperedges))
