"""graph_batch: subgraph: a batch's rows from its L-hop sub-graph equal the full propagation's."""

import pytest
import torch

from recbole_sdmtmp.model.sdmtmp.subgraph import CSR, gather_rows, hashed_keep, hypergraph_rows, propagate_rows, rows_product
from tests.model.test_model import build, first_batch
from tests.tiny_data import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def sparse(dense):
    return torch.tensor(dense, dtype=torch.float32).to_sparse().coalesce()


def test_gather_rows_by_hand():
    # [[0, 2, 0], [1, 0, 3], [0, 0, 0], [4, 0, 0]]: rows 3 and 1 -> (3,0)=4, (1,0)=1, (1,2)=3
    matrix = CSR.of(sparse([[0, 2, 0], [1, 0, 3], [0, 0, 0], [4, 0, 0]]))
    assert matrix.crow.tolist() == [0, 1, 3, 3, 4]
    local_row, col, val, position = gather_rows(matrix, torch.tensor([3, 2, 1]))
    assert local_row.tolist() == [0, 2, 2] and col.tolist() == [0, 0, 2] and val.tolist() == [4.0, 1.0, 3.0]
    assert position.tolist() == [3, 1, 2]
    # those rows times X = [[1, 1], [10, 0], [0, 100]]: row 3 -> [4, 4]; row 2 -> 0; row 1 -> [1, 301]
    x = torch.tensor([[1.0, 1.0], [10.0, 0.0], [0.0, 100.0]])
    product = rows_product(local_row, col, val, 3, lambda ids: x[ids])
    assert product.tolist() == [[4.0, 4.0], [0.0, 0.0], [1.0, 301.0]]


def test_fanout_keeps_short_rows_and_estimates_long_ones_without_bias():
    # row 0 = [1, 2, 3, 4] (4 entries > fanout 2): 2 draws, each scaled by 4 / 2 = 2, so the
    # row sum is estimated by 2 (v_a + v_b), whose mean is 10; row 1 = [5] (1 entry) is exact
    matrix = CSR.of(sparse([[1, 2, 3, 4], [0, 5, 0, 0]]))
    torch.manual_seed(0)
    sums = []
    for _ in range(4000):
        local_row, col, val, _ = gather_rows(matrix, torch.tensor([0, 1]), fanout=2)
        assert local_row.tolist() == [0, 0, 1] and val[2].item() == 5.0
        assert set(val[:2].tolist()) <= {2.0, 4.0, 6.0, 8.0} and torch.equal(val[:2], 2 * (col[:2] + 1).float())
        sums.append(val[:2].sum().item())
    assert abs(sum(sums) / len(sums) - 10.0) < 0.2


def test_hashed_edge_dropout_one_draw_per_edge():
    edges = torch.arange(20000)
    keep = hashed_keep(torch.cat([edges, edges]), 0.25, salt=7)  # both directions of each edge
    assert torch.equal(keep[:20000], keep[20000:])
    assert set(keep.unique().tolist()) == {0.0, torch.tensor(1 / 0.75).item()}
    assert abs((keep[:20000] == 0).float().mean().item() - 0.25) < 0.02
    assert not torch.equal(hashed_keep(edges, 0.25, salt=8), keep[:20000])  # another batch, other draws


def test_two_hop_rows_by_hand():
    # path graph 0 - 1 - 2 - 3 with weight 1; layer(n, e) = n + e (so E(l+1) = (A + I) E(l));
    # E(0) = [1, 10, 100, 1000]: E(1) = [11, 111, 1110, 1100], E(2) at node 0 = 11 + 111 = 122
    adjacency = CSR.of(sparse([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]))
    e0 = torch.tensor([[1.0], [10.0], [100.0], [1000.0]])
    rows = propagate_rows(adjacency, torch.tensor([0]), lambda ids: e0[ids], [lambda n, e: n + e] * 2)
    assert [r.item() for r in rows] == [1.0, 11.0, 122.0]


def test_hypergraph_rows_by_hand():
    # 3 users, 2 topics; user 0 in topics 0 and 1, user 1 in topic 0, user 2 in none.
    # hyperedge g = mean of its members and topic g: edge 0 = (P0 + P1 + T0) / 3, edge 1 = (P0 + T1) / 2;
    # user row = mean of its hyperedges: user 0 = (edge0 + edge1) / 2, user 2 = 0
    p0 = torch.tensor([[3.0], [6.0], [9.0]])
    topics = torch.tensor([[30.0], [8.0]])
    gather = CSR.of(sparse([[1 / 3, 1 / 3, 0, 1 / 3, 0], [1 / 2, 0, 0, 0, 1 / 2]]))
    scatter = CSR.of(sparse([[1 / 2, 1 / 2], [1, 0], [0, 0]]))
    rows = hypergraph_rows(gather, scatter, torch.tensor([0, 2]), lambda ids: p0[ids], lambda ids: topics[ids])
    edge0, edge1 = (3 + 6 + 30) / 3, (3 + 8) / 2
    torch.testing.assert_close(rows, torch.tensor([[(edge0 + edge1) / 2], [0.0]]))


@pytest.mark.parametrize("ablation,encoder", [("none", "ngcf"), ("w/o-S2", "ngcf"), ("w/o-H", "ngcf"), ("none", "lightgcn")])
def test_batch_rows_equal_full_propagation(tiny_root, ablation, encoder):
    model, train, _ = build(tiny_root, dropout_type="none", graph_batch="subgraph", ablation=ablation,
                            graph_encoder=encoder)
    model.train()
    full = model.forward()
    users, items = torch.tensor([1, 3]), torch.tensor([2, 5, 7, 11])
    rows = model.forward_rows(users, items)
    for name in ("user_inter", "user_topic", "user_long"):
        if getattr(full, name) is not None:
            torch.testing.assert_close(getattr(rows, name), getattr(full, name)[users])
    for name in ("item_inter", "item_topic", "item_final"):
        if getattr(full, name) is not None:
            torch.testing.assert_close(getattr(rows, name), getattr(full, name)[items])


