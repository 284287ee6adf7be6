"""The comparison runner: per-case metrics equal RecBole's, a general model is scored per case
by its user id, finished cells are skipped, and the tables say what the numbers say."""

import math

import numpy as np
import pytest
import torch

from recbole_sdmtmp import compare
from recbole_sdmtmp.evaluation import case_metrics
from recbole_sdmtmp.runner import build_config, load_data, run
from tests.tiny_data import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def settings(root, tmp_path, **extra):
    return {"data_path": str(root), "checkpoint_dir": str(tmp_path / "saved"), "epochs": 2,
            "show_progress": False, "embedding_size": 8, "eval_batch_size": 3, **extra}


def test_case_metrics_by_hand():
    metrics = case_metrics(np.array([0, 1, 9, 10, 20]), topk=(10, 20))
    assert metrics["hit@10"].tolist() == [1, 1, 1, 0, 0]
    assert metrics["hit@20"].tolist() == [1, 1, 1, 1, 0]
    expected = [1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0, 0.0]
    np.testing.assert_allclose(metrics["ndcg@10"], expected)


def test_general_model_scored_per_case_by_user_id(tiny_root, tmp_path):
    """BPR inside the sequential pipeline: HR@10 from its own scores, by hand, equals the runner's."""
    config_dict = settings(tiny_root, tmp_path)
    result = run("BPR", "tiny", config_dict=config_dict)
    config = build_config("BPR", "tiny", config_dict=config_dict)
    _, (train, _, test) = load_data(config)
    from recbole.model.general_recommender import BPR

    model = BPR(config, train._dataset)
    model.load_state_dict(torch.load(result.checkpoint, weights_only=False)["state_dict"])
    model.eval()
    hits, n_cases = [], 0
    feat = test._dataset.inter_feat
    with torch.no_grad():
        scores = model.full_sort_predict(feat).view(len(feat), -1)  # [cases, n_items]: a row a case
    scores[:, 0] = -np.inf
    for row, target in enumerate(feat["item_id"].tolist()):
        rank = int((scores[row] > scores[row, target]).sum())
        hits.append(rank < 10)
        n_cases += 1
    assert n_cases == len(result.test_positions) == 5  # one case per held-out interaction
    assert result.test_result["hit@10"] == pytest.approx(np.mean(hits), abs=1e-4)
    per_case = case_metrics(result.test_positions)
    for metric in compare.METRICS:
        assert result.test_result[metric] == pytest.approx(per_case[metric].mean(), abs=1e-4)


def test_runner_skips_finished_cells(tiny_root, tmp_path, monkeypatch):
    import recbole_sdmtmp.runner as runner

    calls = []
    real_run = runner.run

    def counting_run(*args, **kwargs):
        calls.append(args)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner, "run", counting_run)
    results = tmp_path / "results"
    cells = [compare.Cell("BPR", "BPR", "tiny", seed, (("epochs", 1), ("embedding_size", 8)))
             for seed in (1, 2)]
    first = compare.run_cells(cells, results, str(tiny_root))
    assert len(calls) == 2 and all(cell.path(results).is_file() for cell in cells)
    second = compare.run_cells(cells, results, str(tiny_root))
    assert len(calls) == 2  # nothing ran again
    assert {c: r["test_result"] for c, r in first.items()} == {c: r["test_result"] for c, r in second.items()}
    compare.run_cells(cells[:1], results, str(tiny_root), rerun=True)
    assert len(calls) == 3


def fake_record(label, seed, positions, epoch_s=1.0):
    metrics = case_metrics(np.array(positions))
    return {"label": label, "seed": seed, "test_positions": positions, "epochs": 10,
            "test_result": {m: float(v.mean()) for m, v in metrics.items()},
            "train_seconds_per_epoch": epoch_s, "eval_seconds": 0.5, "device": "cpu"}


def test_tables_bold_the_best_and_report_significance(tmp_path):
    ours = [0, 0, 1, 2, 30, 3, 0, 1] * 5
    theirs = [5, 9, 30, 30, 30, 30, 8, 30] * 5
    records = {}
    for seed in (1, 2):
        records[compare.Cell("SD-MTMP", "SDMTMP", "toy", seed)] = fake_record("SD-MTMP", seed, ours, 2.0)
        records[compare.Cell("SASRec", "SASRec", "toy", seed)] = fake_record("SASRec", seed, theirs, 1.0)
    path = compare.write_comparison(records, "toy", tmp_path, "cmd")
    text = path.read_text()
    assert "| SD-MTMP | 2 | **" in text and "| SASRec | 2 | 0." in text
    assert "best baseline by NDCG@10 (SASRec)" in text
    tests = compare.significance(compare.aggregate(records, "toy")[0], compare.aggregate(records, "toy")[1])
    assert all(test["wilcoxon_p"] < 0.05 and test["difference"] > 0 for test in tests)
    assert "| SASRec | 1.00 | 0.50 | 10 | 0.50 |" in text  # epoch time ratio to SD-MTMP
    csv_lines = (tmp_path / "toy.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,model,seeds,HR@10_mean,HR@10_std")
    assert len(csv_lines) == 3


def test_a_better_baseline_is_bold(tmp_path):
    records = {compare.Cell("SD-MTMP", "SDMTMP", "toy", 1): fake_record("SD-MTMP", 1, [30, 30, 1]),
               compare.Cell("BPR", "BPR", "toy", 1): fake_record("BPR", 1, [0, 0, 0])}
    text = compare.write_comparison(records, "toy", tmp_path, "cmd").read_text()
    assert "| BPR | 1 | **1.0000 ± 0.0000** |" in text
    assert "| SD-MTMP | 1 | 0.3333" in text


def test_sensitivity_figure(tmp_path):
    records = {}
    for value, positions in ((64, [0, 30]), (128, [0, 0])):
        label = compare.sweep_label("embedding_size", value)
        records[compare.Cell(label, "SDMTMP", "toy", 1)] = fake_record(label, 1, positions)
    paths = compare.plot_sensitivity(records, ["toy"], "embedding_size", [64, 128], tmp_path)
    assert [p.name for p in paths] == ["sensitivity_embedding_size_hr.png", "sensitivity_embedding_size_ndcg.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_tables_name_the_command_that_made_them(tmp_path, monkeypatch):
    records = {compare.Cell("SD-MTMP", "SDMTMP", "toy", 1): fake_record("SD-MTMP", 1, [0, 3])}
    monkeypatch.setattr(compare, "run_cells", lambda cells, results, data_root, rerun=False: records)
    argv = ["table", "--datasets", "toy", "--seeds", "1", "--results", str(tmp_path), "--models", "BPR"]
    compare.main(argv)
    assert f"python -m recbole_sdmtmp.compare {' '.join(argv)}" in (tmp_path / "toy.md").read_text()
