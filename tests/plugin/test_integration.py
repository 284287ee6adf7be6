"""The real pipeline on the real Instrument data: RecBole loads the converted files under both
protocols, and SD-MTMP trains, clears a random ranking by a wide margin, and reloads from its checkpoint."""

import numpy as np
import pandas as pd
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.data.protocol import split_counts
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run
from tests.chance import random_hit_rate

def small_run_settings(root, tmp_path, **overrides):
    settings = {
        "data_path": str(root),
        "checkpoint_dir": str(tmp_path / "saved"),
        "embedding_size": 32,
        "epochs": 6,
        "stopping_step": 100,
        "show_progress": False,
        "device": "cpu",
        "use_gpu": False,
        "topic_fit": "prepared",  # the fixture's fit of each user's first review (a training review)
    }
    settings.update(overrides)
    return settings


def test_protocol_split_and_raw_sequences(instrument_root, tmp_path):
    inter = pd.read_csv(instrument_root / "Instrument" / "Instrument.inter", sep="\t")
    per_user = inter.groupby("user_id:token").size()
    # paper: a user's n interactions split 70/10/20 by RecBole's rule; one case per user.
    config = build_config("SDMTMP", "Instrument", config_dict=small_run_settings(instrument_root, tmp_path))
    assert config["protocol"] == "paper"
    _, (train, valid, test) = load_data(config, SDMTMPDataset)
    counts = np.array([split_counts(n, [0.7, 0.1, 0.2]) for n in per_user])
    assert len(test.positives) == len(valid.positives) == len(per_user) == 1429
    assert sum(len(p) for p in test.positives) == counts[:, 2].sum()
    assert sum(len(p) for p in valid.positives) == counts[:, 1].sum()
    assert len(train._dataset.inter_feat) == (counts[:, 0] - 1).sum()
    feat = test._dataset.inter_feat
    ratings, times = feat["rating_list"].numpy(), feat["timestamp_list"].numpy()
    lengths = feat["item_length"].numpy()
    assert np.array_equal(np.sort(lengths), np.sort(counts[:, 0]))  # input: the training part
    valid_positions = np.arange(ratings.shape[1]) < lengths[:, None]
    assert set(np.unique(ratings[valid_positions])) <= {1.0, 2.0, 3.0, 4.0, 5.0}  # raw ratings
    assert times[valid_positions].min() >= 1095465600 / 86400  # days, not seconds or [0, 1]
    assert times[valid_positions].max() <= 1405987200 / 86400

    # next_item: the cases (interactions after the first) split 70/10/20 per user.
    config = build_config("SDMTMP", "Instrument", config_dict=small_run_settings(
        instrument_root, tmp_path, protocol="next_item"))
    _, (train, valid, test) = load_data(config, SDMTMPDataset)
    cases = np.array([split_counts(n - 1, [0.7, 0.1, 0.2]) for n in per_user])
    assert [len(train._dataset.inter_feat), len(valid.positives), len(test.positives)] == cases.sum(axis=0).tolist()
    feat = test._dataset.inter_feat
    lengths = feat["item_length"].numpy()
    last = feat["timestamp_list"].numpy()[np.arange(len(lengths)), lengths - 1]
    assert np.all(last <= feat["timestamp"].numpy())  # chronology: history before the target
    assert all(int(t) not in set(e.tolist()) for t, e in zip(feat["item_id"], test.excluded))


def test_sdmtmp_trains_on_real_data_and_reloads(instrument_root, tmp_path):
    settings = small_run_settings(instrument_root, tmp_path)
    result = run(build_config("SDMTMP", "Instrument", config_dict=settings))
    losses = result.train_losses
    assert len(losses) == 6 and losses[-1] < losses[0]
    # The floor a 6-epoch run must clear: a random ranking of the same test cases, whose HR@K
    # is exact (1 - C(c - p, K) / C(c, K) for c candidates and p positives). A correct Pop is not
    # such a floor here: tuned and fully trained, SD-MTMP is only level with it on Instrument.
    _, (_, _, test) = load_data(build_config("SDMTMP", "Instrument", config_dict=settings), SDMTMPDataset)
    for k in (10, 20):
        chance = random_hit_rate(test, k)
        assert 0.005 < chance < 0.05
        assert result.test_result[f"hit@{k}"] > 2 * chance, (k, result.test_result, chance)

    reloaded = run(build_config("SDMTMP", "Instrument", config_dict=settings), checkpoint=result.checkpoint)
    assert reloaded.epochs == 0
    assert reloaded.test_result == result.test_result
