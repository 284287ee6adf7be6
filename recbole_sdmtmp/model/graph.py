"""Rating-aware graph representation learning (paper section 2.1.1).

A = [[0, R], [R^T, 0]] with the training ratings as edge weights, L_hat = D^-1/2 A D^-1/2 with
D the weighted degrees, and NGCF layers E(l+1) = LeakyReLU((L_hat + I) E(l) W1 + (L_hat E(l) * E(l)) W2).
"""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from recbole_sdmtmp.model.sparse import safe_power


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
        neighbours = torch.sparse.mm(laplacian, embeddings)  # L_hat E
        return self.activation(
            self.self_and_neighbours(neighbours + embeddings)  # (L_hat + I) E W1
            + self.interaction(neighbours * embeddings)  # (L_hat E * E) W2
        )
