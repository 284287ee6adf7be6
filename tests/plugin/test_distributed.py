"""Two CPU processes (gloo) report what one process reports: metrics over every case.

The tiny dataset has 5 users, so 5 test cases under the paper protocol: 2 processes score 3 and
2 of them. RecBole's own path would pad them to 6 (one case twice) and average the two processes'
means weighted by their number of batches; here the per-case rows are gathered instead.
"""

import numpy as np
import pytest
import torch

from recbole_sdmtmp import distributed as ddp
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import run
from tests.tiny_data import N_USERS, write_tiny_dataset


def settings(root, **overrides):
    values = {"data_path": str(root), "embedding_size": 4, "n_layers": 2, "dropout_rate": 0.0,
              "show_progress": False, "train_batch_size": 16, "eval_batch_size": 2, "epochs": 2,
              "checkpoint_dir": str(root / "saved"), "use_gpu": False, "gpu_id": "",
              "topic_fit": "prepared"}  # the hand-made side-files
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = write_tiny_dataset(tmp_path_factory.mktemp("ddp"))
    return root, run(build_config("SDMTMP", "tiny", config_dict=settings(root)))


def test_two_processes_evaluate_every_case_once(trained):
    """The same checkpoint evaluated by 1 and by 2 processes: same cases, same metrics."""
    root, single = trained
    double = run(build_config("SDMTMP", "tiny", config_dict=settings(root)), checkpoint=single.checkpoint, nproc=2)
    assert single.test_cases == double.test_cases == N_USERS
    for name, values in single.test_case_metrics.items():
        assert len(double.test_case_metrics[name]) == N_USERS  # all cases, none twice
        np.testing.assert_allclose(double.test_case_metrics[name], values)
    for name, value in single.test_result.items():
        # RecBole's mean over all 5 cases, e.g. hit@10 = (number of hits) / 5
        key = name.lower()
        assert value == pytest.approx(round(float(np.mean(single.test_case_metrics[key])), 4))
        assert double.test_result[name] == pytest.approx(value)


def _run_rank_saving_both(local_rank, result_file, arguments, group):
    """A spawned process that also saves its own model at each checkpoint (RecBole saves rank 0's)."""
    from recbole.trainer import Trainer

    from recbole_sdmtmp.runner import _run_rank

    save = Trainer._save_checkpoint

    def save_both(self, epoch, verbose=True, **kwargs):
        torch.save(self.model.state_dict(), f"{self.checkpoint_dir}/rank{local_rank}.state")
        save(self, epoch, verbose, **kwargs)

    Trainer._save_checkpoint = save_both
    _run_rank(local_rank, result_file, arguments, group)


def test_two_processes_train_one_model(trained, tmp_path):
    """Training in 2 processes: all-reduced gradients keep both processes' models equal, one
    checkpoint (rank 0's) is written, and the test metrics are that checkpoint's over all cases."""
    root, _ = trained
    config = build_config("SDMTMP", "tiny", config_dict=settings(root, checkpoint_dir=str(tmp_path)))
    arguments = dict(config=config, checkpoint=None, saved=True, evaluate_test=True)
    group = dict(nproc=2, world_size=2, ip="localhost", port=ddp.free_port(), offset=0)
    result = ddp.spawn(_run_rank_saving_both, 2, (arguments, group))
    assert result.epochs == 2 and all(np.isfinite(result.train_losses))
    assert len(list(tmp_path.glob("*.pth"))) == 1
    first, second = (torch.load(tmp_path / f"rank{rank}.state") for rank in (0, 1))
    saved = torch.load(result.checkpoint, weights_only=False)["state_dict"]
    for name, value in first.items():
        torch.testing.assert_close(second[name], value, rtol=0, atol=0)
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0)
    for values in result.test_case_metrics.values():
        assert len(values) == N_USERS
    again = run(build_config("SDMTMP", "tiny", config_dict=settings(root)), checkpoint=result.checkpoint)
    assert again.test_result == result.test_result


CLEAN_EXIT = """
import sys
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import run
settings = dict(data_path=sys.argv[1], embedding_size=4, n_layers=2, show_progress=False, train_batch_size=16,
                eval_batch_size=2, epochs=2, checkpoint_dir=sys.argv[2], use_gpu=False, gpu_id="", topic_fit="prepared")
result = run(build_config("SDMTMP", "tiny", config_dict=settings), nproc=2)
print("test result", result.test_result)
"""


def test_a_two_process_job_exits_cleanly_every_time(trained, tmp_path):
    """1 run in 6 once ended in SIGABRT ('terminate called without an active exception') in
    process 1 after the result was printed; every run must end with exit status 0."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    root, _ = trained
    for attempt in range(4):
        done = subprocess.run([sys.executable, "-c", CLEAN_EXIT, str(root), str(tmp_path / f"saved{attempt}")],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "test result" in done.stdout and "terminate called" not in done.stderr
