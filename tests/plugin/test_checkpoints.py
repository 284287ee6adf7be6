"""Every run writes its own checkpoint: RecBole's name (model + time to the second) was shared by
two runs that built their trainers in the same second, and one run's test loaded the other's."""

from types import SimpleNamespace

import recbole.trainer.trainer as recbole_trainer

from recbole_sdmtmp import runner
from recbole_sdmtmp.experiments import cells as store
from tests.tiny_data import write_tiny_dataset


def test_two_trainers_of_one_second_get_two_files():
    config = {"model": "SASRec", "dataset": "Instrument"}
    first = SimpleNamespace(saved_model_file="ckpt/SASRec-Nov-28-2026_10-28-01.pth")
    second = SimpleNamespace(saved_model_file="ckpt/SASRec-Nov-28-2026_10-28-01.pth")  # RecBole's, the same
    runner.own_checkpoint(first, config)
    runner.own_checkpoint(second, config)
    assert first.saved_model_file != second.saved_model_file
    for trainer in (first, second):
        assert trainer.saved_model_file.startswith("ckpt/SASRec-Instrument-") and trainer.saved_model_file.endswith(".pth")


def test_cells_built_in_the_same_second_keep_their_own_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(recbole_trainer, "get_local_time", lambda: "Dec-02-2026_06-00-00")  # one second for all
    root = write_tiny_dataset(tmp_path / "data")
    cells = [store.Cell("BPR", "BPR", "tiny", seed, (("epochs", 1),)) for seed in (1, 2)]
    records = store.run_cells(cells, tmp_path / "results", str(root))
    paths = [records[cell]["checkpoint"] for cell in cells]
    assert len(set(paths)) == 2 and len(list((tmp_path / "results" / "checkpoints").glob("BPR-tiny-*.pth"))) == 2


def test_an_untrained_cell_tests_the_initial_weights_and_writes_no_checkpoint(tmp_path):
    """``trained=False`` (the paper-claim's untrained row): no epoch, no checkpoint; the scores
    are the initial weights', so they repeat for one seed and move with another."""
    root = write_tiny_dataset(tmp_path / "data")
    cells = [store.Cell(f"BPR {seed}", "BPR", "tiny", seed, (("epochs", 3),), trained=False) for seed in (1, 1, 2)]
    trained = store.Cell("BPR trained", "BPR", "tiny", 1, (("epochs", 3),))
    records = {cell: store.run_cells([cell], tmp_path / f"results{i}", str(root))[cell]
               for i, cell in enumerate([*cells, trained])}
    first, again, other = (records[cell] for cell in cells)
    assert first["epochs"] == 0 and first["checkpoint"] is None and first["train_losses"] == []
    assert first["test_result"] == again["test_result"]
    assert first["test_case_metrics"] != other["test_case_metrics"]  # another seed: other initial weights
    assert records[trained]["epochs"] == 3 and records[trained]["test_case_metrics"] != first["test_case_metrics"]
    assert not list((tmp_path / "results0" / "checkpoints").glob("*.pth"))
