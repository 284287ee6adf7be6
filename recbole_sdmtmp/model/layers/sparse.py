"""scipy -> torch sparse conversion and safe degree inverses, shared by every graph model."""

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_sparse(matrix: sp.spmatrix) -> torch.Tensor:
    """A scipy matrix as a coalesced float32 torch COO tensor (what ``torch.sparse.mm`` wants)."""
    coo = sp.coo_matrix(matrix, dtype=np.float32)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data)
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=False).coalesce()


def safe_power(degrees: np.ndarray, exponent: float) -> np.ndarray:
    """degrees ** exponent with 0 for degree-0 nodes, so isolated nodes give 0, never inf/NaN."""
    degrees = np.asarray(degrees, dtype=np.float64).ravel()
    result = np.zeros_like(degrees)
    positive = degrees > 0
    result[positive] = degrees[positive] ** exponent
    return result
