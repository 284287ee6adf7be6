"""RRPU (implemented from the paper's description): its equations on tiny inputs, prediction
paths, gradients, no leakage of test-period reviews, and a short run on the real Gift_Cards
against the Pop floor."""

import math

import numpy as np
import pytest
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.baselines.rrpu import RRPU, gaussian_kl, masked_softmax, user_review_table
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data
from tests.review_data import assert_trains_and_beats_pop
from tests.preprocess.test_review_vectors import prepared_root
from tests.tiny_data import write_tiny_dataset

TEXT_DIM = 5


def test_masked_softmax_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, False], [True, True, True]])
    weights = masked_softmax(logits, mask, dim=1)
    e1, e3 = math.exp(1.0), math.exp(3.0)
    assert weights[0].tolist() == pytest.approx([e1 / (e1 + e3), 0.0, e3 / (e1 + e3)])
    assert weights[1].tolist() == [0.0, 0.0, 0.0]  # every review masked: no attention, no NaN


def test_gaussian_kl_by_hand():
    # KL(N(1, 1) || N(0, 1)) = 1/2 (1 + 1 - 1 - 0) = 0.5; KL(N(0, 4) || N(0, 4)) = 0
    assert gaussian_kl(torch.tensor(1.0), torch.tensor(0.0), 1.0).item() == pytest.approx(0.5)
    assert gaussian_kl(torch.tensor(0.0), torch.tensor(math.log(4.0)), 2.0).item() == pytest.approx(0.0, abs=1e-7)
    # KL(N(0, e^-2) || N(0, 1)) = 1/2 (2 + e^-2 - 1)
    assert gaussian_kl(torch.tensor(0.0), torch.tensor(-2.0), 1.0).item() == pytest.approx(0.5 * (1 + math.exp(-2)))


