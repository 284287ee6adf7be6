"""SD-MTMP as a whole on a hand-made dataset: training-only topics, prediction paths, the
attention's inputs, fusion, the distillation's gradient flow and each ablation switch."""

import pytest
import torch

from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.model.layers.distillation import info_nce_loss, self_distillation_loss
from recbole_sdmtmp.model.sdmtmp.attention import dual_aware_weights, short_term_mask
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.runner import load_data
from tests.tiny_data import tiny_config, tiny_dataset, write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def data_preparation(config, _dataset=None):
    """The project's protocol split (protocol.yaml: paper) of the hand-made dataset."""
    return load_data(config, SDMTMPDataset)[1]


def build(tiny_root, **overrides):
    config = tiny_config(tiny_root, **overrides)
    train, valid, test = data_preparation(config)
    torch.manual_seed(0)
    model = SDMTMP(config, train._dataset)
    return model, train, test


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


def test_hypergraphs_use_training_reviews_only(tiny_root):
    _, dataset = tiny_dataset(tiny_root)
    train = data_preparation(tiny_config(tiny_root))[0]._dataset
    u0 = dataset.field2token_id["user_id"]["u0"]
    # u0 reviewed topics 0 and 1 in training, topic 2 only in its test interaction.
    assert train.topic_incidence("user")[u0].toarray().tolist() == [[1.0, 1.0, 0.0]]
    leaky = data_preparation(tiny_config(tiny_root, topic_reviews="leaky_all", allow_test_leak=True))[0]._dataset
    assert leaky.topic_incidence("user")[u0].toarray().tolist() == [[1.0, 1.0, 1.0]]
    # u4's sentences were all outliers: no topic, a zero row.
    u4 = dataset.field2token_id["user_id"]["u4"]
    assert train.topic_incidence("user")[u4].nnz == 0
    items = train.topic_incidence("item")
    assert items.shape == (train.item_num, 3) and set(items.data) == {1.0}


def test_bad_topic_reviews_value(tiny_root):
    with pytest.raises(ValueError, match="leaky_all"):
        tiny_dataset(tiny_root, topic_reviews="everything")


def test_full_sort_predict_equals_predict_on_every_item(tiny_root):
    model, _, test = build(tiny_root)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        full = model.full_sort_predict(interaction)  # [B, n_items]
        for item in range(model.n_items):
            interaction["item_id"] = torch.full_like(interaction["item_id"], item)
            torch.testing.assert_close(model.predict(interaction), full[:, item])


def test_isolated_user_has_zero_topic_vector_and_no_nan(tiny_root):
    model, train, _ = build(tiny_root)
    output = model.forward()
    u4 = train._dataset.field2token_id["user_id"]["u4"]
    assert torch.all(output.user_topic[u4] == 0)
    assert not model.user_has_topic[u4]
    for tensor in output:
        assert torch.isfinite(tensor).all()


def test_attention_reads_history_never_the_target(tiny_root):
    model, _, test = build(tiny_root)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        base = model.full_sort_predict(interaction)
        # The target's own rating and time are not inputs.
        interaction["rating"] = interaction["rating"] + 3.0
        interaction["timestamp"] = interaction["timestamp"] + 500.0
        torch.testing.assert_close(model.full_sort_predict(interaction), base)
        # Padded positions are masked.
        lengths = interaction["item_length"]
        padded = torch.arange(interaction["rating_list"].shape[1]) >= lengths.unsqueeze(1)
        interaction["rating_list"][padded] = 5.0
        interaction["timestamp_list"][padded] = 1e4
        torch.testing.assert_close(model.full_sort_predict(interaction), base)
        # The newest history item's rating is read.
        rows = torch.arange(lengths.shape[0])
        interaction["rating_list"][rows, lengths - 1] += 2.0
        assert not torch.allclose(model.full_sort_predict(interaction), base)


def test_short_term_equals_the_full_width_formula_on_repeated_rows(tiny_root):
    """The model encodes each distinct history once, over its window's columns; the result must
    be the section 2.2 formula over the whole padded history, row by row, for a batch whose
    cases repeat (as a pairwise batch repeats each case once per negative)."""
    from recbole_sdmtmp.model.sdmtmp.attention import dual_aware_attention, short_term_mask

    for norm in ("softmax", "sum"):
        model, _, test = build(tiny_root, attention_norm=norm, beta=0.3)
        model.eval()
        interaction = first_batch(test)
        rows = torch.arange(len(interaction)).repeat(3)  # every case three times
        repeated = interaction[rows]
        with torch.no_grad():
            short = model.short_term(repeated)
            window = short_term_mask(repeated["item_length"], repeated["item_id_list"].shape[1],
                                     model.short_term_ratio)
            expected = dual_aware_attention(
                model.item_embedding(repeated["item_id_list"]), repeated["rating_list"].float(),
                repeated["timestamp_list"].float(), window, model.gamma1, model.beta, norm)
        torch.testing.assert_close(short, expected)
        assert window.sum(dim=1).max() >= 2  # some window has several items to weigh


