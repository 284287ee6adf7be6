"""The tuning study: YAML ranges, trial 0 the defaults, a seeded TPE, a median pruner, the
budget, the Optuna version a study records, and the committed studies read as they were chosen
(several processes and kills: tests/tuning/test_tuning_concurrency.py)."""

import functools
import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from recbole_sdmtmp.experiments import planning, tuning
from tests.tiny_data import write_tiny_dataset

SHARED_KNOBS = ("learning_rate", "reg_weight", "embedding_size")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def url_of(tmp_path) -> str:
    return tuning.storage_url(tmp_path / "results")


def new_study(url, defaults=None, seed=7, space=None, model="M"):
    tuning.prepare_study(url, model, "toy", "paper", seed, space if space is not None else SPACE,
                         defaults or {"x": 0.5, "lr": 1.0e-3})
    return tuning.open_study(url, model, "toy", "paper", seed)


SPACE = {"x": tuning.parse_knob("test", "x", {"low": 0.0, "high": 1.0}),
         "lr": tuning.parse_knob("test", "lr", {"low": 1.0e-4, "high": 1.0e-2, "log": True})}


def quadratic(trial):
    """A stand-in for training: suggests both knobs, best at x = 0.3."""
    values = {key: knob.suggest(trial, key) for key, knob in SPACE.items()}
    trial.set_user_attr("overrides", values)
    return 1.0 - (values["x"] - 0.3) ** 2


# -- the YAML ------------------------------------------------------------------------------------

def test_yaml_forms_parse_to_optuna_distributions():
    log = tuning.parse_knob("f", "learning_rate", {"low": 1.0e-4, "high": 1.0e-2, "log": True}).distribution
    assert log == FloatDistribution(1e-4, 1e-2, log=True)
    assert tuning.parse_knob("f", "p", {"low": 0.0, "high": 0.5}).distribution == FloatDistribution(0.0, 0.5)
    assert tuning.parse_knob("f", "n", {"low": 1, "high": 4, "int": True}).distribution == IntDistribution(1, 4)
    assert tuning.parse_knob("f", "s", {"low": 0, "high": 10, "step": 2.5}).distribution == FloatDistribution(0, 10, step=2.5)
    assert tuning.parse_knob("f", "c", ["a", "b"]).distribution == CategoricalDistribution(["a", "b"])
    lists = tuning.parse_knob("f", "hidden_size_list", [[64], [64, 64]])
    assert lists.encoded and lists.suggest(optuna.trial.FixedTrial({"hidden_size_list": "[64, 64]"}),
                                           "hidden_size_list") == [64, 64]
    assert lists.contains([64]) and not lists.contains([32])