def test_user_review_table_pads_and_caps():
    rows, items = user_review_table(users=[2, 0, 2, 2], items=[5, 6, 7, 8], n_users=3, max_reviews=2)
    assert rows.tolist() == [[1, -1], [-1, -1], [0, 2]]  # user 2 keeps its first two reviews
    assert items.tolist() == [[6, 0], [0, 0], [5, 7]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """RRPU on the hand-made dataset with made-up review vectors: one per training interaction."""
    root = write_tiny_dataset(tmp_path_factory.mktemp("rrpu"))
    config = build_config("RRPU", "tiny", config_dict={
        "data_path": str(root), "embedding_size": 4, "n_aspects": 3, "dropout_prob": 0.0, "show_progress": False,
        "train_batch_size": 16, "eval_batch_size": 64, "epochs": 1, "checkpoint_dir": str(root / "saved"),
        "device": "cpu", "use_gpu": False,
    })
    dataset, (train_data, valid_data, test_data) = load_data(config, SequentialDataset)
    train_dataset = train_data._dataset
    users = train_dataset.inter_feat[train_dataset.uid_field].numpy()
    items = train_dataset.inter_feat[train_dataset.iid_field].numpy()
    vectors = np.random.default_rng(2).normal(size=(len(users), TEXT_DIM)).astype(np.float32)
    documents = np.zeros((dataset.item_num, TEXT_DIM), np.float32)
    counts = np.bincount(items, minlength=dataset.item_num)
    np.add.at(documents, items, vectors)
    documents /= np.maximum(counts, 1)[:, None]
    train_dataset.review_vectors = lambda: (users, items, vectors)
    train_dataset.item_text_vectors = lambda: documents
    return config, train_dataset, train_data, valid_data, (users, items, vectors, documents)


def make_model(tiny, seed=0):
    config, train_dataset, *_ = tiny
    torch.manual_seed(seed)
    return RRPU(config, train_dataset)


def numpy_params(model):
    return {name: p.detach().numpy().astype(np.float64) for name, p in model.named_parameters()}


def item_by_hand(model, documents, item):
    """q_i = y_i + sum_k beta_k tanh(W_k c_i + b_k), beta = softmax_k(w_b . tanh(W_b A_k + b_b))."""
    P, d, K = numpy_params(model), model.embedding_size, model.n_aspects
    aspects = np.tanh(P["aspect_projection.weight"] @ documents[item] + P["aspect_projection.bias"]).reshape(K, d)
    scores = np.array([P["aspect_attention.2.weight"][0] @ np.tanh(P["aspect_attention.0.weight"] @ a
                                                                   + P["aspect_attention.0.bias"]) for a in aspects])
    beta = np.exp(scores) / np.exp(scores).sum()
    return P["item_embedding.weight"][item] + (beta[:, None] * aspects).sum(axis=0)


def score_by_hand(model, reviews, user, item, documents):
    """y_ui = (x_u + sum_j a_j h_j) . q_i over the user's reviews of items other than i."""
    users, items, vectors = reviews
    P = numpy_params(model)
    q = item_by_hand(model, documents, item)
    own = [j for j in range(len(users)) if users[j] == user and items[j] != item]
    h = np.array([np.tanh(P["review_encoder.weight"] @ vectors[j] + P["review_encoder.bias"]) for j in own])
    mu = h @ P["review_attention.weight"].T @ q if len(own) else np.zeros(0)
    a = np.exp(mu - mu.max()) / np.exp(mu - mu.max()).sum() if len(own) else np.zeros(0)
    p = P["user_embedding.weight"][user] + (a[:, None] * h).sum(axis=0) if len(own) else P["user_embedding.weight"][user]
    return float(p @ q)


def test_item_representation_by_hand(tiny):
    *_, (users, items, vectors, documents) = tiny
    model = make_model(tiny)
    for item in (int(items[0]), 1, model.n_items - 1):
        got = model.item_representations(torch.tensor([item]))[0].detach().numpy()
        assert got == pytest.approx(item_by_hand(model, documents, item), abs=1e-5)
    assert model.item_representations().detach().numpy()[3] == pytest.approx(item_by_hand(model, documents, 3), abs=1e-5)


def test_predict_by_hand_masks_the_target_items_own_review(tiny):
    *_, (users, items, vectors, documents) = tiny
    model = make_model(tiny).eval()
    user = int(users[0])
    reviewed = int(items[0])
    unreviewed = next(i for i in range(1, model.n_items) if not ((users == user) & (items == i)).any())
    for item in (reviewed, unreviewed):
        got = model.predict(Interaction({model.USER_ID: torch.tensor([user]), model.ITEM_ID: torch.tensor([item])}))
        assert got.item() == pytest.approx(score_by_hand(model, (users, items, vectors), user, item, documents), abs=1e-5)


def test_stochastic_attention_samples_in_training_only_and_kl_enters_the_loss(tiny):
    config, _, train_data, *_ = tiny
    model = make_model(tiny)
    batch = next(iter(train_data))
    pairs = Interaction({model.USER_ID: batch[model.USER_ID], model.ITEM_ID: batch[model.ITEM_ID]})
    model.eval()
    assert torch.equal(model.predict(pairs), model.predict(pairs))  # the mean logits: deterministic
    model.train()
    torch.manual_seed(1)
    first = model.predict(pairs)
    torch.manual_seed(2)
    assert not torch.allclose(first, model.predict(pairs))  # reparameterised samples
    # loss = BPR + kl_weight * mean KL over unmasked entries + reg_weight * L2: the KL part by hand
    model.eval()  # deterministic BPR to isolate the KL term; KL does not depend on the noise
    with torch.no_grad():
        _, pos_kl, pos_mask = model.forward(batch[model.USER_ID], batch[model.ITEM_ID])
        _, neg_kl, neg_mask = model.forward(batch[model.USER_ID], batch[model.NEG_ITEM_ID])
        kl = torch.cat([pos_kl[~pos_mask], neg_kl[~neg_mask]]).mean().item()
        h, log_var, _ = model.user_reviews_of(batch[model.USER_ID][:1])
        q = model.item_representations(batch[model.ITEM_ID][:1])
        mu = (model.review_attention(h) @ q[0])[0]
        expected0 = 0.5 * (-log_var[0] + log_var[0].exp() + mu**2 - 1.0)  # prior N(0, 1)
        assert pos_kl[0].numpy() == pytest.approx(expected0.numpy(), abs=1e-6)
        base = model.calculate_loss(batch).item()
        model.kl_weight += 1.0
        assert model.calculate_loss(batch).item() - base == pytest.approx(kl, rel=1e-5)
        model.kl_weight -= 1.0


def test_full_sort_predict_agrees_with_predict(tiny):
    *_, valid_data, (users, items, _, _) = tiny
    model = make_model(tiny).eval()
    interaction = next(iter(valid_data))[0]
    full = model.full_sort_predict(interaction)  # [B, n_items]
    reviewed = int(items[users == int(interaction[model.USER_ID][0])][0])
    for item in (1, 4, reviewed, model.n_items - 1):
        pairs = Interaction({model.USER_ID: interaction[model.USER_ID],
                             model.ITEM_ID: torch.full((len(interaction),), item)})
        assert model.predict(pairs).detach().numpy() == pytest.approx(full[:, item].detach().numpy(), abs=1e-5)


def test_gradients_reach_every_parameter(tiny):
    _, _, train_data, *_ = tiny
    model = make_model(tiny).train()
    model.calculate_loss(next(iter(train_data))).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_a_test_period_review_changes_no_model_input(tmp_path, protocol):
    """u0's last interaction is a test case: a new text for its review changes the review file but
    neither the review buffers nor any score of a model built on the training split."""
    models, scores = [], []
    for name, changed_text in (("before", None), ("after", {("u0", "i9"): "Completely different words. Awful."})):
        (tmp_path / name).mkdir()
        data_root = prepared_root(tmp_path / name, changed_text)
        config = build_config("RRPU", "tiny", config_dict={
            "data_path": str(data_root), "protocol": protocol, "embedding_size": 4, "show_progress": False,
            "device": "cpu", "use_gpu": False})
        _, (train_data, _, test_data) = load_data(config, ReviewDataset)
        torch.manual_seed(0)
        model = RRPU(config, train_data._dataset).eval()
        models.append(model)
        scores.append(model.full_sort_predict(next(iter(test_data))[0]))
    u0 = train_data._dataset.field2token_id[train_data._dataset.uid_field]["u0"]
    assert (models[0].user_reviewed_items[u0] > 0).sum() > 0  # u0's training reviews are read
    for (name, before), (_, after) in zip(models[0].state_dict().items(), models[1].state_dict().items()):
        assert torch.equal(before, after), name
    assert torch.equal(scores[0], scores[1])


def test_trains_on_real_gift_cards_and_beats_pop(tmp_path):
    assert_trains_and_beats_pop(tmp_path, "RRPU", epochs=5)
