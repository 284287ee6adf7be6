"""RecBole's own routes with the plugin imported: ``recbole.quick_start`` imports, and SD-MTMP
trains and tests through RecBole's Config, create_dataset, data_preparation and Trainer, and
through ``run_recbole`` by name; the plugin's public API is what ``__all__`` says."""

import pandas as pd
import pytest
import torch

import recbole_sdmtmp
from recbole_sdmtmp import compat
from tests.tiny_data import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("routes"))


def settings(root):
    return {"data_path": str(root), "epochs": 2, "embedding_size": 8, "show_progress": False,
            "checkpoint_dir": str(root / "saved"), "eval_batch_size": 64,
            "topic_fit": "prepared"}  # the hand-made side-files (a training fit needs review text)


def test_quick_start_imports_and_ray_tuning_says_what_is_missing():
    from recbole.quick_start import objective_function, run_recbole  # noqa: F401
    import ray

    with pytest.raises(RuntimeError, match="needs the package ray"):
        ray.tune.report(ndcg=0.1)


def test_recboles_manual_pipeline_trains_and_tests_sdmtmp(tiny_root):
    """No plugin YAML passed: the model's defaults (loss_type, topic settings...) come from the
    plugin as RecBole's internal defaults, and create_dataset picks the plugin's dataset."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer

    from recbole_sdmtmp import SDMTMP, SDMTMPDataset

    config = Config(model=SDMTMP, dataset="tiny", config_dict=settings(tiny_root))
    assert config["loss_type"] == "BPR" and config["gamma2"] == 0.4 and config["normalize_all"] is False
    dataset = create_dataset(config)
    assert type(dataset) is SDMTMPDataset
    train, valid, test = data_preparation(config, dataset)
    model = SDMTMP(config, train.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train, valid, saved=True, show_progress=False)
    result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    assert set(result) == {"hit@10", "hit@20", "ndcg@10", "ndcg@20"}
    assert 0 <= result["ndcg@10"] <= result["hit@10"] <= 1
    losses = [epoch for epoch in trainer.train_loss_dict.values()]
    assert len(losses) == 2 and all(torch.isfinite(torch.as_tensor(loss)).all() for loss in losses)


def test_run_recbole_finds_the_plugin_model_by_name(tiny_root):
    from recbole.quick_start import run_recbole
    from recbole.utils import get_model

    from recbole_sdmtmp import SDMTMP

    assert get_model("SDMTMP") is SDMTMP
    result = run_recbole(model="SDMTMP", dataset="tiny", config_dict=dict(settings(tiny_root), epochs=1))
    assert set(result["test_result"]) == {"hit@10", "hit@20", "ndcg@10", "ndcg@20"}


def test_a_users_own_value_still_wins_over_the_plugin_defaults(tiny_root):
    from recbole.config import Config

    from recbole_sdmtmp import SDMTMP

    config = Config(model=SDMTMP, dataset="tiny", config_dict=dict(settings(tiny_root), gamma2=0.1))
    assert config["gamma2"] == 0.1
    assert Config(model="BPR", dataset="tiny", config_dict=settings(tiny_root))["gamma2"] is None  # RecBole's own model: untouched


def test_the_public_api_is_all_importable():
    for name in recbole_sdmtmp.__all__:
        assert getattr(recbole_sdmtmp, name) is not None
    with pytest.raises(AttributeError):
        recbole_sdmtmp.no_such_name  # noqa: B018


def test_fill_nan_gives_recboles_values_without_the_chained_assignment_warning():
    """RecBole's own _fill_nan on a frame with a missing token and a missing float: the same
    values, and no FutureWarning from the patched one."""
    import warnings
    from types import SimpleNamespace

    from recbole.utils import FeatureType

    def frame():
        return pd.DataFrame({"tok": [1.0, None, 3.0], "val": [1.0, None, 3.0]})

    def owner(feat):
        return SimpleNamespace(feat_name_list=["inter_feat"], inter_feat=feat,
                               field2type={"tok": FeatureType.TOKEN, "val": FeatureType.FLOAT},
                               logger=SimpleNamespace(debug=lambda *a: None))

    patched = owner(frame())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compat._fill_nan_by_assignment(patched)
    assert patched.inter_feat["tok"].tolist() == [1.0, 0.0, 3.0]
    assert patched.inter_feat["val"].tolist() == [1.0, 2.0, 3.0]


def test_grad_scaler_is_the_current_class_without_a_deprecation_warning():
    import warnings

    import recbole.trainer.trainer as trainer_module

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = trainer_module.amp.GradScaler(enabled=False)
    assert isinstance(scaler, torch.amp.GradScaler)
    assert trainer_module.amp.autocast is torch.cuda.amp.autocast  # the rest is torch.cuda.amp