def test_subgraph_loss_is_the_batch_form_of_the_full_loss(tiny_root):
    """Same BPR and L2 terms; Loss_SD over the batch's users and items only."""
    model, train, _ = build(tiny_root, dropout_type="none", graph_batch="subgraph")
    model.train()
    batch = first_batch(train)
    loss = sum(model.calculate_loss(batch))
    full = model.forward()
    user = model.user_representation(batch, full.user_long)
    pos, neg = batch[model.POS_ITEM_ID], batch[model.NEG_ITEM_ID]  # [B], [B, k]
    bpr = model.bpr_loss((user * full.item_final[pos]).sum(-1, keepdim=True),
                         (user.unsqueeze(1) * full.item_final[neg]).sum(-1))
    users, items = torch.unique(batch[model.USER_ID]), torch.unique(torch.cat([pos, neg.flatten()]))
    batch_output = full._replace(**{name: getattr(full, name)[users] for name in ("user_inter", "user_topic", "user_long")},
                                 **{name: getattr(full, name)[items] for name in ("item_inter", "item_topic", "item_final")})
    sd = model.auxiliary_loss(batch_output, batch, (users, items))
    expected = bpr + model.gamma2 * sd + model.reg_weight * model.regularization(batch)
    torch.testing.assert_close(loss, expected)
    loss.backward()  # gradients reach the embeddings through the sub-graph
    assert model.user_embedding.weight.grad.abs().sum() > 0


def test_subgraph_edge_dropout_only_while_training(tiny_root):
    model, _, _ = build(tiny_root, dropout_type="edge", dropout_rate=0.5, graph_batch="subgraph")
    users, items = torch.tensor([1]), torch.tensor([2])
    model.eval()  # no dropout: equal to the full rows
    kept = model.forward_rows(users, items).user_inter
    torch.testing.assert_close(kept, model.forward().user_inter[users])
    model.train()
    torch.manual_seed(1)
    dropped = model.forward_rows(users, items).user_inter
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, kept)


def test_fanout_rows_are_finite_and_exact_when_no_row_is_longer(tiny_root):
    model, _, _ = build(tiny_root, dropout_type="none", graph_batch="subgraph", subgraph_fanout=1000)
    model.train()
    users, items = torch.tensor([1, 3]), torch.tensor([2, 5])
    torch.testing.assert_close(model.forward_rows(users, items).user_long, model.forward().user_long[users])
    model.subgraph_fanout = 1
    assert torch.isfinite(model.forward_rows(users, items).user_long).all()


def test_subgraph_refuses_ce(tiny_root):
    with pytest.raises(ValueError, match="subgraph"):
        build(tiny_root, graph_batch="subgraph", loss_type="CE", train_neg_sample_args=None)


def test_bad_graph_batch_value(tiny_root):
    with pytest.raises(ValueError, match="graph_batch"):
        build(tiny_root, graph_batch="sampled")


def test_sparse_embeddings_update_only_the_batch_rows(tiny_root):
    """After a first step, plain Adam keeps moving every row it ever touched (momentum); LazyAdam
    moves only the rows in this batch's sparse gradient."""
    model, train, _ = build(tiny_root, dropout_type="none", graph_batch="subgraph", sparse_embeddings=True,
                            train_batch_size=4)
    model.train()
    optimizer = model.build_optimizer()
    batches = iter(train)
    for step in range(2):
        batch = next(batches)
        before = model.user_embedding.weight.detach().clone()
        optimizer.zero_grad()
        sum(model.calculate_loss(batch)).backward()
        grad = model.user_embedding.weight.grad.coalesce()
        assert grad.is_sparse
        optimizer.step()
    changed = torch.nonzero((model.user_embedding.weight.detach() != before).any(dim=1)).flatten()
    assert len(changed) and set(changed.tolist()) <= set(grad.indices()[0].tolist())
    assert set(grad.indices()[0].tolist()) < set(range(model.n_users))  # a batch does not reach every user


def test_sparse_embeddings_l2_counts_the_batch_rows(tiny_root):
    model, train, _ = build(tiny_root, graph_batch="subgraph", sparse_embeddings=True)
    batch = first_batch(train)
    users = torch.unique(batch[model.USER_ID])
    items = torch.unique(torch.cat([batch[model.POS_ITEM_ID], batch[model.NEG_ITEM_ID].flatten()]))
    others = sum(p.pow(2).sum() for name, p in model.named_parameters()
                 if p.requires_grad and name not in ("user_embedding.weight", "item_embedding.weight"))
    expected = model.user_embedding.weight[users].pow(2).sum() + model.item_embedding.weight[items].pow(2).sum() + others
    torch.testing.assert_close(model.regularization(batch), expected)


def test_sparse_embeddings_train_through_the_runner(tiny_root, tmp_path):
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    result = run(build_config("SDMTMP", "tiny", config_dict={"data_path": str(tiny_root), "epochs": 2, "show_progress": False,
                                                "checkpoint_dir": str(tmp_path), "graph_batch": "subgraph",
                                                "sparse_embeddings": True, "embedding_size": 4,
                                                "topic_fit": "prepared"}))  # the hand-made side-files
    assert result.epochs == 2 and all(torch.isfinite(torch.tensor(result.train_losses)))
    with pytest.raises(ValueError, match="sparse_embeddings"):
        build(tiny_root, sparse_embeddings=True)
