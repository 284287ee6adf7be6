"""Each equation of the paper's section 2 against values computed by hand on tiny inputs."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbole_sdmtmp.model.sdmtmp.attention import (
    distinct_rows, dual_aware_weights, ordered_window, short_term_mask, window_positions,
)
from recbole_sdmtmp.model.layers.distillation import info_nce_loss, self_distillation_loss
from recbole_sdmtmp.model.layers.graph import NGCFLayer, rating_normalized_adjacency
from recbole_sdmtmp.model.sdmtmp.hypergraph import HypergraphConv, hypergraph_operators
from recbole_sdmtmp.model.sdmtmp import parse_ablation
from recbole_sdmtmp.model.layers.sparse import to_torch_sparse

# Users u0, u1, u2 (u2 has no rating) and items i0, i1; u0-i0: 5, u1-i0: 3, u1-i1: 1.
RATINGS = sp.csr_matrix(np.array([[5.0, 0.0], [3.0, 1.0], [0.0, 0.0]]))


def test_rating_weighted_normalized_adjacency_by_hand():
    """2.1.1: weighted degrees u0 5, u1 4, i0 8, i1 1; L[u,i] = r / sqrt(d_u d_i)."""
    laplacian = rating_normalized_adjacency(RATINGS).toarray()
    u0, u1, u2, i0, i1 = range(5)
    assert laplacian[u0, i0] == pytest.approx(5 / math.sqrt(40))  # 0.790569
    assert laplacian[u1, i0] == pytest.approx(3 / math.sqrt(32))  # 0.530330
    assert laplacian[u1, i1] == pytest.approx(0.5)
    np.testing.assert_allclose(laplacian, laplacian.T)
    assert laplacian[u0, u1] == 0 and laplacian[i0, i1] == 0  # bipartite
    assert np.all(laplacian[u2] == 0) and np.isfinite(laplacian).all()  # degree 0: no NaN


def test_ngcf_layer_by_hand():
    """E' = LeakyReLU((L + I) E W1 + (L E * E) W2) with d = 1, W1 = 2, W2 = 0.5, then W1 = -1."""
    laplacian = to_torch_sparse(rating_normalized_adjacency(RATINGS))
    embeddings = torch.tensor([[1.0], [2.0], [7.0], [3.0], [4.0]])  # u0 u1 u2 i0 i1
    layer = NGCFLayer(1, 1, negative_slope=0.2)
    with torch.no_grad():
        layer.self_and_neighbours.weight.fill_(2.0)
        layer.interaction.weight.fill_(0.5)
    out = layer(laplacian, embeddings).detach().squeeze(1)
    # L E: u0 = 0.790569 * 3 = 2.371708; i1 = 0.5 * 2 = 1.0; u2 = 0 (isolated)
    assert out[0].item() == pytest.approx(2 * (2.371708 + 1) + 0.5 * 2.371708 * 1, rel=1e-5)
    assert out[4].item() == pytest.approx(2 * (1.0 + 4) + 0.5 * 1.0 * 4, rel=1e-5)
    assert out[2].item() == pytest.approx(2 * 7.0)  # only the self-loop of (L + I)
    with torch.no_grad():
        layer.self_and_neighbours.weight.fill_(-1.0)
    out = layer(laplacian, embeddings).detach().squeeze(1)
    # u0: -(2.371708 + 1) + 0.5 * 2.371708 = -2.185854, LeakyReLU slope 0.2 -> -0.437171
    assert out[0].item() == pytest.approx(-0.4371708, rel=1e-5)