def test_fusion_gates(tiny_root):
    model, _, test = build(tiny_root)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        model.long_gate.weight.zero_()  # alpha1 = sigmoid(0) = 0.5
        model.short_gate.weight.zero_()  # alpha2 = 0.5
        output = model.forward()
        long_term = output.user_long[interaction["user_id"]]
        short = model.short_term(interaction)
        expected = 0.5 * long_term + 0.5 * short
        torch.testing.assert_close(model.user_representation(interaction, output.user_long), expected)
        model.long_gate.weight.fill_(100.0 / model.embedding_size)
        alpha1 = torch.sigmoid(long_term.sum(dim=1, keepdim=True) * 100.0 / model.embedding_size)
        expected = alpha1 * long_term + 0.5 * short
        torch.testing.assert_close(model.user_representation(interaction, output.user_long), expected)


def test_distillation_gradient_never_reaches_the_topic_branch(tiny_root):
    model, train, _ = build(tiny_root)
    interaction = first_batch(train)
    model.auxiliary_loss(model.forward(), interaction).backward()
    assert model.user_hyperconv.weight.weight.grad is None
    assert model.item_hyperconv.weight.weight.grad is None
    assert model.topic_to_d.weight.grad is None
    assert model.gcn_layers[0].self_and_neighbours.weight.grad.abs().sum() > 0


def test_l2_is_lambda_times_the_squared_norm_of_every_parameter(tiny_root):
    """Section 2.3: lambda ||Theta||^2. RecBole's EmbLoss (the first version) added about 1e-5."""
    model, train, _ = build(tiny_root, reg_weight=0.0)
    interaction = first_batch(train)
    without = model.calculate_loss(interaction)
    assert without[2].item() == 0.0
    model.reg_weight = 0.01
    squared = sum(float((p.detach() ** 2).sum()) for p in model.parameters() if p.requires_grad)
    assert squared > 1.0
    with_l2 = model.calculate_loss(interaction)
    assert with_l2[2].item() == pytest.approx(0.01 * squared, rel=1e-5)  # the third term: lambda * L2
    assert sum(with_l2).item() == pytest.approx(sum(without).item() + 0.01 * squared, rel=1e-5)
    old, _, _ = build(tiny_root, reg_weight=0.01, reg_type="batch_embeddings")
    assert old.regularization(interaction).item() < 0.05 * squared


def test_gamma2_and_beta_change_what_the_model_predicts(tiny_root):
    """gamma2 weighs Loss_SD in training, beta the time decay at prediction: both must matter."""
    def trained(gamma2):
        model, train, test = build(tiny_root, gamma2=gamma2, learning_rate=0.05)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(3):
            optimizer.zero_grad()
            sum(model.calculate_loss(first_batch(train))).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            return model.full_sort_predict(first_batch(test))

    assert not torch.allclose(trained(0.0), trained(0.6))
    # beta: e_short is sum_i w_i(beta) q_i over the window (the weights are checked by hand in
    # test_model_parts.py), and beta 0.5 moves some window weight by more than 0.1 under either
    # normalisation (0.156 softmax, 0.307 sum here): what reaches the score, not a 1e-7 change
    for norm in ("softmax", "sum"):
        model, _, test = build(tiny_root, attention_norm=norm)
        model.eval()
        interaction = first_batch(test)
        seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
        window = short_term_mask(lengths, seq.shape[1], model.short_term_ratio)
        ratings, times = interaction[model.RATING_LIST].float(), interaction[model.TIME_LIST].float()
        weights = {}
        with torch.no_grad():
            for beta in (0.0, 0.5):
                model.beta = beta
                weights[beta] = dual_aware_weights(ratings, times, window, model.gamma1, beta, norm)  # [B, L]
                expected = (weights[beta].unsqueeze(-1) * model.item_embedding(seq)).sum(dim=1)
                torch.testing.assert_close(model.short_term(interaction), expected)
        assert (weights[0.5] - weights[0.0]).abs().max() > 0.1


