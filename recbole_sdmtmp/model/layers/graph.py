"""Rating-aware graph representation learning (paper section 2.1.1).

A = [[0, R], [R^T, 0]] with the training ratings as edge weights, L_hat = D^-1/2 A D^-1/2 with
D the weighted degrees, and NGCF layers E(l+1) = LeakyReLU((L_hat + I) E(l) W1 + (L_hat E(l) * E(l)) W2).
"""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from recbole_sdmtmp.model.layers.sparse import safe_power


def rating_normalized_adjacency(ratings: sp.spmatrix) -> sp.csr_matrix:
    """Section 2.1.1: L_hat = D^-1/2 A D^-1/2 over users then items; ``ratings`` is m x n."""
    ratings = sp.csr_matrix(ratings, dtype=np.float64)
    adjacency = sp.bmat([[None, ratings], [ratings.T, None]], format="csr")
    inv_sqrt_degree = sp.diags(safe_power(adjacency.sum(axis=1), -0.5))
    return (inv_sqrt_degree @ adjacency @ inv_sqrt_degree).tocsr().astype(np.float32)


class NGCFLayer(nn.Module):
    """One NGCF propagation layer (section 2.1.1), without bias: the paper writes W1, W2 only."""

    def __init__(self, in_dim: int, out_dim: int, negative_slope: float = 0.2):
        super().__init__()
        self.self_and_neighbours = nn.Linear(in_dim, out_dim, bias=False)  # W1
        self.interaction = nn.Linear(in_dim, out_dim, bias=False)  # W2
        self.activation = nn.LeakyReLU(negative_slope)

    def forward(self, laplacian: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        # laplacian: sparse [N, N]; embeddings: [N, d_in] -> [N, d_out]
        return self.combine(torch.sparse.mm(laplacian, embeddings), embeddings)  # L_hat E, E

    def combine(self, neighbours: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """The layer from L_hat E and E (rows of a sub-graph too: recbole_sdmtmp/model/sdmtmp/subgraph.py)."""
        # neighbours, embeddings: [N, d_in] -> [N, d_out]
        return self.activation(
            self.self_and_neighbours(neighbours + embeddings)  # (L_hat + I) E W1
            + self.interaction(neighbours * embeddings)  # (L_hat E * E) W2
        )


def undirected_edge_ids(laplacian: torch.Tensor) -> torch.Tensor:
    """For each stored entry (r, c) of a symmetric coalesced sparse matrix, the id of its
    undirected edge {r, c}, so that both directions of a user-item edge drop together."""
    rows, cols = laplacian.indices()
    keys = torch.minimum(rows, cols) * laplacian.shape[0] + torch.maximum(rows, cols)
    return torch.unique(keys, return_inverse=True)[1]


def edge_dropout(laplacian: torch.Tensor, edge_ids: torch.Tensor, rate: float) -> torch.Tensor:
    """Section 3.5: dropout "reduces redundant connections of the bipartite graph": each
    user-item edge of L_hat is removed with probability ``rate`` (both directions), the kept ones
    rescaled by 1 / (1 - rate) as in NGCF's node dropout on the Laplacian. A dropped edge keeps
    its slot with the value 0, so the indices stay those of the coalesced ``laplacian`` and the
    matrix needs no new coalesce each training step."""
    if rate <= 0.0:
        return laplacian
    n_edges = int(edge_ids.max()) + 1 if edge_ids.numel() else 0
    keep = (torch.rand(n_edges, device=laplacian.device) >= rate)[edge_ids]
    values = laplacian.values() * keep / (1.0 - rate)
    return torch.sparse_coo_tensor(laplacian.indices(), values, laplacian.shape, check_invariants=False,
                                   is_coalesced=True)
