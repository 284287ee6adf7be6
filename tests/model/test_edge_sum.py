"""Sums along a fixed graph's edges as CSR products: the values and both gradients of the direct
gather-scale-scatter form."""

import pytest
import torch

from recbole_sdmtmp.model.layers.edge_sum import edge_sum, edge_sum_structure


def test_hand_computed_sums_and_gradients():
    # edges (row, col, weight): (1, 0, 2), (0, 2, 1), (1, 2, 3); rows 0..2 (row 2 has no edge)
    rows, cols = torch.tensor([1, 0, 1]), torch.tensor([0, 2, 2])
    weights = torch.tensor([2.0, 1.0, 3.0], requires_grad=True)
    x = torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, 1.0]], requires_grad=True)
    out = edge_sum(weights, x, edge_sum_structure(rows, cols, 3, 3))
    assert out.tolist() == [[0.0, 1.0], [2.0, 3.0], [0.0, 0.0]]
    (out * torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
    # d/dw_e = grad[row_e] . x[col_e]; d/dx_c = sum over edges from c of w_e grad[row_e]
    assert weights.grad.tolist() == [3.0, 2.0, 4.0]
    assert x.grad.tolist() == [[6.0, 8.0], [0.0, 0.0], [1.0 + 9.0, 2.0 + 12.0]]


@pytest.mark.parametrize("n_rows, n_cols, n_edges", [(7, 5, 30), (40, 60, 200)])
def test_the_direct_form_on_random_graphs(n_rows, n_cols, n_edges):
    generator = torch.Generator().manual_seed(n_edges)
    rows = torch.randint(0, n_rows, (n_edges,), generator=generator)
    cols = torch.randint(0, n_cols, (n_edges,), generator=generator)  # repeated edges included
    weights = torch.rand(n_edges, generator=generator, requires_grad=True)
    x = torch.randn(n_cols, 8, generator=generator, requires_grad=True)
    upstream = torch.randn(n_rows, 8, generator=generator)
    results = []
    for form in ("csr", "direct"):
        weights.grad = x.grad = None
        if form == "csr":
            out = edge_sum(weights, x, edge_sum_structure(rows, cols, n_rows, n_cols))
        else:
            out = x.new_zeros(n_rows, 8).index_add(0, rows, weights.unsqueeze(-1) * x[cols])
        (out * upstream).sum().backward()
        results.append((out.detach(), weights.grad.clone(), x.grad.clone()))
    for csr, direct in zip(*results):
        torch.testing.assert_close(csr, direct)