def test_hypergraph_convolution_by_hand_with_isolated_node():
    """2.1.2: u0 in g0; u1 in g0, g1; u2 in none. Edge degrees g0 3 (u0, u1, t0), g1 2 (u1, t1)."""
    incidence = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    edge_gather, node_scatter = hypergraph_operators(incidence)
    assert edge_gather.shape == (2, 5) and node_scatter.shape == (3, 2)
    conv = HypergraphConv(1)
    with torch.no_grad():
        conv.weight.weight.fill_(1.0)
    users = torch.tensor([[1.0], [2.0], [3.0]])
    topics = torch.tensor([[10.0], [20.0]])
    out = conv(to_torch_sparse(edge_gather), to_torch_sparse(node_scatter), users, topics)
    # g0 = (1 + 2 + 10) / 3 = 13/3; g1 = (2 + 20) / 2 = 11; u0 = g0; u1 = (g0 + g1) / 2; u2 = 0.
    np.testing.assert_allclose(out.detach().squeeze(1).numpy(), [13 / 3, 23 / 3, 0.0], rtol=1e-6)
    assert torch.isfinite(out).all()
    with torch.no_grad():
        conv.weight.weight.fill_(2.0)  # W_hu multiplies after the propagation
    out = conv(to_torch_sparse(edge_gather), to_torch_sparse(node_scatter), users, topics)
    np.testing.assert_allclose(out.detach().squeeze(1).numpy(), [26 / 3, 46 / 3, 0.0], rtol=1e-6)
    # d = 2, a full W: the dense formula Dv^-1 H B^-1 H^T [P(0); E_T] W, node rows
    conv = HypergraphConv(2)
    users2, topics2 = torch.randn(3, 2), torch.randn(2, 2)
    full = np.vstack([incidence.toarray(), np.eye(2)])  # H: (m + k) x k
    propagation = np.diag(1 / np.maximum(full.sum(1), 1)) @ full @ np.diag(1 / full.sum(0)) @ full.T
    propagation[2] = 0.0  # u2 has no topic: degree 0, a zero row
    weight = conv.weight.weight.detach().numpy()
    expected = (propagation @ np.vstack([users2.numpy(), topics2.numpy()]) @ weight.T)[:3]
    out = conv(to_torch_sparse(edge_gather), to_torch_sparse(node_scatter), users2, topics2)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_self_distillation_is_kl_teacher_to_student():
    """2.1.3: p_T = (0.5, 0.5), p_S = (0.25, 0.75): KL(T||S) = 0.143841, KL(S||T) = 0.130812."""
    teacher = torch.tensor([[0.0, 0.0]], requires_grad=True)
    student = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    loss = self_distillation_loss(teacher, student)
    assert loss.item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-5)
    assert loss.item() != pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-3)
    loss.backward()
    assert teacher.grad is None  # detached: knowledge flows teacher -> student only
    assert student.grad is not None and student.grad.abs().sum() > 0

    teacher.grad = None
    self_distillation_loss(teacher, student, detach_teacher=False).backward()
    assert teacher.grad is not None and teacher.grad.abs().sum() > 0


def test_self_distillation_mean_over_nodes_and_mask():
    teacher = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    student = torch.tensor([[0.0, math.log(3.0)], [5.0, -5.0]])
    both = self_distillation_loss(teacher, student)
    assert both.item() == pytest.approx(0.143841 / 2, rel=1e-4)  # second node: KL = 0
    only_first = self_distillation_loss(teacher, student, mask=torch.tensor([True, False]))
    assert only_first.item() == pytest.approx(0.143841, rel=1e-4)
    none = self_distillation_loss(teacher, student, mask=torch.tensor([False, False]))
    assert none.item() == 0.0


def test_self_distillation_temperature_softens():
    teacher = torch.tensor([[0.0, 0.0]])
    student = torch.tensor([[0.0, 2 * math.log(3.0)]])
    # tau = 2 halves the logits: the same pair as the tau = 1 case above.
    assert self_distillation_loss(teacher, student, temperature=2.0).item() == pytest.approx(
        0.143841, rel=1e-4
    )


def test_info_nce_by_hand():
    """w/o-S1: two nodes, orthogonal views; logits /0.5 -> loss = log(1 + e^-2)."""
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert info_nce_loss(anchor, anchor.clone(), temperature=0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2)), rel=1e-6
    )
    empty = torch.zeros(0, 2, requires_grad=True)  # a batch whose nodes have no topic
    loss = info_nce_loss(empty, empty, temperature=0.5)
    assert loss.item() == 0.0
    loss.backward()


def test_short_term_window_is_newest_fifth_at_least_one():
    lengths = torch.tensor([1, 4, 5, 6, 10])
    mask = short_term_mask(lengths, max_length=10, ratio=0.2)
    expected_windows = [(0, 1), (3, 4), (4, 5), (4, 6), (8, 10)]  # ceil(0.2 n), >= 1
    for row, (start, end) in enumerate(expected_windows):
        assert mask[row].nonzero().squeeze(1).tolist() == list(range(start, end))


