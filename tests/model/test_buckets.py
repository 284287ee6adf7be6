"""Histories run in length groups give every model that takes them the same losses and scores
as the padded batch: GRU4Rec, SASRec (RecBole's) and MISSRec on batches of mixed lengths."""

import pytest
import torch

import recbole_sdmtmp.model.layers.buckets as buckets_module
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.model.layers.buckets import bucketed, length_buckets
from recbole_sdmtmp.registry import resolve_model
from recbole_sdmtmp.runner import load_data
from tests.model.test_missrec import make_model as make_missrec
from tests.model.test_missrec import tiny as missrec_tiny  # noqa: F401 (a fixture)
from tests.tiny_data import write_tiny_dataset


def test_length_groups_by_hand():
    groups = length_buckets(torch.tensor([1, 2, 3, 5, 4, 1, 8, 9, 0]))
    assert [(rows.tolist(), width) for rows, width in groups] == [
        ([0, 5, 8], 1), ([1], 2), ([2, 4], 4), ([3, 6], 8), ([7], 9)]


def test_bucketed_puts_rows_back_in_order_and_cuts_every_list():
    seq = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0], [5, 6, 0, 0]])
    times = seq * 10
    widths = []

    def encode(seq, lengths, times):
        widths.append(seq.shape[1])
        last = seq.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return last, times.sum(dim=1)

    last, summed = bucketed(encode, seq, torch.tensor([3, 1, 2]), times)
    assert last.tolist() == [3, 4, 6] and summed.tolist() == [60, 40, 110]
    assert sorted(widths) == [1, 2, 3]  # each group read its own columns only


def one_group(lengths):
    """The padded batch as one group: ``bucketed`` then calls the model on it unchanged."""
    return [(torch.arange(len(lengths)), 10**6)]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("buckets"))


def losses_and_scores(model, batch):
    """The loss of a training batch and the full-sort scores of its cases (the evaluation cases
    of the tiny data all have one length)."""
    with torch.no_grad():
        return model.calculate_loss(batch), model.full_sort_predict(batch)


def assert_groups_equal_the_padded_batch(model, batch, monkeypatch) -> None:
    """The batch in length groups (more than two here) and as one padded group: the same loss
    and full-sort scores."""
    assert len(length_buckets(batch["item_length"])) > 2
    loss, scores = losses_and_scores(model, batch)
    monkeypatch.setattr(buckets_module, "length_buckets", one_group)
    padded_loss, padded_scores = losses_and_scores(model, batch)
    assert loss.item() == pytest.approx(padded_loss.item(), rel=1e-6)
    torch.testing.assert_close(scores, padded_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["GRU4Rec", "SASRec"])
def test_recbole_models_in_length_groups_equal_the_padded_batch(tiny_root, monkeypatch, name):
    config = build_config(name, "tiny", config_dict={
        "data_path": str(tiny_root), "show_progress": False, "train_batch_size": 16, "eval_batch_size": 64,
        "device": "cpu", "use_gpu": False, "protocol": "next_item"})
    model_class, dataset_class = resolve_model(name)
    _, (train_data, _, _) = load_data(config, dataset_class)
    torch.manual_seed(0)
    model = model_class(config, train_data._dataset).eval()  # no dropout: the same function
    assert_groups_equal_the_padded_batch(model, next(iter(train_data)), monkeypatch)


def test_missrec_in_length_groups_equals_the_padded_batch(missrec_tiny, monkeypatch):
    *_, train_data, _, _ = missrec_tiny
    model = make_missrec(missrec_tiny).eval()
    assert_groups_equal_the_padded_batch(model, next(iter(train_data)), monkeypatch)
