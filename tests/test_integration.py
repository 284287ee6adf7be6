"""The real pipeline on the real Instrument data: RecBole loads the converted files under the
protocol, and SD-MTMP trains, beats random ranking, and reloads from its checkpoint."""

import numpy as np
import pandas as pd
from recbole.data import data_preparation

from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.runner import build_config, run

N_ITEMS = 900


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
    }
    settings.update(overrides)
    return settings


def test_protocol_split_and_raw_sequences(instrument_root, tmp_path):
    config = build_config("SDMTMP", "Instrument", config_dict=small_run_settings(instrument_root, tmp_path))
    dataset = SDMTMPDataset(config)
    train, valid, test = data_preparation(config, dataset)
    inter = pd.read_csv(instrument_root / "Instrument" / "Instrument.inter", sep="\t")
    # A user with n interactions has c = n - 1 cases (the first one is history only). RecBole's
    # RS split gives test int(0.2 c) and validation int(0.1 c), each raised to one when the
    # fraction is below one (5-core users are short: most get exactly one of each).
    cases = inter.groupby("user_id:token").size() - 1
    expected_test = np.maximum(1, (0.2 * cases).astype(int))
    expected_valid = np.maximum(1, (0.1 * cases).astype(int))
    sizes = [len(part._dataset.inter_feat) for part in (train, valid, test)]
    assert sizes[2] == expected_test.sum()
    assert sizes[1] == expected_valid.sum()
    assert sum(sizes) == cases.sum()

    feat = test._dataset.inter_feat
    ratings, times = feat["rating_list"].numpy(), feat["timestamp_list"].numpy()
    lengths = feat["item_length"].numpy()
    valid_positions = np.arange(ratings.shape[1]) < lengths[:, None]
    assert set(np.unique(ratings[valid_positions])) <= {1.0, 2.0, 3.0, 4.0, 5.0}  # raw ratings
    assert times[valid_positions].min() >= 1095465600 / 86400  # days, not seconds or [0, 1]
    assert times[valid_positions].max() <= 1405987200 / 86400
    # Chronology: every test case's history ends no later than its target.
    last = times[np.arange(len(lengths)), lengths - 1]
    assert np.all(last <= feat["timestamp"].numpy())
    # Per user, test cases come after validation cases, which come after training cases.
    def latest(part):
        frame = pd.DataFrame({"u": part._dataset.inter_feat["user_id"].numpy(),
                              "t": part._dataset.inter_feat["timestamp"].numpy()})
        return frame.groupby("u")["t"]

    joined = pd.concat([latest(train).max(), latest(test).min()], axis=1, join="inner")
    assert (joined.iloc[:, 0] <= joined.iloc[:, 1]).all()


def test_sdmtmp_trains_on_real_data_and_reloads(instrument_root, tmp_path):
    settings = small_run_settings(instrument_root, tmp_path)
    result = run("SDMTMP", "Instrument", config_dict=settings)
    losses = result.train_losses
    assert len(losses) == 6 and losses[-1] < losses[0]
    random_hit10 = 10 / N_ITEMS
    assert result.test_result["hit@10"] > 3 * random_hit10
    assert result.test_result["ndcg@20"] > 3 * (20 / N_ITEMS) / 10  # well above chance

    reloaded = run("SDMTMP", "Instrument", config_dict=settings, checkpoint=result.checkpoint)
    assert reloaded.epochs == 0
    assert reloaded.test_result == result.test_result
