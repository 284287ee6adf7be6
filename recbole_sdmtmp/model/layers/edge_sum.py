"""Weighted sums of rows along the edges of a fixed graph, sum_e w_e x[col_e] into row_e, as one
sparse (CSR) product forwards and two backwards.

The direct form gathers x[col] into an [E, d] tensor, scales it and scatters it with
``index_add``; its backward gathers and multiplies [E, d] tensors again. Here the graph's CSR
structure and that of its transpose are built once, and the gradient of the weights is the
sampled product (g x^T) at the edges: no [E, d] tensor is ever made. Same values as the
direct form up to the order of float additions.
"""

import warnings
from typing import NamedTuple

import torch


class EdgeSum(NamedTuple):
    """A fixed graph of E edges (row_e, col_e) in CSR form, and its transpose."""

    order: torch.Tensor  # [E] the edges in CSR order (by row, then column)
    crow: torch.Tensor  # [n_rows + 1]
    col: torch.Tensor  # [E] column of each CSR entry
    order_t: torch.Tensor  # [E] the CSR entries in the transpose's CSR order
    crow_t: torch.Tensor  # [n_cols + 1]
    col_t: torch.Tensor  # [E] row of each entry of the transpose
    shape: tuple  # (n_rows, n_cols)

    def to(self, device) -> "EdgeSum":
        return EdgeSum(*(t.to(device) if isinstance(t, torch.Tensor) else t for t in self))


def compressed(index: torch.Tensor, n: int) -> torch.Tensor:
    """CSR row pointers of sorted row indices."""
    crow = torch.zeros(n + 1, dtype=torch.int64, device=index.device)
    crow[1:] = torch.cumsum(torch.bincount(index, minlength=n), 0)
    return crow


def edge_sum_structure(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int) -> EdgeSum:
    """The CSR structure of the edges (rows[e], cols[e]), e = 0..E-1."""
    order = torch.argsort(rows * n_cols + cols, stable=True)  # [E]
    row, col = rows[order], cols[order]
    order_t = torch.argsort(col * n_rows + row, stable=True)  # CSR positions, by column then row
    return EdgeSum(order, compressed(row, n_rows), col, order_t, compressed(col[order_t], n_cols), row[order_t],
                   (n_rows, n_cols))


def _csr(crow, col, values, shape):
    with warnings.catch_warnings():  # torch's "CSR support is in beta": the two products used here are not
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _CsrProduct(torch.autograd.Function):
    """A @ x for A = CSR(structure, values); gradients for both the values and x."""

    @staticmethod
    def forward(ctx, values, x, structure: EdgeSum):
        # values: [E] in CSR order; x: [n_cols, d]
        ctx.save_for_backward(values, x)
        ctx.structure = structure
        return _csr(structure.crow, structure.col, values, structure.shape) @ x  # [n_rows, d]

    @staticmethod
    def backward(ctx, grad):
        values, x = ctx.saved_tensors
        s = ctx.structure
        grad = grad.contiguous()
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:  # d/dA_rc = grad[r] . x[c] at the edges only
            pattern = _csr(s.crow, s.col, values.detach(), s.shape)
            grad_values = torch.sparse.sampled_addmm(pattern, grad, x.T, beta=0.0).values()
        if ctx.needs_input_grad[1]:  # A^T grad
            transpose = _csr(s.crow_t, s.col_t, values.detach()[s.order_t], s.shape[::-1])
            grad_x = transpose @ grad
        return grad_values, grad_x, None


def edge_sum(weights: torch.Tensor, x: torch.Tensor, structure: EdgeSum) -> torch.Tensor:
    """[n_rows, d]: row r holds sum over the edges e into r of weights[e] * x[col_e]."""
    # weights: [E] in the edges' own order; x: [n_cols, d]
    return _CsrProduct.apply(weights[structure.order], x, structure)