@pytest.mark.parametrize("spec, message", [
    ({"low": 1.0e-4}, "keys low, high"),
    ({"low": 0.1, "high": 0.5, "width": 1}, "keys low, high"),
    ({"low": 0.5, "high": 0.1}, "low < high"),
    ({"low": 0.0, "high": 1.0, "log": True}, "low must be > 0"),
    ({"low": "1e-4", "high": 1.0e-2, "log": True}, "YAML reads 1e-4 as a string"),
    ({"low": 1, "high": 4.5, "int": True}, "integer range"),
    ({"low": 0.0, "high": 1.0, "log": "yes"}, "true or false"),
    ({"low": 1.0e-4, "high": 1.0, "log": True, "step": 0.1}, "both log-scaled and stepped"),
    ([], "non-empty list"),
    (0.001, "a list of values or a range"),
    ([1, 1, 2], "twice"),
])
def test_bad_ranges_are_refused_with_the_file_and_key(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        tuning.parse_knob("properties/tuning/X.yaml", "lr", spec)
    assert "properties/tuning/X.yaml: lr" in str(error.value)


def test_every_space_parses_and_shared_knobs_have_one_range():
    spaces = {model: tuning.search_space(model) for model in tuning.MODELS}
    for knob in SHARED_KNOBS:
        ranges = {model: space[knob].describe() for model, space in spaces.items() if knob in space}
        assert len(ranges) >= 5 and len(set(ranges.values())) == 1, ranges
    assert spaces["SASRec"]["hidden_size"].describe() == spaces["BPR"]["embedding_size"].describe()
    assert spaces["BPR"]["embedding_size"].distribution.choices[-1] == 512
    assert spaces["BPR"]["learning_rate"].distribution == FloatDistribution(1e-4, 1e-2, log=True)
    for model, space in spaces.items():  # every trained model has a continuous knob
        if model not in ("Pop", "ItemKNN"):
            assert any(isinstance(k.distribution, FloatDistribution) for k in space.values()), model
    assert spaces["Pop"] == {} and tuning.budget(spaces["Pop"], 30) == 1 and tuning.budget(spaces["BPR"], 30) == 30


def test_every_default_lies_in_its_space():
    for model in tuning.MODELS:
        space = tuning.search_space(model)
        defaults = tuning.default_params(model, "Instrument", "paper", space)
        assert set(defaults) == set(space)
    sdmtmp = tuning.default_params("SDMTMP", "Instrument", "paper", tuning.search_space("SDMTMP"))
    assert sdmtmp["train_neg_sample_args.sample_num"] == 1 and sdmtmp["learning_rate"] == 0.001


def test_a_range_without_the_default_is_refused(tmp_path, monkeypatch):
    (tmp_path / "BPR.yaml").write_text("learning_rate: {low: 2.0e-3, high: 1.0e-2, log: true}\n")
    monkeypatch.setattr(tuning, "TUNING", tmp_path)
    with pytest.raises(ValueError, match="does not contain BPR's default 0.001"):
        tuning.default_params("BPR", "Instrument", "paper", tuning.search_space("BPR"))


# -- the study ----------------------------------------------------------------------------------

def test_trial_0_is_the_default_and_the_budget_is_exact(tmp_path):
    url = url_of(tmp_path)
    new_study(url)
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic, 4) == 4
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in trials)
    assert trials[0].params == {"x": 0.5, "lr": 1.0e-3} and trials[0].user_attrs["defaults"]
    assert not any(t.user_attrs.get("defaults") for t in trials[1:])
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic, 4) == 0  # finished: nothing runs again
    study = new_study(url)  # opened again: the default is not queued a second time
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic, 6) == 2 and len(study.get_trials()) == 6
    assert len({t.params["x"] for t in study.get_trials()}) == 6  # the resumed process drew new points
    assert sum(bool(t.user_attrs.get("defaults")) for t in study.get_trials()) == 1


def test_a_study_records_what_it_was_begun_with_and_refuses_another(tmp_path):
    url = url_of(tmp_path)
    study = new_study(url)
    assert study.user_attrs["optuna_version"] == optuna.__version__ and study.user_attrs["seed"] == 7
    tuning.work(url, "M", "toy", "paper", 7, quadratic, 1)
    with pytest.raises(SystemExit, match="begun with seed 7"):
        new_study(url, seed=8)
    with pytest.raises(SystemExit, match="begun with seed 7"):
        new_study(url, space={"x": SPACE["x"]})
    other_major = f"{int(tuning.OPTUNA_MAJOR) - 1}.9.0"
    study.set_user_attr("optuna_version", other_major)
    with pytest.raises(SystemExit, match=f"tuned under Optuna {other_major}; this is Optuna "
                                         f"{re.escape(optuna.__version__)}, another major version"):
        new_study(url)
    study.set_user_attr("optuna_version", f"{tuning.OPTUNA_MAJOR}.0.0")  # another minor version: resumed
    new_study(url)
    legacy = tuning.open_study(url, "Old", "toy", "paper", 7)  # a study that recorded no version
    legacy.enqueue_trial({"x": 0.5})
    with pytest.raises(SystemExit, match="does not record the Optuna version"):
        new_study(url, model="Old")


