"""A result that read the topics belongs to the topic fit it read: cells and studies of SD-MTMP
on another fit are run again or refused, never mixed with the current fit's (experiments.fits)."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from dataset_preprocess.topics.files import topic_fit_id
from recbole_sdmtmp.experiments import cells as store
from recbole_sdmtmp.experiments import fits, tuning
from tests.tiny_data import write_tiny_dataset

GIVEN = {"topic_fit": "prepared"}  # the tiny dataset's hand-made side-files


@pytest.fixture()
def tiny_root(tmp_path):
    return write_tiny_dataset(tmp_path / "data")


def refit(root, name="tiny"):
    """Another machine's fit of the same reviews: the topic vectors move by one float step."""
    path = root / name / f"{name}.topic_vec.npy"
    vectors = np.load(path)
    np.save(path, np.nextafter(vectors, np.float32(np.inf)))


def test_the_fit_id_is_the_hash_of_the_two_files_the_model_reads(tiny_root):
    folder = tiny_root / "tiny"
    expected = hashlib.sha256((folder / "tiny.review_topic").read_bytes()
                              + (folder / "tiny.topic_vec.npy").read_bytes()).hexdigest()[:12]
    assert topic_fit_id(folder, "tiny") == expected
    assert fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN) == expected
    assert fits.topic_fit("BPR", "tiny", str(tiny_root), "paper", GIVEN) is None  # BPR's results do not read topics
    refit(tiny_root)
    assert fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN) not in (None, expected)  # cache keyed by the file
    (folder / "tiny.review_topic").unlink()
    assert topic_fit_id(folder, "tiny") is None


def test_an_sdmtmp_cell_on_another_fit_is_run_again_and_a_bpr_cell_is_kept(tiny_root, tmp_path):
    results = tmp_path / "results"
    ours = store.Cell("SD-MTMP", "SDMTMP", "tiny", 1, (("epochs", 1), ("topic_fit", "prepared")))
    bpr = store.Cell("BPR", "BPR", "tiny", 1, (("epochs", 1),))
    records = store.run_cells([ours, bpr], results, str(tiny_root))
    fit = fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN)
    assert records[ours]["topics_fit"] == fit and "topics_fit" not in records[bpr]
    assert store.finished_record(ours, results, str(tiny_root)) == records[ours]
    refit(tiny_root)
    assert store.finished_record(ours, results, str(tiny_root)) is None
    assert store.finished_record(bpr, results, str(tiny_root)) == records[bpr]
    again = store.run_cells([ours], results, str(tiny_root))[ours]
    assert again["topics_fit"] == fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN) != fit
    # a cell written before fits were recorded cannot be placed on any fit
    unrecorded = {key: value for key, value in again.items() if key != "topics_fit"}
    ours.path(results).write_text(json.dumps(unrecorded))
    assert store.finished_record(ours, results, str(tiny_root)) is None


def test_a_topic_study_on_another_fit_is_refused_until_restarted(tiny_root, tmp_path, monkeypatch):
    by_protocol = fits.topic_fit  # a study checks the fit of the protocol's own settings: here, the given one
    monkeypatch.setattr(fits, "topic_fit", lambda model, dataset, root, protocol, overrides=None:
                        by_protocol(model, dataset, root, protocol, GIVEN))
    url = tuning.storage_url(tmp_path / "results")
    space = {"x": tuning.parse_knob("test", "x", {"low": 0.0, "high": 1.0})}
    fit = fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN)
    tuning.prepare_study(url, "SDMTMP", "tiny", "paper", 7, space, {"x": 0.5}, fit)
    study = tuning.open_study(url, "SDMTMP", "tiny", "paper", 7)
    assert study.user_attrs["topics_fit"] == fit

    def objective(trial):
        trial.set_user_attr("overrides", {"x": trial.suggest_float("x", 0.0, 1.0)})
        trial.set_user_attr("record", {"topics_fit": fit})
        return trial.params["x"]

    tuning.work(url, "SDMTMP", "tiny", "paper", 7, objective, 2)
    chosen = tuning.chosen_trial(tmp_path / "results", "SDMTMP", "tiny", "paper", data_root=str(tiny_root))
    assert chosen["topics_fit"] == fit
    tuning.prepare_study(url, "SDMTMP", "tiny", "paper", 7, space, {"x": 0.5}, fit)  # the same fit resumes
    refit(tiny_root)
    new_fit = fits.topic_fit("SDMTMP", "tiny", str(tiny_root), "paper", GIVEN)
    with pytest.raises(SystemExit, match="Restart it on these topics"):
        tuning.prepare_study(url, "SDMTMP", "tiny", "paper", 7, space, {"x": 0.5}, new_fit)
    with pytest.raises(fits.OtherTopicFit, match="--restart"):
        tuning.chosen_trial(tmp_path / "results", "SDMTMP", "tiny", "paper", data_root=str(tiny_root))
    assert tuning.delete_study(url, "SDMTMP", "tiny", "paper") == 2
    tuning.prepare_study(url, "SDMTMP", "tiny", "paper", 7, space, {"x": 0.5}, new_fit)
    study = tuning.open_study(url, "SDMTMP", "tiny", "paper", 7)
    assert [t.state.name for t in study.get_trials()] == ["WAITING"]  # afresh, on the new fit: trial 0
    assert study.user_attrs["topics_fit"] == new_fit


