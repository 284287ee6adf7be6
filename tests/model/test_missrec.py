"""MISSRec (text + ID, fine-tuning only): its equations on tiny inputs, prediction paths, gradients,
no leakage of test-period reviews, and a short run on the real Gift_Cards against the Pop floor."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.baselines.missrec import MISSRec, distinct_interests, interest_diversity, kmeans
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data
from tests.review_data import assert_trains_and_beats_pop
from tests.preprocess.test_review_vectors import prepared_root
from tests.tiny_data import write_tiny_dataset

TEXT_DIM = 6


def test_kmeans_finds_the_two_groups_from_any_start():
    points = torch.tensor([[0.0], [0.2], [10.0], [10.4]])
    for seed in range(6):  # every pair of distinct starting points converges within 3 iterations
        torch.manual_seed(seed)
        assign, centroids = kmeans(points, k=2, iterations=3)
        assert assign[0] == assign[1] != assign[2] == assign[3]
        assert sorted(centroids.squeeze(1).tolist()) == pytest.approx([0.1, 10.2])


def test_kmeans_keeps_an_empty_clusters_centroid_and_rejects_too_many_clusters():
    points = torch.tensor([[0.0], [0.0], [1.0]])
    torch.manual_seed(0)
    assign, centroids = kmeans(points, k=3, iterations=2)  # two identical points: one cluster empties
    assert torch.isfinite(centroids).all() and set(assign.tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match="k-means"):
        kmeans(points, k=4, iterations=1)


def test_distinct_interests_sorted_and_padded():
    interests = torch.tensor([[3, 1, 3, 0], [2, 2, 2, 2], [4, 0, 0, 0]])
    assert distinct_interests(interests, n_interests=4).tolist() == [[1, 3], [2, 0], [4, 0]]


def test_interest_diversity_averages_non_padding_outputs():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[0.0, 1.0], [9.0, 9.0], [9.0, 9.0]]])
    padding = torch.tensor([[False, False, True], [False, True, True]])
    # row 0: mean (2, 3) -> 4 + 9 = 13; row 1: (0, 1) -> 1; each over d = 2 (the loss sums them)
    assert interest_diversity(memory, padding).tolist() == pytest.approx([6.5, 0.5])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """MISSRec on the hand-made dataset, with made-up text features (item 5 has none)."""
    root = write_tiny_dataset(tmp_path_factory.mktemp("missrec"))
    config = build_config("MISSRec", "tiny", config_dict={
        "data_path": str(root), "hidden_size": 8, "n_heads": 2, "inner_size": 16, "hidden_dropout_prob": 0.0,
        "interest_ratio": 0.25, "show_progress": False, "train_batch_size": 16, "eval_batch_size": 64,
        "epochs": 1, "checkpoint_dir": str(root / "saved"), "device": "cpu", "use_gpu": False,
    })
    dataset, (train_data, valid_data, test_data) = load_data(config, SequentialDataset)
    text = np.random.default_rng(1).normal(size=(dataset.item_num, TEXT_DIM)).astype(np.float32)
    text[0] = 0.0
    text[5] = 0.0
    train_dataset = train_data._dataset
    train_dataset.item_text_vectors = lambda: text
    return config, train_dataset, train_data, valid_data, text


def make_model(tiny, seed=0):
    config, train_dataset, *_ = tiny
    torch.manual_seed(seed)
    return MISSRec(config, train_dataset)


def batch_of(train_data, size=8):
    interaction = next(iter(train_data))
    return interaction[torch.arange(min(size, len(interaction)))]


def test_interests_are_the_kmeans_clusters_of_adapted_text(tiny):
    model = make_model(tiny)
    n_items = model.n_items
    assert model.num_interest == math.ceil((n_items - 1) * 0.25)
    adapted = model.text_adaptor(model.text_features[1:]).detach()
    ids = model.interest_of_item[1:]
    assert model.interest_of_item[0] == 0 and ids.min() >= 1 and ids.max() <= model.num_interest
    for interest in ids.unique():  # each centroid is the mean of its members (Lloyd's fixed point
        members = adapted[ids == interest]  # after the last update, up to a final reassignment)
        nearest = torch.cdist(members, model.interest_embeddings[1:]).argmin(dim=1) + 1
        assert (nearest == interest).all()


def test_train_rediscovers_interests_from_the_current_adaptor(tiny):
    model = make_model(tiny)
    with torch.no_grad():
        model.text_adaptor.weight.mul_(10.0)
    model.eval()
    before = model.interest_embeddings.clone()
    model.train()
    adapted = model.text_adaptor(model.text_features[1:]).detach()
    assert not torch.allclose(before, model.interest_embeddings)
    assert model.interest_embeddings[1:].abs().max() <= adapted.abs().max() + 1e-6  # centroids of the new points


def test_item_representation_is_normalised_text_plus_id(tiny):
    model = make_model(tiny)
    _, _, _, _, text = tiny
    W, b = model.text_adaptor.weight.detach().numpy(), model.text_adaptor.bias.detach().numpy()
    ids = model.item_embedding.weight.detach().numpy()
    raw = text[3] @ W.T + b + ids[3]
    expected = raw / np.linalg.norm(raw)
    assert model.item_representations()[3].detach().numpy() == pytest.approx(expected, abs=1e-6)
    raw5 = b + ids[5]  # an item without training reviews keeps its ID and the adaptor's bias
    assert model.item_representations()[5].detach().numpy() == pytest.approx(raw5 / np.linalg.norm(raw5), abs=1e-6)


def test_decoder_reads_only_the_interests_of_the_sequence(tiny):
    model = make_model(tiny).eval()
    seq = torch.tensor([[1, 2, 3, 0, 0]])
    length = torch.tensor([3])
    base, _ = model.forward(seq, length)
    own = set(model.interest_of_item[seq[0, :3]].tolist())
    others = [k for k in range(1, model.num_interest + 1) if k not in own]
    with torch.no_grad():
        saved = model.interest_embeddings.clone()
        model.interest_embeddings[others] += 5.0
        unchanged, _ = model.forward(seq, length)
        model.interest_embeddings[sorted(own)] += 5.0
        changed, _ = model.forward(seq, length)
        model.interest_embeddings.copy_(saved)
    assert torch.allclose(base, unchanged, atol=1e-6)
    assert not torch.allclose(base, changed, atol=1e-4)
    assert base.norm(dim=1).item() == pytest.approx(1.0)
    # padding changes nothing: batched with a longer history (more item and interest padding)
    batched, _ = model.forward(torch.tensor([[1, 2, 3, 0, 0], [4, 9, 14, 19, 21]]), torch.tensor([3, 5]))
    assert torch.allclose(base[0], batched[0], atol=1e-5)


@pytest.mark.parametrize("n_layers", [2, 4])
def test_last_position_decoding_equals_the_full_decoder(tiny, n_layers):
    config, train_dataset, *_ = tiny
    torch.manual_seed(0)
    config["n_layers"] = n_layers
    try:
        model = MISSRec(config, train_dataset).eval()
    finally:
        config["n_layers"] = 2
    assert len(model.decoder.layers) == n_layers // 2 and len(model.encoder.layers) == n_layers // 2
    tokens, memory = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    tokens_padding = torch.tensor([[False] * 3 + [True] * 2, [False] * 5, [False] + [True] * 4])
    memory_padding = torch.tensor([[False, False, True, True], [False] * 4, [False, True, True, True]])
    positions = torch.tensor([2, 4, 0])
    full = model.decoder(tokens, memory, tgt_key_padding_mask=tokens_padding, memory_key_padding_mask=memory_padding)
    expected = full[torch.arange(3), positions]
    got = model.decode_at(tokens, memory, positions, tokens_padding, memory_padding)
    assert torch.allclose(got, expected, atol=1e-5)


def test_loss_is_cross_entropy_over_cosine_logits_plus_diversity(tiny):
    config, _, train_data, *_ = tiny
    model = make_model(tiny).eval()  # no dropout anyway; eval keeps the interests fixed
    batch = batch_of(train_data)
    seq_output, diversity = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    logits = seq_output @ model.item_representations().T / config["temperature"]
    expected = F.cross_entropy(logits, batch[model.POS_ITEM_ID]) + config["gamma"] * diversity
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)
    # logits are cosines over the temperature: bounded by 1 / temperature
    assert logits.abs().max().item() <= 1.0 / config["temperature"] + 1e-5


def test_full_sort_predict_agrees_with_predict(tiny):
    *_, valid_data, _ = tiny
    model = make_model(tiny).eval()
    interaction = next(iter(valid_data))[0]
    full = model.full_sort_predict(interaction)  # [B, n_items]
    for item in (1, 4, 5, 17):
        pairs = Interaction({**{k: interaction[k] for k in interaction.columns},
                             model.ITEM_ID: torch.full((len(interaction),), item)})
        assert model.predict(pairs).detach().numpy() == pytest.approx(full[:, item].detach().numpy(), abs=1e-5)


def test_gradients_reach_every_parameter(tiny):
    _, _, train_data, *_ = tiny
    model = make_model(tiny)
    model.train()
    interaction = next(iter(train_data))
    model.calculate_loss(interaction).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_a_test_period_review_changes_no_model_input(tmp_path, protocol):
    """u0's last interaction is a test case: a new text for its review changes the review file but
    neither the text features, the interests nor any score of a model built on the training split."""
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    root = prepared_root(tmp_path / "before")
    changed = prepared_root(tmp_path / "after", {("u0", "i9"): "Completely different words here. Awful."})
    models, scores = [], []
    for data_root in (root, changed):
        config = build_config("MISSRec", "tiny", config_dict={
            "data_path": str(data_root), "protocol": protocol, "hidden_size": 8, "n_heads": 2, "inner_size": 16,
            "show_progress": False, "device": "cpu", "use_gpu": False})
        _, (train_data, _, test_data) = load_data(config, ReviewDataset)
        torch.manual_seed(0)
        model = MISSRec(config, train_data._dataset).eval()
        models.append(model)
        scores.append(model.full_sort_predict(next(iter(test_data))[0]))
    for (name, before), (_, after) in zip(models[0].state_dict().items(), models[1].state_dict().items()):
        assert torch.equal(before, after), name
    assert torch.equal(scores[0], scores[1])


def test_trains_on_real_gift_cards_and_beats_pop(tmp_path):
    # a smaller d than the reference's 300 keeps the test short on a CPU
    assert_trains_and_beats_pop(tmp_path, "MISSRec", epochs=3, hidden_size=64, n_heads=2)
