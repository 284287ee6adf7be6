"""Each RecBole compatibility fix, shown to be needed (the broken behaviour without it) and
to work (the RecBole call that needs it succeeds)."""


import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbole_sdmtmp import compat


def test_config_survives_numpy_without_removed_aliases(monkeypatch):
    """Config.compatibility_settings() reads np.float_ & co., which numpy 2 removed."""
    from recbole.config import Config

    for name in compat._NUMPY_ALIASES:
        monkeypatch.delattr(np, name, raising=False)
    with pytest.raises(AttributeError):
        Config(model="BPR", dataset="ml-100k", config_dict={"data_path": "/nonexistent"})
    compat._restore_numpy_aliases()
    config = Config(model="BPR", dataset="ml-100k", config_dict={"data_path": "/nonexistent"})
    assert config["model"] == "BPR"
    # The aliases RecBole's metrics spell afterwards exist again.
    assert np.zeros(2, dtype=np.float).dtype == np.float64


def test_dok_update_restored_for_recbole_graph_models(monkeypatch):
    """LightGCN/NGCF/NCL fill their adjacency with dok_matrix._update (gone in scipy 1.13)."""
    monkeypatch.delattr(sp.dok_matrix, "_update", raising=False)
    with pytest.raises(AttributeError):
        sp.dok_matrix((2, 3))._update({(0, 1): 1.0})
    compat._restore_dok_update()
    matrix = sp.dok_matrix((2, 3), dtype=np.float32)
    matrix._update({(0, 1): 2.0, (1, 2): 3.0})
    np.testing.assert_array_equal(matrix.toarray(), [[0, 2, 0], [0, 0, 3]])


def test_recbole_trainer_loads_its_own_checkpoint(tmp_path, monkeypatch):
    """RecBole's checkpoints pickle its Config; torch >= 2.6 refuses them by default."""
    import recbole.trainer.trainer as trainer_module
    from recbole.config import Config

    config = Config(model="BPR", dataset="ml-100k", config_dict={"data_path": "/nonexistent"})
    path = tmp_path / "ckpt.pth"
    torch.save({"config": config, "state_dict": {"w": torch.ones(2)}}, path, pickle_protocol=4)

    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        torch.load(path)  # the safe default stays in force everywhere else

    monkeypatch.setattr(trainer_module, "torch", torch)  # undo the fix
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        trainer_module.torch.load(path, map_location="cpu")
    compat._trust_recbole_checkpoints()
    loaded = trainer_module.torch.load(path, map_location="cpu")
    assert loaded["config"]["model"] == "BPR"
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    # Everything else the trainer takes from torch is still torch.
    assert trainer_module.torch.optim is torch.optim


def test_pop_counts_every_positive_once_and_never_a_negative():
    """RecBole's Pop adds 1 once per batch to a repeated item and counts the sampled negatives
    (label 0) too; the patched one counts each positive row."""
    from types import SimpleNamespace

    from recbole.data.interaction import Interaction
    from recbole.model.general_recommender.pop import Pop

    batch = Interaction({"item_id": torch.tensor([1, 1, 1, 2, 2, 0]),
                         "label": torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])})

    def counts(calculate_loss):
        pop = SimpleNamespace(item_cnt=torch.zeros(3, 1, dtype=torch.long), max_cnt=None, ITEM_ID="item_id",
                              LABEL="label", device="cpu")
        calculate_loss(pop, batch)
        return pop.item_cnt.squeeze(1).tolist(), pop.max_cnt.tolist()

    assert counts(compat._RECBOLE_POP_LOSS) == ([1, 1, 1], [1])  # RecBole's own: the bug
    assert counts(Pop.calculate_loss) == ([0, 3, 1], [3])
    compat.apply()  # idempotent: RecBole's original is still the one kept
    assert Pop.calculate_loss is compat._pop_calculate_loss and compat._RECBOLE_POP_LOSS is not Pop.calculate_loss


def test_recbole_initialises_colorama_once_per_process(monkeypatch):
    """RecBole's init_logger calls colorama.init on every run and each call wraps sys.stdout once
    more: after a few hundred runs in one process (a tuning study) every print overflowed the
    recursion limit. Shown with the real colorama on a fresh stream."""
    import io

    import colorama
    import recbole.utils.logger as logger_module
    from colorama.ansitowin32 import StreamWrapper

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    for _ in range(3):
        colorama.init(autoreset=True)  # RecBole's own call, three runs
    wrapped_in = sys.stdout._StreamWrapper__wrapped
    assert isinstance(wrapped_in, StreamWrapper) and isinstance(wrapped_in._StreamWrapper__wrapped, StreamWrapper)
    colorama.deinit()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(compat, "_COLORAMA_READY", False)
    for _ in range(3):
        logger_module.init(autoreset=True)  # what init_logger now calls
    assert logger_module.init is compat._colorama_once
    assert sys.stdout._StreamWrapper__wrapped is stream  # one wrapper around the stream, not three


def test_recbole_sequential_models_leave_anomaly_detection_off():
    """RecBole's SINE module turns on autograd's anomaly detection when imported (and importing
    any RecBole sequential model imports it): every backward then checked each gradient for NaN.
    The package imports it first and leaves the mode as it was; a process that turned it on
    itself keeps it."""
    import importlib

    import recbole.model.sequential_recommender.sine as sine
    from recbole.model.sequential_recommender import SASRec  # noqa: F401

    assert not torch.is_anomaly_enabled()
    try:
        importlib.reload(sine)
        assert torch.is_anomaly_enabled()  # RecBole's own import
        compat._no_anomaly_detection()
        assert torch.is_anomaly_enabled()  # on before the fix ran: kept
        torch.autograd.set_detect_anomaly(False)
        compat._no_anomaly_detection()
        assert not torch.is_anomaly_enabled()
    finally:
        torch.autograd.set_detect_anomaly(False)
