"""The tuning study: YAML ranges, trial 0 the defaults, a seeded TPE, a median pruner, exactly
``--trials`` trials however many processes fill the store, and resumption after a kill."""

import functools
import multiprocessing
import os
import time
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


def new_study(url, n_trials, defaults=None, seed=7, space=None, model="M"):
    study = tuning.open_study(url, model, "toy", "paper", seed)
    tuning.top_up(study, n_trials, defaults or {"x": 0.5}, seed, space if space is not None else SPACE)
    return study


SPACE = {"x": tuning.parse_knob("test", "x", {"low": 0.0, "high": 1.0}),
         "lr": tuning.parse_knob("test", "lr", {"low": 1.0e-4, "high": 1.0e-2, "log": True})}


def quadratic(trial):
    """A stand-in for training: suggests both knobs, best at x = 0.3."""
    values = {key: knob.suggest(trial, key) for key, knob in SPACE.items()}
    trial.set_user_attr("overrides", values)
    return 1.0 - (values["x"] - 0.3) ** 2


def waiting_for_a_partner(trial, folder: str):
    """Each worker process marks itself, then waits for the other (both must really run trials)
    and logs every trial it runs."""
    folder = Path(folder)
    (folder / f"pid{os.getpid()}").touch()
    deadline = time.time() + 120
    while len(list(folder.glob("pid*"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    with open(folder / "log", "a") as log:
        log.write(f"{trial.number} {os.getpid()}\n")
    time.sleep(0.05)
    return quadratic(trial)


def hang(trial, folder: str):
    (Path(folder) / "claimed").write_text(str(trial.number))
    time.sleep(600)


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
    new_study(url, 4, defaults={"x": 0.5, "lr": 1.0e-3})
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic) == 4
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in trials)
    assert trials[0].params == {"x": 0.5, "lr": 1.0e-3} and trials[0].user_attrs["defaults"]
    assert not any(t.user_attrs.get("defaults") for t in trials[1:])
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic) == 0  # finished: nothing runs again
    study = new_study(url, 6)  # a larger budget adds two trials, the default is not queued again
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic) == 2 and len(study.get_trials()) == 6
    assert len({t.params["x"] for t in study.get_trials()}) == 6  # the resumed process drew new points


def test_a_study_refuses_another_seed_or_space(tmp_path):
    url = url_of(tmp_path)
    new_study(url, 2)
    with pytest.raises(SystemExit, match="begun with seed 7"):
        new_study(url, 2, seed=8)
    with pytest.raises(SystemExit, match="begun with seed 7"):
        new_study(url, 2, space={"x": SPACE["x"]})


def test_tpe_is_seeded(tmp_path):
    def suggestions(folder, seed):
        url = tuning.storage_url(folder)
        new_study(url, 13, seed=seed)
        tuning.work(url, "M", "toy", "paper", seed, quadratic)
        return [t.params for t in tuning.study_trials(folder, "M", "toy", "paper")]

    first, again, other = (suggestions(tmp_path / name, seed) for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    assert first == again  # trials 11-12 are TPE's own, past its 10 random start-up trials
    assert first[0]["x"] == other[0]["x"] == 0.5 and first[1:] != other[1:]  # the default, then other draws
    assert len({t["x"] for t in first}) == 13  # no repeated configuration


def test_the_median_pruner_stops_a_clearly_bad_trial(tmp_path):
    def curves(trial):
        quality = 0.01 if trial.number == 6 else 0.5
        for epoch in range(1, 21):
            trial.report(quality + epoch / 1000, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return quality + 0.02

    url = url_of(tmp_path)
    new_study(url, 8)
    tuning.work(url, "M", "toy", "paper", 7, curves)
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6 + ["PRUNED", "COMPLETE"]
    assert trials[6].last_step == tuning.PRUNER["n_warmup_steps"]  # stopped at the end of the warm-up
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert len(records) == 8 and records[6]["valid"] == pytest.approx(0.02)  # counted, best epoch kept
    assert tuning.chosen_trial(tmp_path / "results", "M", "toy", "paper")["state"] == "COMPLETE"


def test_two_workers_fill_one_sqlite_study_with_exactly_n_trials(tmp_path):
    url = url_of(tmp_path)
    new_study(url, 8, defaults={"x": 0.5, "lr": 1.0e-3})
    objective = functools.partial(waiting_for_a_partner, folder=str(tmp_path))
    tuning.run_workers(url, "M", "toy", "paper", 7, objective, workers=2)
    runs = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(int(number) for number, _ in runs) == list(range(8))  # each trial run once
    assert len({pid for _, pid in runs}) == 2 and str(os.getpid()) not in {pid for _, pid in runs}
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert len(trials) == 8 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.params["x"] for t in trials}) == 8  # the two processes drew different points


def test_a_killed_worker_s_trial_is_run_again_and_counted_once(tmp_path):
    url = url_of(tmp_path)
    new_study(url, 3, defaults={"x": 0.5, "lr": 1.0e-3})
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=tuning._worker, args=(url, "M", "toy", "paper", 7,
                                                        functools.partial(hang, folder=str(tmp_path)), None, {}))
    worker.start()
    deadline = time.time() + 120
    while not (tmp_path / "claimed").exists() and time.time() < deadline:
        time.sleep(0.1)
    worker.kill()
    worker.join()
    assert (tmp_path / "claimed").read_text() == "0"
    study = optuna.load_study(study_name="paper/toy/M", storage=url)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "WAITING", "WAITING"]

    assert tuning.work(url, "M", "toy", "paper", 7, quadratic, poll=0.2, heartbeat=1, grace=2) == 3
    all_trials = study.get_trials()
    assert [t.state.name for t in all_trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.number for t in trials] == [1, 2, 3]  # the stale trial 0 is not counted ...
    assert trials[-1].params == {"x": 0.5, "lr": 1.0e-3} and trials[-1].user_attrs["defaults"]  # ... its re-run is
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert records[-1]["retry_of"] == 0 and len(records) == 3


