"""The cheaper forms of RGCL, RRPU and MISSRec compute what the direct forms compute: each
direct form is written out here, as the models computed it before, and compared on a fixed batch
(the same seed, so the same random draws) and on full-sort scores."""

import copy

import pytest
import torch

import recbole_sdmtmp.model.baselines.rgcl as rgcl_module
from recbole_sdmtmp.model.baselines.rrpu import gaussian_kl, masked_softmax
from tests.model.test_rgcl import first_batch, tiny_model as rgcl_model
from tests.model.test_rgcl import tiny_root  # noqa: F401 (a fixture)
from tests.model.test_rrpu import make_model as make_rrpu
from tests.model.test_rrpu import tiny as rrpu_tiny  # noqa: F401 (a fixture)


def rrpu_forward_direct(model, user, item, reviews):
    """mu_ij = (W_a h_j) . q_i with W_a applied to every (pair, review) entry."""
    h, log_var, reviewed = reviews
    q = model.item_representations(item)
    mu = torch.einsum("brd,bd->br", model.review_attention(h), q)
    mask = (reviewed == 0) | (reviewed == item.unsqueeze(1))
    a = masked_softmax(model.attention_logits(mu, log_var), mask, dim=1)
    p = model.user_embedding(user) + (a.unsqueeze(-1) * h).sum(dim=1)
    return (p * q).sum(dim=1), gaussian_kl(mu, log_var, model.prior_std), mask


def rrpu_loss_direct(model, interaction):
    user, pos, neg = interaction[model.USER_ID], interaction[model.ITEM_ID], interaction[model.NEG_ITEM_ID]
    reviews = model.user_reviews_of(user)
    pos_scores, pos_kl, pos_mask = rrpu_forward_direct(model, user, pos, reviews)
    neg_scores, neg_kl, neg_mask = rrpu_forward_direct(model, user, neg, reviews)
    kl = torch.cat([pos_kl[~pos_mask], neg_kl[~neg_mask]]).mean()
    reg = model.reg_loss(model.user_embedding(user), model.item_embedding(pos), model.item_embedding(neg))
    return model.bpr_loss(pos_scores, neg_scores) + model.kl_weight * kl + model.reg_weight * reg


def rrpu_full_sort_direct(model, interaction):
    """Every user's review slots, W_a applied per (user, review, item) entry, no grouping."""
    q = model.item_representations()
    user = interaction[model.USER_ID]
    h, log_var, reviewed = model.user_reviews_of(user)
    mu = model.review_attention(h) @ q.T
    mask = (reviewed == 0).unsqueeze(-1) | (reviewed.unsqueeze(-1) == torch.arange(model.n_items))
    a = masked_softmax(model.attention_logits(mu, log_var.unsqueeze(-1)), mask, dim=1)
    return model.user_embedding(user) @ q.T + (a * (h @ q.T)).sum(dim=1)


def test_rrpu_attention_query_gives_the_same_loss_with_dropout_and_noise(rrpu_tiny):
    """Every user of the tiny data has 7 reviews: one group, the same random draws."""
    *_, train_data, _, _ = rrpu_tiny
    model = make_rrpu(rrpu_tiny).train()
    model.dropout.p = 0.3  # the fixture has none: the same masks must be drawn by both forms
    batch = next(iter(train_data))
    torch.manual_seed(7)
    new = model.calculate_loss(batch)
    torch.manual_seed(7)
    old = rrpu_loss_direct(model, batch)
    assert new.item() == pytest.approx(old.item(), rel=1e-5)


def keep_fewer_reviews(model, users):
    """The i-th of ``users`` keeps its first i + 1 reviews (left-aligned, as the table is)."""
    padding = len(model.review_features) - 1
    for row, user in enumerate(users.tolist()):
        model.user_reviews[user, row + 1:] = padding
        model.user_reviewed_items[user, row + 1:] = 0


