"""LightGCN propagation on the binary training graph, shared by the XSimGCL and SelfCF baselines.

Both baselines use LightGCN (He et al., SIGIR 2020, eq. 3) as their encoder:
E(l+1) = D^-1/2 A D^-1/2 E(l), with A = [[0, R], [R^T, 0]] and R the *binary* training
interactions (an edge per (user, item) pair, whatever its rating): no self-loops, weights or
non-linearity. Built with torch sparse ops only (no torch_geometric / dgl).
"""

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from recbole_sdmtmp.model.layers.graph import rating_normalized_adjacency
from recbole_sdmtmp.model.layers.sparse import to_torch_sparse


def binary_normalized_adjacency(dataset) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of ``dataset``'s interactions as a torch sparse [m + n, m + n] matrix.

    ``dataset`` is the training split: RecBole's ``SequentialDataset.inter_matrix`` also holds
    each user's first interaction (history only, never a target). Nodes of degree 0 (the padding
    item, items seen only in validation or test) get all-zero rows, never inf or NaN.
    """
    interactions = sp.csr_matrix(dataset.inter_matrix(form="coo"))  # [m, n], duplicates summed
    binary = (interactions > 0).astype(np.float32)  # an edge per pair, ratings ignored
    return to_torch_sparse(rating_normalized_adjacency(binary))


def propagate(
    adjacency: torch.Tensor,
    ego_embeddings: torch.Tensor,
    n_layers: int,
    perturb: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """[E(0), E(1), ..., E(L)], each [m + n, d]; ``perturb`` is applied to every layer's output
    before it feeds the next layer (XSimGCL's noise); E(0) is never perturbed."""
    layers = [ego_embeddings]
    for _ in range(n_layers):
        layer = torch.sparse.mm(adjacency, layers[-1])  # [m + n, d]
        if perturb is not None:
            layer = perturb(layer)
        layers.append(layer)
    return layers