def test_ctrl_c_queues_the_trial_again(tmp_path):
    def interrupted(trial):
        quadratic(trial)
        raise KeyboardInterrupt

    url = url_of(tmp_path)
    new_study(url, 2)
    with pytest.raises(KeyboardInterrupt):
        tuning.work(url, "M", "toy", "paper", 7, interrupted)
    assert tuning.work(url, "M", "toy", "paper", 7, quadratic) == 2
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert [(r["trial"], r["state"], r["retry_of"]) for r in records] == [(1, "COMPLETE", None), (2, "COMPLETE", 0)]


def test_a_failing_trial_counts_and_the_study_goes_on(tmp_path):
    def flaky(trial):
        if trial.number == 1:
            raise RuntimeError("out of memory")
        return quadratic(trial)

    url = url_of(tmp_path)
    new_study(url, 3)
    assert tuning.work(url, "M", "toy", "paper", 7, flaky) == 3
    records = tuning.finished_trials(tmp_path / "results", "M", "toy", "paper")
    assert [r["state"] for r in records] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert records[1]["error"] == "RuntimeError: out of memory"


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
    tuning.top_up(tuning.open_study(url, "BPR", "tiny", "paper", seed), 2, defaults, seed, space)
    objective = functools.partial(tuning.train_trial, model="BPR", dataset="tiny", protocol="paper", seed=1,
                                  results=str(results), data_path=str(tiny_root), settings={"epochs": 2})
    tuning.run_workers(url, "BPR", "tiny", "paper", seed, objective)
    assert len(runs) == 2 and all(r.test_result == {} and r.test_case_metrics == {} for r in runs)  # no test read
    records = tuning.finished_trials(results, "BPR", "tiny", "paper")
    assert [r["state"] for r in records] == ["COMPLETE", "COMPLETE"]
    assert records[0]["overrides"] == {"learning_rate": 0.001, "embedding_size": 64}
    assert [r["valid"] for r in records] == [r.best_valid_result["ndcg@10"] for r in runs]
    trials = tuning.study_trials(results, "BPR", "tiny", "paper")
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)  # reported per epoch
    best = tuning.chosen_trial(results, "BPR", "tiny", "paper")
    assert best["valid"] == max(r["valid"] for r in records)
    assert planning.tuned_overrides(results, "BPR", "tiny", "paper") == best["overrides"]
    cells, _ = planning.plan_cells("table", ["tiny"], "paper", [1], results, tuned=True, models=["BPR"])
    assert dict(cells[0].overrides) == best["overrides"] and cells[0].study == "cells_tuned"
    report = tuning.write_report(results, "tiny", "paper", ["BPR", "SASRec"], 2, "cmd").read_text()
    assert "| BPR | 2 | 2 | 0 | 0 |" in report and "| SASRec |" not in report
    assert f"`{url}`" in report and "MedianPruner(n_startup_trials=5, n_warmup_steps=10)" in report
    assert "| 0 | complete (default) | embedding_size=64, learning_rate=0.001 | 2 |" in report
    with pytest.raises(FileNotFoundError, match="recbole_sdmtmp.tune"):
        tuning.chosen_trial(results, "SASRec", "tiny", "paper")


def test_old_random_draw_cells_are_not_read(tmp_path):
    """The trial folders of the earlier tuning are not a study of the store."""
    results = tmp_path / "results"
    folder = results / "tuning" / "paper" / "toy" / "BPR_trial_0"
    folder.mkdir(parents=True)
    (folder / "seed2024.json").write_text('{"best_valid_result": {"ndcg@10": 0.9}, "overrides": {}}')
    assert tuning.finished_trials(results, "BPR", "toy", "paper") == []
    assert not (results / "tuning" / tuning.STORE).exists()  # reading created no store
    with pytest.raises(FileNotFoundError):
        tuning.chosen_trial(results, "BPR", "toy", "paper")


def test_two_processes_never_claim_the_same_waiting_trial(tmp_path):
    """Optuna reads a waiting trial's state, then writes RUNNING; on SQLite nothing locked the row
    in between, so a second store that claimed meanwhile got the same trial (both ran it). Here
    the first claim pauses between its read and its write while the second claims."""
    import threading

    url = url_of(tmp_path)
    new_study(url, 1)  # one waiting trial
    first = tuning.open_study(url, "M", "toy", "paper", 7)
    second = tuning.open_study(url, "M", "toy", "paper", 7)
    backend = first._storage._backend
    read_state = backend.check_trial_is_updatable

    def read_then_pause(trial_id, state):
        read_state(trial_id, state)
        time.sleep(1.0)

    backend.check_trial_is_updatable = read_then_pause
    claims = {}
    thread = threading.Thread(target=lambda: claims.update(first=first._pop_waiting_trial_id()))
    thread.start()
    time.sleep(0.3)  # the first claim has read WAITING and pauses
    claims["second"] = second._pop_waiting_trial_id()
    thread.join()
    assert sorted(claim is not None for claim in claims.values()) == [False, True]
    trials = tuning.study_trials(tmp_path / "results", "M", "toy", "paper")
    assert [t.state.name for t in trials] == ["RUNNING"]