def test_rrpu_loss_in_review_count_groups_equals_the_direct_form(rrpu_tiny):
    """Users with 1-5 reviews (several groups and widths); evaluation mode, since the groups
    draw their dropout masks and attention noise per group."""
    *_, train_data, _, _ = rrpu_tiny
    model = make_rrpu(rrpu_tiny).eval()
    batch = next(iter(train_data))
    keep_fewer_reviews(model, torch.unique(batch[model.USER_ID]))
    counts = (model.user_reviewed_items[batch[model.USER_ID]] > 0).sum(dim=1)
    assert len(set(counts.tolist())) > 2
    gradients = []
    for loss_of in (model.calculate_loss, lambda batch: rrpu_loss_direct(model, batch)):
        model.zero_grad()
        loss = loss_of(batch)
        loss.backward()
        gradients.append((loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    (grouped, grouped_grads), (direct, direct_grads) = gradients
    assert grouped == pytest.approx(direct, rel=1e-6)
    for name, gradient in grouped_grads.items():
        torch.testing.assert_close(gradient, direct_grads[name], rtol=1e-4, atol=1e-7)


def test_rrpu_full_sort_by_review_count_groups_equals_the_direct_form(rrpu_tiny, monkeypatch):
    *_, valid_data, (users, _, _, _) = rrpu_tiny
    model = make_rrpu(rrpu_tiny).eval()
    interaction = next(iter(valid_data))[0]
    keep_fewer_reviews(model, interaction[model.USER_ID])
    counts = (model.user_reviewed_items[interaction[model.USER_ID]] > 0).sum(dim=1)
    assert len(set(counts.tolist())) > 1  # mixed review counts: several groups and widths
    with torch.no_grad():
        direct = rrpu_full_sort_direct(model, interaction)
        assert torch.allclose(model.full_sort_predict(interaction), direct, atol=1e-5)
        # tiny chunks: one group per user, each cut to its own width
        monkeypatch.setattr("recbole_sdmtmp.model.baselines.rrpu.FULL_SORT_ENTRIES", 1)
        model.restore_item_e = None
        assert torch.allclose(model.full_sort_predict(interaction), direct, atol=1e-5)


def per_level_matmul(x, level, weights):
    """Row e times ``weights[level[e]]``."""
    order = torch.argsort(level, stable=True)
    counts = torch.bincount(level, minlength=len(weights)).tolist()
    by_level = torch.cat([chunk @ weight for chunk, weight in zip(torch.split(x[order], counts), weights)])
    return by_level[torch.argsort(order)]


def rgcl_conv_direct(self, sources, source_ids, target_ids, level, review, source_norm, target_norm, n_targets,
                     groups=None, targets=None):
    """One message per edge, each transformed by its level's matrices, then summed per target
    (every target, then the rows asked for)."""
    if self.one_hot_input:
        rows = self.source_table()[level, source_ids]
    else:
        rows = per_level_matmul(sources[source_ids], level, self.source)
    gates = review @ torch.cat([self.node_gate, self.review_gate]).T
    node_gate = torch.sigmoid(gates.gather(1, level.unsqueeze(-1)))
    review_gate = torch.sigmoid(gates.gather(1, level.unsqueeze(-1) + len(self.node_gate)))
    review_message = per_level_matmul(review, level, self.review_transform)
    messages = (node_gate * rows + review_gate * review_message) * source_norm.unsqueeze(-1)
    aggregated = rows.new_zeros(n_targets, rows.shape[1]).index_add_(0, target_ids, messages)
    aggregated = aggregated * target_norm.unsqueeze(-1)
    return aggregated if targets is None else aggregated[targets]


def rgcl_loss_direct(model, interaction):
    """Both views over every node, each case's rows read from them."""
    user, pos_item, neg_item = interaction[model.USER_ID], interaction[model.ITEM_ID], interaction[model.NEG_ITEM_ID]
    views = [model.forward(), model.forward()]
    bpr = 0.0
    for users_e, items_e in views:
        u = users_e[user]
        bpr = bpr + model.bpr_loss((u * items_e[pos_item]).sum(dim=1), (u * items_e[neg_item]).sum(dim=1)) / 2
    (users1, items1), (users2, items2) = views
    nd = (model.node_discrimination_loss(users1, users2, torch.unique(user))
          + model.node_discrimination_loss(items1, items2, torch.unique(pos_item))) / 2
    ed = sum(model.edge_discrimination_loss(u_e, i_e, user, pos_item) for u_e, i_e in views) / 2
    return bpr + model.nd_weight * nd + model.ed_weight * ed


@pytest.mark.parametrize("n_layers", [1, 2])
def test_rgcl_grouped_messages_give_the_same_loss_gradients_and_scores(tiny_root, monkeypatch, n_layers):
    """Grouped messages, sums over edges as sparse products and a last layer that computes the
    batch's nodes only, against one message per edge over every node. Edge dropout and feature
    dropout on (the same seed draws the same views for both forms)."""
    model, train, test = rgcl_model(tiny_root, n_layers=n_layers, dropout_rate=0.5)
    batch, cases = first_batch(train), first_batch(test)
    assert (model.groups[0].target.bincount() > 1).any()  # some (user, level) groups hold several edges
    assert len(torch.unique(batch[model.USER_ID])) < model.n_users  # the last layer leaves some nodes out
    results = []
    for form in ("grouped", "direct"):
        if form == "direct":
            monkeypatch.setattr(rgcl_module.ReviewAwareConv, "forward", rgcl_conv_direct)
        model.train()
        model.zero_grad()
        torch.manual_seed(3)
        loss = model.calculate_loss(batch) if form == "grouped" else rgcl_loss_direct(model, batch)
        loss.backward()
        gradients = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.eval()
        with torch.no_grad():
            scores = model.full_sort_predict(cases)
        results.append((loss.item(), gradients, scores))
    (loss, gradients, scores), (loss_direct, gradients_direct, scores_direct) = results
    assert loss == pytest.approx(loss_direct, rel=1e-6)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, gradients_direct[name], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(scores, scores_direct, rtol=1e-5, atol=1e-6)


def test_rgcl_first_layer_table_of_read_rows_trains_as_the_full_table(tiny_root):
    """The first layer holds only the rows E_r[j] that an edge reads. Against the full per-level
    tables (the other rows at any values), three training steps of Adam with gradient clipping,
    edge and feature dropout on: the same losses, the same kept rows, and the full tables' other
    rows never move (they get no gradient)."""
    model, train, _ = rgcl_model(tiny_root, n_layers=2, dropout_rate=0.5)
    n_levels = len(model.rating_levels)
    full = copy.deepcopy(model)
    torch.manual_seed(7)
    for conv, n_sources in ((full.layers[0].to_users, model.n_items), (full.layers[0].to_items, model.n_users)):
        assert len(conv.rows) < n_levels * n_sources  # some (level, node) pairs have no edge
        table = torch.randn(n_levels * n_sources, conv.source.shape[1])
        table[conv.rows] = conv.source.detach()
        conv.source, conv.rows = torch.nn.Parameter(table), torch.arange(n_levels * n_sources)
    graph = full.graph
    full.groups = (rgcl_module.edge_groups(graph.user, graph.item, graph.level, model.n_users, model.n_items,
                                           n_levels),
                   rgcl_module.edge_groups(graph.item, graph.user, graph.level, model.n_items, model.n_users,
                                           n_levels))
    tables = [conv.source.detach().clone() for conv in (full.layers[0].to_users, full.layers[0].to_items)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.01) for m in (model, full)]
    for step, batch in zip(range(3), train):
        batch = batch[0] if isinstance(batch, tuple) else batch
        losses = []
        for m, optimizer in zip((model, full), optimizers):
            m.train()
            optimizer.zero_grad()
            torch.manual_seed(step)
            loss = m.calculate_loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), max_norm=1.0)
            optimizer.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for name, parameter in model.named_parameters():
        kept = dict(full.named_parameters())[name]
        if name.startswith("layers.0.") and name.endswith(".source"):
            conv = model.get_submodule(name.removesuffix(".source"))
            unread = torch.ones(len(kept), dtype=torch.bool)
            unread[conv.rows] = False
            table = tables[name.startswith("layers.0.to_items")]
            assert torch.equal(kept[unread], table[unread])  # never moved
            assert not torch.equal(kept[conv.rows], table[conv.rows])  # the read rows did
            kept = kept[conv.rows]
        torch.testing.assert_close(parameter, kept, rtol=1e-5, atol=1e-6)