def test_edge_dropout_only_while_training(tiny_root):
    model, _, test = build(tiny_root, dropout_type="edge", dropout_rate=0.5)
    model.train()
    torch.manual_seed(0)
    first = model.rating_aware()[0].detach()
    second = model.rating_aware()[0].detach()
    assert not torch.allclose(first, second)  # a new graph each forward
    model.eval()
    torch.testing.assert_close(model.rating_aware()[0], model.rating_aware()[0])
    with pytest.raises(ValueError, match="edge"):
        build(tiny_root, dropout_type="node")


def test_training_loss_combines_bpr_sd_and_l2(tiny_root):
    model, train, _ = build(tiny_root, gamma2=0.0, reg_weight=0.0)
    interaction = first_batch(train)
    torch.manual_seed(1)
    bpr_only = model.calculate_loss(interaction)
    assert bpr_only[1].item() == 0.0 and bpr_only[2].item() == 0.0
    model.gamma2 = 0.4
    torch.manual_seed(1)
    with_sd = model.calculate_loss(interaction)  # (BPR, gamma2 * Loss_SD, lambda * L2)
    sd = model.auxiliary_loss(model.forward(), interaction).item()
    assert sd > 0
    assert with_sd[0].item() == pytest.approx(bpr_only[0].item(), rel=1e-6)
    assert with_sd[1].item() == pytest.approx(0.4 * sd, rel=1e-5)
    assert sum(with_sd).item() == pytest.approx(bpr_only[0].item() + 0.4 * sd, rel=1e-5)


def test_cached_graph_dropped_by_training(tiny_root):
    model, train, test = build(tiny_root)
    model.eval()
    with torch.no_grad():
        model.full_sort_predict(first_batch(test))
    assert model.restore_user_e is not None
    model.train()
    model.calculate_loss(first_batch(train))
    assert model.restore_user_e is None and model.restore_item_e is None


def test_ablation_w_o_h_drops_topics_and_distillation(tiny_root):
    model, train, _ = build(tiny_root, ablation="w/o-H")
    assert not hasattr(model, "user_hyperconv") and not hasattr(model, "topic_vectors")
    output = model.forward()
    assert output.user_topic is None
    assert output.user_long is output.user_inter
    assert model.auxiliary_loss(output, first_batch(train)).item() == 0.0


def test_ablation_w_o_s1_uses_info_nce(tiny_root):
    model, train, _ = build(tiny_root, ablation="w/o-S1", cl_temperature=0.5)
    interaction = first_batch(train)
    output = model.forward()
    users = torch.unique(interaction["user_id"])
    users = users[model.user_has_topic[users]]
    items = torch.unique(interaction["item_id"])
    items = items[model.item_has_topic[items]]
    expected = info_nce_loss(output.user_inter[users], output.user_topic[users], 0.5) + info_nce_loss(
        output.item_inter[items], output.item_topic[items], 0.5
    )
    aux = model.auxiliary_loss(output, interaction)
    torch.testing.assert_close(aux, expected)
    sd = self_distillation_loss(output.user_topic, output.user_inter, model.user_has_topic)
    assert not torch.isclose(aux, sd)
    aux.backward()  # contrastive: both views learn
    assert model.user_hyperconv.weight.weight.grad.abs().sum() > 0


def test_ablation_w_o_s2_concatenates(tiny_root):
    model, _, _ = build(tiny_root, ablation="w/o-S2")
    output = model.forward()
    expected = model.user_concat(torch.cat([output.user_inter, output.user_topic], dim=-1))
    torch.testing.assert_close(output.user_long, expected)
    assert not torch.allclose(output.user_long, output.user_inter + output.user_topic)
    assert model.auxiliary_loss(output, None).item() == 0.0


def test_ablation_w_o_a_ignores_the_sequence(tiny_root):
    model, _, test = build(tiny_root, ablation="w/o-A")
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        base = model.full_sort_predict(interaction)
        interaction["item_id_list"] = torch.roll(interaction["item_id_list"], 1, dims=0)
        interaction["rating_list"] = interaction["rating_list"] * 0 + 1
        torch.testing.assert_close(model.full_sort_predict(interaction), base)
        output = model.forward()
        long_term = output.user_long[interaction["user_id"]]
        torch.testing.assert_close(
            model.user_representation(interaction, output.user_long),
            torch.sigmoid(model.long_gate(long_term)) * long_term,
        )