def test_a_study_of_a_model_without_topics_ignores_the_fit(tiny_root, tmp_path):
    url = tuning.storage_url(tmp_path / "results")
    space = {"x": tuning.parse_knob("test", "x", {"low": 0.0, "high": 1.0})}
    tuning.prepare_study(url, "BPR", "tiny", "paper", 7, space, {"x": 0.5}, None)

    def objective(trial):
        trial.set_user_attr("overrides", {"x": trial.suggest_float("x", 0.0, 1.0)})
        return 0.1

    tuning.work(url, "BPR", "tiny", "paper", 7, objective, 1)
    shutil.rmtree(tiny_root / "tiny")  # no topics at all: BPR's choice does not depend on them
    assert tuning.chosen_trial(tmp_path / "results", "BPR", "tiny", "paper", data_root=str(tiny_root))["valid"] == 0.1


def test_status_names_the_restart_of_a_study_tuned_on_another_fit(tmp_path, monkeypatch):
    from studies import status
    from tests.study_data import add_trials, on_fit

    add_trials(tmp_path, "SDMTMP", "toy", "paper", [{}, {"beta": 0.1}], [0.02, 0.03])
    add_trials(tmp_path, "BPR", "toy", "paper", [{}], [0.01])
    on_fit(monkeypatch)  # the fit the trials recorded
    assert status.model_state(tmp_path, "SDMTMP", "toy", "paper", 2)["valid"] == 0.03
    on_fit(monkeypatch, "f2")  # the topics were prepared again on another machine
    assert status.model_state(tmp_path, "SDMTMP", "toy", "paper", 2)["state"] == status.OTHER_FIT
    assert status.model_state(tmp_path, "BPR", "toy", "paper", 1)["valid"] == 0.01
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 2))
    assert "--datasets toy --models SDMTMP --trials 2 --restart" in text


def test_restart_refuses_to_delete_every_study_unnamed(tmp_path):
    from recbole_sdmtmp import tune

    with pytest.raises(SystemExit, match="name them with --models"):
        tune.main(["--datasets", "toy", "--restart", "--results", str(tmp_path)])


def test_tune_skips_a_study_on_another_fit_and_goes_on_with_the_others(tmp_path, monkeypatch, caplog):
    """A new machine's topics must not stop the baselines' studies from resuming."""
    from recbole_sdmtmp import tune
    from tests.study_data import add_trials

    add_trials(tmp_path, "SDMTMP", "toy", "paper", [{}], [0.02])  # recorded fit "f1"
    study = tuning.open_study(tuning.storage_url(tmp_path), "SDMTMP", "toy", "paper", 0)
    study.set_user_attr("topics_fit", "f1")
    ran = []
    monkeypatch.setattr(tune, "topic_fit", lambda model, dataset, data_root, *_: "f2" if model == "SDMTMP" else None)
    monkeypatch.setattr(tune, "ensure_prepared", lambda config: None)
    monkeypatch.setattr(tune, "build_config", lambda *args, **kwargs: None)
    monkeypatch.setattr(tune, "default_params", lambda *args: {})
    monkeypatch.setattr(tune, "run_workers", lambda url, model, *args: ran.append(model))
    monkeypatch.setattr(tune, "write_report", lambda *args: tmp_path / "report.md")
    argv = ["--datasets", "toy", "--trials", "1", "--results", str(tmp_path)]
    tune.main(argv + ["--models", "SDMTMP", "BPR"])
    assert ran == ["BPR"] and "skipping paper/toy/SDMTMP" in caplog.text
    with pytest.raises(SystemExit, match=r"would delete paper/toy/SDMTMP \(1 trials\); add --yes"):
        tune.main(argv + ["--models", "SDMTMP", "--restart"])  # pytest's stdin is no terminal
    assert ran == ["BPR"] and len(tuning.study_trials(tmp_path, "SDMTMP", "toy", "paper")) == 1
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    with pytest.raises(SystemExit, match="nothing deleted"):
        tune.main(argv + ["--models", "SDMTMP", "--restart"])
    assert len(tuning.study_trials(tmp_path, "SDMTMP", "toy", "paper")) == 1
    monkeypatch.setattr("builtins.input", lambda question: "y")
    tune.main(argv + ["--models", "SDMTMP", "--restart"])
    assert ran == ["BPR", "SDMTMP"]
    restarted = tuning.open_study(tuning.storage_url(tmp_path), "SDMTMP", "toy", "paper", 0)
    assert restarted.user_attrs["topics_fit"] == "f2" and len(restarted.get_trials()) == 1  # trial 0, waiting