def test_ordered_window_moves_the_window_to_the_front_oldest_first():
    """The GRU variant's input: rows of lengths 1, 5 and 10 (windows of 1, 1 and 2 items)."""
    item_seq = torch.tensor([[7, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                             [1, 2, 3, 4, 5, 0, 0, 0, 0, 0],
                             [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]])
    window = short_term_mask(torch.tensor([1, 5, 10]), max_length=10, ratio=0.2)
    items, sizes = ordered_window(item_seq, window)
    assert sizes.tolist() == [1, 1, 2]
    assert items.tolist() == [[7, 7], [5, 5], [19, 20]]  # past a row's size: its newest item again
    whole, sizes = ordered_window(item_seq, short_term_mask(torch.tensor([1, 5, 10]), 10, ratio=1.0))
    assert sizes.tolist() == [1, 5, 10] and whole[1, :6].tolist() == [1, 2, 3, 4, 5, 5]
    assert whole[2].tolist() == list(range(11, 21))


def test_window_positions_by_hand():
    window = short_term_mask(torch.tensor([1, 5, 10]), max_length=10, ratio=0.2)  # windows 1, 1, 2
    positions, sizes = window_positions(window)
    assert positions.tolist() == [[0, 0], [4, 4], [8, 9]] and sizes.tolist() == [1, 1, 2]


def test_distinct_rows_by_hand():
    """A pairwise batch of two cases, each repeated for a second negative: rows 0 and 2 are one
    case, 1 and 3 the other; a row differing only in a time is a case of its own."""
    items = torch.tensor([[4, 5], [6, 0], [4, 5], [6, 0], [4, 5]])
    times = torch.tensor([[1.5, 2.0], [3.0, 0.0], [1.5, 2.0], [3.0, 0.0], [1.5, 2.25]])
    first, inverse = distinct_rows(items, times)
    assert sorted(first.tolist()) == [0, 1, 4]
    assert torch.equal(items[first][inverse], items) and torch.equal(times[first][inverse], times)
    assert inverse[0] == inverse[2] and inverse[1] == inverse[3] and inverse[4] != inverse[0]


def test_dual_aware_weights_by_hand():
    """2.2 with gamma1 = beta = 0.4, ratings (5, 3, 4), days (100, 110, 112), one padded slot."""
    ratings = torch.tensor([[5.0, 3.0, 4.0, 0.0]])
    times = torch.tensor([[100.0, 110.0, 112.0, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    weights = dual_aware_weights(ratings, times, mask, gamma1=0.4, beta=0.4)[0]
    # w_r = softmax(2.0, 1.2, 1.6) = (0.471776, 0.211983, 0.316241)
    # w_t = exp(-0.4 * (12, 2, 0)) = (0.008230, 0.449329, 1.0)
    # w = softmax(w_r * w_t) = (0.288824, 0.316456, 0.394720)
    np.testing.assert_allclose(weights.numpy(), [0.288824, 0.316456, 0.394720, 0.0], atol=2e-6)
    # Padding is masked whatever its values; beta = 0 ignores time.
    ratings[0, 3], times[0, 3] = 5.0, 113.0
    np.testing.assert_allclose(
        dual_aware_weights(ratings, times, mask, 0.4, 0.4)[0].numpy(), weights.numpy()
    )
    no_decay = dual_aware_weights(ratings, times, mask, gamma1=0.4, beta=0.0)[0, :3]
    w_r = torch.softmax(torch.tensor([2.0, 1.2, 1.6]), dim=0)
    np.testing.assert_allclose(no_decay.numpy(), torch.softmax(w_r, dim=0).numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "spelling, name",
    [("none", "none"), ("w/o-H", "w/o-H"), ("wo_s1", "w/o-S1"), ("WO-S2", "w/o-S2"), ("woA", "w/o-A")],
)
def test_ablation_names(spelling, name):
    assert parse_ablation(spelling) == name


def test_bad_ablation_lists_valid_values():
    with pytest.raises(ValueError, match=r"w/o-H.*w/o-S1.*w/o-S2.*w/o-A"):
        parse_ablation("w/o-X")


def test_attention_sum_normalisation_by_hand():
    """2.2, the 'divide by the sum' reading: ratings 5, 4, 3 on days 10, 12, 14, gamma1 = beta = 0.4.
    w_r = softmax(2.0, 1.6, 1.2) = (0.4718, 0.3162, 0.2120); w_t = exp(-0.4 (4, 2, 0)) =
    (0.2019, 0.4493, 1); products (0.0953, 0.1421, 0.2120) / 0.4494."""
    ratings, times = torch.tensor([[5.0, 4.0, 3.0]]), torch.tensor([[10.0, 12.0, 14.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    weights = dual_aware_weights(ratings, times, mask, 0.4, 0.4, norm="sum")
    torch.testing.assert_close(weights, torch.tensor([[0.2120, 0.3162, 0.4718]]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="sum"):
        dual_aware_weights(ratings, times, mask, 0.4, 0.4, norm="l2")


def test_beta_moves_the_attention_far_more_when_normalised_by_the_sum():
    """The softmax reading bounds the weights' ratio by e, so beta barely matters (docs/DESIGN.md §3.4)."""
    ratings, times = torch.tensor([[4.0, 4.0]]), torch.tensor([[0.0, 10.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    for norm, (low, high) in (("softmax", (0.26, 0.5)), ("sum", (0.0, 0.5))):
        old_item_weight = [dual_aware_weights(ratings, times, mask, 0.4, beta, norm)[0, 0].item()
                           for beta in (0.0, 0.5)]
        assert old_item_weight[0] == pytest.approx(0.5)  # beta 0: equal ratings, equal weights
        assert low < old_item_weight[1] < high
    # products (0.5 e^-5, 0.5): sum 0.0067; softmax exp(0.00337) / (exp(0.00337) + exp(0.5)) = 0.3783
    assert dual_aware_weights(ratings, times, mask, 0.4, 0.5, "sum")[0, 0].item() == pytest.approx(0.006693, rel=1e-3)
    assert dual_aware_weights(ratings, times, mask, 0.4, 0.5, "softmax")[0, 0].item() == pytest.approx(0.378333, rel=1e-3)


def test_self_distillation_directions_by_hand():
    """2.1.3 on one node, d = 2: p_topic = softmax(0, ln 3) = (1/4, 3/4), p_inter = (1/2, 1/2).
    topic_teaches: KL(p_topic || p_inter) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812;
    as_printed: KL(p_inter || p_topic) = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841."""
    topic = torch.tensor([[0.0, math.log(3.0)]])
    inter = torch.tensor([[0.0, 0.0]], requires_grad=True)
    teaches = self_distillation_loss(topic, inter, direction="topic_teaches")
    printed = self_distillation_loss(topic, inter, direction="as_printed")
    assert teaches.item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-5)
    assert printed.item() == pytest.approx(0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0), rel=1e-5)
    with pytest.raises(ValueError, match="as_printed"):
        self_distillation_loss(topic, inter, direction="reverse")


def test_teacher_detach_switch():
    topic = torch.tensor([[0.0, 1.0]], requires_grad=True)
    inter = torch.tensor([[1.0, 0.0]], requires_grad=True)
    self_distillation_loss(topic, inter, detach_teacher=True).backward()
    assert topic.grad is None and inter.grad.abs().sum() > 0
    self_distillation_loss(topic, inter, detach_teacher=False).backward()
    assert topic.grad.abs().sum() > 0


def test_edge_dropout_drops_whole_edges_and_rescales():
    """Section 3.5: an undirected user-item edge is kept or dropped in both directions; kept
    entries are scaled by 1 / (1 - rate); rate 0 is the identity."""
    from recbole_sdmtmp.model.layers.graph import edge_dropout, undirected_edge_ids

    laplacian = to_torch_sparse(rating_normalized_adjacency(RATINGS))
    edge_ids = undirected_edge_ids(laplacian)
    assert int(edge_ids.max()) + 1 == 3  # u0-i0, u1-i0, u1-i1
    assert edge_dropout(laplacian, edge_ids, 0.0) is laplacian
    dense = laplacian.to_dense()
    torch.manual_seed(0)
    kept_counts = []
    for _ in range(200):
        dropped = edge_dropout(laplacian, edge_ids, 0.5).to_dense()
        torch.testing.assert_close(dropped, dropped.T)
        kept = dropped != 0
        torch.testing.assert_close(dropped[kept], 2.0 * dense[kept])
        kept_counts.append(int(kept.sum()) // 2)
    assert set(kept_counts) <= {0, 1, 2, 3} and 1.2 < np.mean(kept_counts) < 1.8  # about half of 3
    # the dropped matrix keeps the coalesced indices (no coalesce per step) and multiplies exactly
    sparse = edge_dropout(laplacian, edge_ids, 0.5)
    assert sparse.is_coalesced() and torch.equal(sparse.indices(), laplacian.indices())
    x = torch.randn(dense.shape[0], 3)
    torch.testing.assert_close(torch.sparse.mm(sparse, x), sparse.to_dense() @ x)