def test_tpe_is_seeded(tmp_path):
    def suggestions(folder, seed):
        url = tuning.storage_url(folder)
        new_study(url, seed=seed)
        tuning.work(url, "M", "toy", "paper", seed, quadratic, 13)
        return [t.params for t in tuning.study_trials(folder, "M", "toy", "paper")]

    first, again, other = (suggestions(tmp_path / name, seed) for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    assert first == again  # trials 11-12 are TPE's own, past its 10 random start-up trials
    assert first[0]["x"] == other[0]["x"] == 0.5 and first[1:] != other[1:]  # the default, then other draws
    assert len({t["x"] for t in first}) == 13  # no repeated configuration


def test_the_median_pruner_stops_a_clearly_bad_trial(tmp_path):
    def curves(trial):
        quadratic(trial)
        quality = 0.01 if trial.number == 6 else 0.5
        for epoch in range(1, 21):
            trial.report(quality + epoch / 1000, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return quality + 0.02

    url = url_of(tmp_path)
    new_study(url)
    tuning.work(url, "M", "toy", "paper", 7, curves, 8)
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6 + ["PRUNED", "COMPLETE"]  # pruned counts
    assert trials[6].last_step == tuning.PRUNER["n_warmup_steps"]  # stopped at the end of the warm-up
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert len(records) == 8 and records[6]["valid"] == pytest.approx(0.02)  # best epoch kept
    assert tuning.chosen_trial(tmp_path / "results", "M", "toy", "paper")["state"] == "COMPLETE"


def test_ctrl_c_queues_the_trial_again(tmp_path):
    def interrupted(trial):
        quadratic(trial)
        raise KeyboardInterrupt

    url = url_of(tmp_path)
    new_study(url)
    with pytest.raises(KeyboardInterrupt):
        tuning.work(url, "M", "toy", "paper", 7, interrupted, 2)
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic, 2) == 2
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert [(r["trial"], r["state"], r["retry_of"], r["defaults"]) for r in records] == [
        (1, "COMPLETE", 0, True), (2, "COMPLETE", None, False)]


def test_a_failing_trial_is_listed_not_counted_and_a_model_that_always_fails_ends(tmp_path):
    def flaky(trial):
        if trial.number == 1:
            raise RuntimeError("out of memory")
        return quadratic(trial)

    url = url_of(tmp_path)
    new_study(url)
    assert tuning.work(url, "M", "toy", "paper", 7, flaky, 3) == 4
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert [r["state"] for r in records] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert records[1]["error"] == "RuntimeError: out of memory"

    def broken(trial):
        raise ValueError("no such knob")

    new_study(url, model="Broken")
    assert tuning.work(url, "Broken", "toy", "paper", 7, broken, 3) == 3  # not for ever
    assert [r["error"] for r in tuning.finished_trials(tmp_path / "results", "Broken", "toy", "paper")] == [
        "ValueError: no such knob"] * 3


def test_postgresql_urls_name_the_installed_driver_or_say_what_to_install(monkeypatch):
    installed = set()
    monkeypatch.setattr(tuning, "find_spec", lambda name: name if name in installed else None)
    with pytest.raises(SystemExit, match=r"pip install 'psycopg\[binary\]'"):
        tuning.driver_url("postgresql://u:secret@db/tune")
    installed.add("psycopg2")
    assert tuning.driver_url("postgresql://u@db/tune") == "postgresql+psycopg2://u@db/tune"
    installed.add("psycopg")
    assert tuning.driver_url("postgres://u@db/tune") == "postgresql+psycopg://u@db/tune"
    assert tuning.driver_url("postgresql+psycopg2://u@db/tune") == "postgresql+psycopg2://u@db/tune"
    assert tuning.shown("postgresql://u:secret@db/tune") == "postgresql://u:***@db/tune"


# -- real trials --------------------------------------------------------------------------------

def test_the_runner_reports_each_validation_and_a_raise_stops_it(tiny_root, tmp_path):
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    settings = {"data_path": str(tiny_root), "checkpoint_dir": str(tmp_path), "epochs": 3, "show_progress": False,
                "embedding_size": 8, "stopping_step": 100}
    seen = []
    result = run(build_config("BPR", "tiny", config_dict=settings), evaluate_test=False, saved=False, on_valid=lambda epoch, score: seen.append((epoch, score)))
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert result.best_valid_score == max(score for _, score in seen)
    assert result.best_valid_result["ndcg@10"] == result.best_valid_score

    class Stop(Exception):
        pass

    def stop(epoch, score):
        seen.append(epoch)
        raise Stop

    seen.clear()
    with pytest.raises(Stop):
        run(build_config("BPR", "tiny", config_dict=settings), evaluate_test=False, saved=False, on_valid=stop)
    assert seen == [1]


def test_real_trials_read_validation_only_and_compare_takes_the_choice_from_the_store(tiny_root, tmp_path, monkeypatch):
    import torch

    import recbole_sdmtmp.runner as runner

    results = tmp_path / "results"
    url = tuning.storage_url(results)
    runs = []
    real_run = runner.run

    def spying_run(*args, **kwargs):
        runs.append(real_run(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(runner, "run", spying_run)
    space = tuning.search_space("BPR")
    defaults = tuning.default_params("BPR", "tiny", "paper", space, str(tiny_root))
    seed = tuning.study_seed(1, "BPR", "tiny", "paper")
    tuning.prepare_study(url, "BPR", "tiny", "paper", seed, space, defaults)
    objective = functools.partial(tuning.train_trial, model="BPR", dataset="tiny", protocol="paper", seed=1,
                                  results=str(results), data_path=str(tiny_root), settings={"epochs": 2})
    tuning.run_workers(url, "BPR", "tiny", "paper", seed, objective, 2)
    assert len(runs) == 2 and all(r.test_result == {} and r.test_case_metrics == {} for r in runs)  # no test read
    records = tuning.finished_trials(results, "BPR", "tiny", "paper")
    assert [r["state"] for r in records] == ["COMPLETE", "COMPLETE"]
    assert records[0]["overrides"] == {"learning_rate": 0.001, "embedding_size": 64}
    assert [r["valid"] for r in records] == [r.best_valid_result["ndcg@10"] for r in runs]
    trials = tuning.study_trials(results, "BPR", "tiny", "paper")
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)  # reported per epoch
    made_by = trials[0].user_attrs["record"]["provenance"]  # what made the trial's numbers
    assert made_by["libraries"] == {"torch": torch.__version__, "recbole": "1.2.1", "optuna": optuna.__version__}
    assert made_by["topics_fit"] is None  # BPR reads no topics
    best = tuning.chosen_trial(results, "BPR", "tiny", "paper")
    assert best["valid"] == max(r["valid"] for r in records)
    assert planning.tuned_overrides(results, "BPR", "tiny", "paper") == best["overrides"]
    cells = planning.plan_cells(planning.table_rows(["BPR"]), ["tiny"], "paper", [1], results, tuned=True)
    assert dict(cells[0].overrides) == best["overrides"] and cells[0].study == "cells_tuned"
    report = tuning.write_report(results, "tiny", "paper", ["BPR", "SASRec"], 2, "cmd").read_text()
    assert "| BPR | 2 | 2 | 0 | 0 |" in report and "| SASRec |" not in report
    assert f"`{url}`" in report and "MedianPruner(n_startup_trials=5, n_warmup_steps=10)" in report
    assert "Space: `learning_rate` log-uniform [0.0001, 0.01]" in report
    assert "| 0 | complete (default) | embedding_size=64, learning_rate=0.001 | 2 |" in report
    with pytest.raises(FileNotFoundError, match="recbole_sdmtmp.tune"):
        tuning.chosen_trial(results, "SASRec", "tiny", "paper")


# -- the committed studies ----------------------------------------------------------------------

def committed_choices(report: Path) -> dict:
    """{model: (chosen trial, best valid NDCG@10, chosen configuration)} of a committed report."""
    rows = re.findall(r"^\| (\w+) \| \d+ \| \d+ \| \d+ \| \d+ \| [^|]+ \| ([\d.]+) \| (\d+) \| ([^|]+) \|",
                      report.read_text(), re.MULTILINE)
    return {model: (int(trial), valid, configuration.strip()) for model, valid, trial, configuration in rows}


@pytest.mark.parametrize("dataset", ["Gift_Cards", "Magazine_Subscriptions", "Instrument"])
def test_the_committed_studies_choose_what_their_reports_say(dataset, monkeypatch):
    """The store the committed reports were written from (migrated to the journal file) still
    chooses, for every model, the trial and configuration its report names, on the pinned fit of
    the paper training split."""
    import json

    from recbole_sdmtmp.experiments import fits

    results = Path(__file__).resolve().parents[2] / "results"
    pinned = json.loads((results / "topic_fits" / dataset / "paper" / "pin.json").read_text())["topic_fit"]
    monkeypatch.setattr(fits, "topic_fit", lambda model, dataset, data_root, *_: pinned if model == "SDMTMP" else None)
    expected = committed_choices(results / f"tuning_{dataset}_paper.md")
    assert set(expected) == set(tuning.MODELS)
    for model, (trial, valid, configuration) in expected.items():
        chosen = tuning.chosen_trial(results, model, dataset, "paper")
        assert (chosen["trial"], f"{chosen['valid']:.4f}", tuning.configuration(chosen["overrides"])) == (
            trial, valid, configuration), model
    study = tuning.load_study(tuning.storage_url(results), "SDMTMP", dataset, "paper")
    assert study.user_attrs["topics_fit"] == pinned and study.user_attrs["optuna_version"].startswith("5.")
