"""On CUDA, the same numbers as on CPU (skipped without CUDA; run by benchmarks/gpu_check.sh)."""

import numpy as np
import pytest
import torch

from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run
from tests.model.test_model import first_batch
from tests.tiny_data import tiny_config, write_tiny_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
ON_CUDA = {"use_gpu": True, "gpu_id": "0"}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("gpu"))


def model_on(tiny_root, cuda: bool, state=None, **overrides):
    config = tiny_config(tiny_root, **(ON_CUDA if cuda else {}), **overrides)
    train, _, test = load_data(config, SDMTMPDataset)[1]
    torch.manual_seed(0)
    model = SDMTMP(config, train._dataset).to(config["device"])
    if state is not None:
        model.load_state_dict(state)
    return model.eval(), train, test


@pytest.mark.parametrize("graph_batch", ["full", "subgraph"])
def test_cuda_scores_equal_cpu_scores(tiny_root, graph_batch):
    cpu, train, test = model_on(tiny_root, cuda=False, graph_batch=graph_batch, dropout_type="none")
    gpu, _, _ = model_on(tiny_root, cuda=True, state=cpu.state_dict(), graph_batch=graph_batch, dropout_type="none")
    assert gpu.device.type == "cuda"
    batch = first_batch(test)
    with torch.no_grad():
        expected = cpu.full_sort_predict(batch)
        got = gpu.full_sort_predict(batch.to(gpu.device)).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    cpu.train(), gpu.train()
    training = first_batch(train)
    torch.testing.assert_close(sum(gpu.calculate_loss(training.to(gpu.device))).cpu(), sum(cpu.calculate_loss(training)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", ["SDMTMP", "SASRec", "LightGCN"])
def test_run_on_cuda_reports_cuda_memory(tiny_root, model, tmp_path):
    result = run(build_config(model, "tiny", config_dict={"data_path": str(tiny_root), "epochs": 1, "show_progress": False,
                                             "checkpoint_dir": str(tmp_path), **ON_CUDA}))
    assert result.device.startswith("cuda") and result.peak_cuda_mb > 0
    assert all(np.isfinite(result.train_losses))


def test_sentence_encoder_on_cuda_matches_cpu():
    from dataset_preprocess.topics.embedding_cache import SentenceEncoder

    sentences = ["The strings sound bright.", "Shipping was fast and the box was fine."]
    on_cuda = SentenceEncoder("all-MiniLM-L6-v2").encode(sentences)  # picks CUDA by itself
    on_cpu = SentenceEncoder("all-MiniLM-L6-v2", device="cpu").encode(sentences)
    assert (on_cuda * on_cpu).sum(axis=1).min() > 0.999


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="fewer than 2 GPUs")
def test_two_gpus_nccl_report_the_metrics_of_one_process(tiny_root, tmp_path):
    settings = {"data_path": str(tiny_root), "epochs": 1, "show_progress": False, "eval_batch_size": 2,
                "checkpoint_dir": str(tmp_path), "use_gpu": True, "gpu_id": "0,1"}
    trained = run(build_config("SDMTMP", "tiny", config_dict=settings), nproc=2)
    single = run(build_config("SDMTMP", "tiny", config_dict=dict(settings, gpu_id="0")), checkpoint=trained.checkpoint)
    assert trained.test_result == pytest.approx(single.test_result)
    for name, values in single.test_case_metrics.items():
        np.testing.assert_allclose(trained.test_case_metrics[name], values)
