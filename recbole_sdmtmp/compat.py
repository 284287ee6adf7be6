"""RecBole 1.2.1 on today's numpy, scipy and torch: every fix in one place (docs/DESIGN.md §6).

Import this module before anything from ``recbole``; ``recbole_sdmtmp/__init__.py`` does.
Each fix is idempotent, touches only what RecBole itself calls, and is proven by a test in
``tests/plugin/test_compat.py`` that fails without it. ``recbole.quick_start`` is never imported: it
imports ray 2.6.3, which breaks on new setuptools; ``recbole_sdmtmp.runner`` replaces it.
"""

import numpy as np
import scipy.sparse as sp
import torch

# numpy 2 removed these; RecBole's Config.compatibility_settings() reads them to recreate
# ``np.float``, ``np.long``... (still spelled in evaluator/metrics.py and model/layers.py).
# We pin numpy<2, where they exist; the aliases keep RecBole alive if numpy 2 slips in.
_NUMPY_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
}


def _restore_numpy_aliases():
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def _dok_update(self, data):
    """``dok_matrix._update`` (removed in scipy 1.13), which RecBole's LightGCN/NGCF/NCL call."""
    self._dict.update(data)


def _restore_dok_update():
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update


class _TrustedCheckpointTorch:
    """``torch`` as seen by ``recbole.trainer.trainer``, whose checkpoints hold a pickled Config.

    torch >= 2.6 loads with ``weights_only=True`` and refuses them. Only the trainer's module
    global is replaced, so only RecBole's own checkpoints (written by the same trainer) are
    unpickled; every other ``torch.load`` keeps the safe default.
    """

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, *args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(f, *args, **kwargs)


def _trust_recbole_checkpoints():
    import recbole.trainer.trainer as trainer_module

    if not isinstance(trainer_module.torch, _TrustedCheckpointTorch):
        trainer_module.torch = _TrustedCheckpointTorch()


def _pop_init(self, config, dataset):
    _RECBOLE_POP_INIT(self, config, dataset)
    self.LABEL = config["LABEL_FIELD"]  # pointwise negative sampling marks its negatives with 0


def _pop_calculate_loss(self, interaction):
    """RecBole's ``item_cnt[item] = item_cnt[item] + 1`` adds 1 once per batch to an item that
    occurs several times in it, and counts the sampled negatives, which share the item field
    (RecBole 1.2.1's Pop, as shipped): it then ranks by "batches an item appeared in". Here each
    positive row adds 1 (index_add over the positives), so the scores are the training counts."""
    item = interaction[self.ITEM_ID]
    if self.LABEL in interaction:
        item = item[interaction[self.LABEL] > 0]
    self.item_cnt.index_add_(0, item, torch.ones(len(item), 1, dtype=self.item_cnt.dtype, device=item.device))
    self.max_cnt = torch.max(self.item_cnt, dim=0)[0]
    return torch.nn.Parameter(torch.zeros(1)).to(self.device)


_RECBOLE_POP_INIT = None
_RECBOLE_POP_LOSS = None  # RecBole's own, kept for the test that shows it miscounts


def _count_pop_exactly():
    global _RECBOLE_POP_INIT, _RECBOLE_POP_LOSS
    from recbole.model.general_recommender.pop import Pop

    if Pop.calculate_loss is not _pop_calculate_loss:
        _RECBOLE_POP_INIT, _RECBOLE_POP_LOSS = Pop.__init__, Pop.calculate_loss
        Pop.__init__, Pop.calculate_loss = _pop_init, _pop_calculate_loss


_COLORAMA_READY = False


def _colorama_once(*args, **kwargs):
    """RecBole's ``init_logger`` calls ``colorama.init(autoreset=True)`` on every run, and each
    call wraps ``sys.stdout`` and ``sys.stderr`` in one more converter: a process that runs a few
    hundred models (a tuning study: 244 here) then overflows the recursion limit on its next
    print, and every later run fails. The first call does it; the others do nothing."""
    global _COLORAMA_READY
    if not _COLORAMA_READY:
        import colorama

        colorama.init(*args, **kwargs)
        _COLORAMA_READY = True


def _init_colorama_once():
    import recbole.utils.logger as logger_module

    logger_module.init = _colorama_once


def _fill_nan_by_assignment(self):
    """RecBole's ``Dataset._fill_nan`` with ``feat[field] = feat[field].fillna(...)`` instead of
    the chained ``feat[field].fillna(..., inplace=True)``, which pandas 2 warns about on every
    run (a FutureWarning: pandas 3 ignores it silently). Same values: 0 for a missing token, the
    column mean for a missing float, an empty array for a missing sequence."""
    from recbole.utils import FeatureType

    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in feat:
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x)


def _fill_nan_without_chained_assignment():
    from recbole.data.dataset import Dataset

    Dataset._fill_nan = _fill_nan_by_assignment


class _DeviceAmp:
    """``torch.cuda.amp`` as seen by ``recbole.trainer.trainer``: its ``GradScaler`` (deprecated
    since torch 2.4, a FutureWarning on every training) is ``torch.amp.GradScaler('cuda')``, the
    same class under its current name."""

    def __getattr__(self, name):
        return getattr(torch.cuda.amp, name)

    @staticmethod
    def GradScaler(*args, **kwargs):  # noqa: N802  (the name RecBole calls)
        return torch.amp.GradScaler("cuda", *args, **kwargs)


def _current_grad_scaler():
    import recbole.trainer.trainer as trainer_module

    if not isinstance(trainer_module.amp, _DeviceAmp):
        trainer_module.amp = _DeviceAmp()


def _no_anomaly_detection():
    """``recbole/model/sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)``
    when it is imported, and importing any of RecBole's sequential models imports it: every model
    of the process then records a stack trace per autograd node and checks every gradient for NaN
    (``ne`` + ``any`` over each one), a debugging mode that cost a third of a training step. The
    module is imported here and the mode left as it was before."""
    enabled = torch.is_anomaly_enabled()
    import recbole.model.sequential_recommender.sine  # noqa: F401

    torch.autograd.set_detect_anomaly(enabled)


def apply():
    """Apply every fix; safe to call more than once."""
    _restore_numpy_aliases()
    _restore_dok_update()
    _trust_recbole_checkpoints()
    _count_pop_exactly()
    _init_colorama_once()
    _fill_nan_without_chained_assignment()
    _current_grad_scaler()
    _no_anomaly_detection()


apply()
