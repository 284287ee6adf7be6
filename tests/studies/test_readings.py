"""The paper's procedure as printed and the two readings of its text, on the hand-made
dataset: user u has items i(3u) .. i(3u+9), oldest first, one a day."""

import pytest

from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.model.sdmtmp.attention import short_term_mask
from recbole_sdmtmp.runner import load_data, run
from tests.tiny_data import tiny_config, write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def loaders(root, **overrides):
    return load_data(tiny_config(root, **overrides), SDMTMPDataset)


def tokens(dataset, field, ids):
    return [dataset.field2id_token[field][i] for i in ids]


def history_of(dataset, row):
    feat = dataset.inter_feat
    length = int(feat["item_length"][row])
    return tokens(dataset, "item_id", feat["item_id_list"][row, :length].tolist())


def user_of(dataset, row):
    return dataset.field2id_token["user_id"][int(dataset.inter_feat["user_id"][row])]


def record(user):  # the hand-made rows: user u rates i(3u + j), j = 0..9, in this order
    u = int(user[1:])
    return [f"i{3 * u + j}" for j in range(10)]


def test_per_user_rows_are_every_training_interaction_each_reading_the_whole_training_record(tiny_root):
    dataset, (train, _, _) = loaders(tiny_root, training_cases="per_user")
    train = train._dataset
    assert len(train.inter_feat) == 5 * 7  # paper: 7 of each user's 10 interactions are training
    for row in range(len(train.inter_feat)):
        user = user_of(train, row)
        assert history_of(train, row) == record(user)[:7]  # one history (so one e_short) per user
        assert tokens(train, "item_id", [int(train.inter_feat["item_id"][row])])[0] in record(user)[:7]
    assert train.inter_matrix().nnz == 35  # the graph: every training interaction once
    # the sequential reading: 6 cases per user, case j reading the j items before its target
    _, (sequential, _, _) = loaders(tiny_root, training_cases="sequential")
    sequential = sequential._dataset
    assert len(sequential.inter_feat) == 5 * 6
    assert sorted(set(sequential.inter_feat["item_length"].tolist())) == [1, 2, 3, 4, 5, 6]
    assert sequential.inter_matrix().nnz == 35
    with pytest.raises(ValueError, match="training_cases='everything'"):
        loaders(tiny_root, training_cases="everything")


def test_complete_record_puts_the_test_items_in_the_short_term_window(tiny_root):
    """Under the printed 80/20 split the newest 20% of the complete record is the test period."""
    _, (_, valid, test) = loaders(tiny_root, protocol="paper_as_printed", short_term_source="complete_record")
    cases = test._dataset
    window = short_term_mask(cases.inter_feat["item_length"], cases.inter_feat["item_id_list"].shape[1], 0.2)
    for row in range(len(cases.inter_feat)):
        user = user_of(cases, row)
        assert history_of(cases, row) == record(user)
        in_window = cases.inter_feat["item_id_list"][row][window[row]].tolist()
        assert sorted(tokens(cases, "item_id", in_window)) == sorted(tokens(cases, "item_id", test.positives[row].tolist()))
    # the training history reading: the window is the newest 20% of the training part, no test item
    _, (_, _, honest) = loaders(tiny_root, protocol="paper_as_printed")
    cases = honest._dataset
    window = short_term_mask(cases.inter_feat["item_length"], cases.inter_feat["item_id_list"].shape[1], 0.2)
    for row in range(len(cases.inter_feat)):
        assert history_of(cases, row) == record(user_of(cases, row))[:8]
        in_window = set(cases.inter_feat["item_id_list"][row][window[row]].tolist())
        assert not in_window & set(honest.positives[row].tolist())


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_the_leaking_reading_is_refused_unless_named(tiny_root, protocol):
    with pytest.raises(ValueError, match="allow_test_leak"):
        loaders(tiny_root, protocol=protocol, short_term_source="complete_record")
    _, (_, _, test) = loaders(tiny_root, protocol=protocol, short_term_source="complete_record", allow_test_leak=True)
    first = test._dataset
    assert history_of(first, 0) == record(user_of(first, 0))


def test_paper_as_printed_splits_80_20_and_stops_on_the_test_split(tiny_root):
    dataset, (train, valid, test) = loaders(tiny_root, protocol="paper_as_printed")
    assert valid is test  # no validation split: early stopping reads the test split
    assert len(test.positives) == 5
    for row in range(5):
        user = user_of(test._dataset, row)
        assert tokens(test._dataset, "item_id", test.positives[row].tolist()) == record(user)[8:]
        assert sorted(tokens(test._dataset, "item_id", test.excluded[row].tolist())) == sorted(record(user)[:8])
    assert len(train._dataset.inter_feat) == 5 * 7  # sequential cases: training interactions 2..8


def test_sdmtmp_trains_per_user_under_the_printed_procedure(tiny_root):
    result = run(tiny_config(tiny_root, n_layers=1, epochs=3, protocol="paper_as_printed",
                             training_cases="per_user"), saved=False)
    assert result.epochs == 3 and result.train_losses[-1] < result.train_losses[0]
    assert result.valid_cases == result.test_cases == 5  # the "validation" is the test split