def test_fixed_topic_projection_is_not_trained(tiny_root):
    model, train, _ = build(tiny_root, topic_projection="fixed", gamma2=0.0)
    sum(model.calculate_loss(first_batch(train))).backward()
    assert model.topic_to_d.weight.grad is None
    learned, _, _ = build(tiny_root, topic_projection="learned", gamma2=0.0)
    sum(learned.calculate_loss(first_batch(train))).backward()
    assert learned.topic_to_d.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="topic_projection"):
        build(tiny_root, topic_projection="pca")


def test_bad_ablation_value_fails_at_construction(tiny_root):
    with pytest.raises(ValueError, match="w/o-S2"):
        build(tiny_root, ablation="no-topics")


def test_cross_entropy_variant_is_a_softmax_over_every_item(tiny_root):
    """Beyond the paper (a labelled variant): loss_type CE scores the target against all items."""
    model, train, _ = build(tiny_root, loss_type="CE", train_neg_sample_args=None, gamma2=0.0, reg_weight=0.0)
    interaction = first_batch(train)
    assert "neg_item_id" not in interaction
    output = model.forward()
    user = model.user_representation(interaction, output.user_long)
    logits = user @ output.item_final.T
    expected = (torch.logsumexp(logits, dim=1) - logits.gather(1, interaction["item_id"].unsqueeze(1)).squeeze(1)).mean()
    torch.testing.assert_close(model.calculate_loss(interaction)[0], expected)
    config = tiny_config(tiny_root, loss_type="CE", train_neg_sample_args=None)
    config["loss_type"] = "BCE"
    with pytest.raises(ValueError, match="loss_type='BCE'"):
        SDMTMP(config, train._dataset)


def test_lightgcn_variant_propagates_without_weights_or_nonlinearity(tiny_root):
    """graph_encoder: lightgcn (beyond the paper): E_bar = mean(E, L E, L^2 E) by hand."""
    model, _, _ = build(tiny_root, graph_encoder="lightgcn", n_layers=2, dropout_type="none")
    model.eval()
    assert len(model.gcn_layers) == 0
    laplacian = model.laplacian.to_dense()
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    expected = (ego + laplacian @ ego + laplacian @ laplacian @ ego) / 3
    users, items = model.rating_aware()
    torch.testing.assert_close(torch.cat([users, items]).detach(), expected)
    ngcf, _, _ = build(tiny_root, n_layers=2, dropout_type="none")
    ngcf.eval()
    assert not torch.allclose(torch.cat(ngcf.rating_aware()).detach(), expected)
    with pytest.raises(ValueError, match="graph_encoder"):
        build(tiny_root, graph_encoder="gat")


def test_gru_short_term_variant_reads_the_window_in_order(tiny_root):
    """short_term_encoder: gru (beyond the paper): e_short is nn.GRU's state after the window's
    items, oldest first, computed here row by row; reversing the window changes it, where the
    paper's attention (a weighted set) would not move with equal ratings and times."""
    model, train, test = build(tiny_root, short_term_encoder="gru", short_term_ratio=1.0)
    model.eval()
    interaction = first_batch(test)
    lengths = interaction["item_length"]
    with torch.no_grad():
        short = model.short_term(interaction)  # [B, d]
        for row, n in enumerate(lengths.tolist()):
            items = interaction["item_id_list"][row, :n]
            states, _ = model.short_term_gru(model.item_embedding(items).unsqueeze(0))
            torch.testing.assert_close(short[row], states[0, -1])
        row = int(torch.argmax(lengths))
        assert lengths[row] >= 2
        reversed_seq = interaction["item_id_list"].clone()
        reversed_seq[row, : lengths[row]] = reversed_seq[row, : lengths[row]].flip(0)
        interaction["item_id_list"] = reversed_seq
        assert not torch.allclose(model.short_term(interaction)[row], short[row])
    full = model.full_sort_predict(interaction)
    interaction["item_id"] = torch.zeros_like(interaction["item_id"]) + 1
    torch.testing.assert_close(model.predict(interaction), full[:, 1])
    # the GRU trains: BPR's gradient reaches its weights
    model.train()
    sum(model.calculate_loss(first_batch(train))).backward()
    assert model.short_term_gru.weight_hh_l0.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="short_term_encoder"):
        build(tiny_root, short_term_encoder="lstm")
    assert not hasattr(build(tiny_root, short_term_encoder="gru", ablation="w/o-A")[0], "short_term_gru")
