"""Several tuning processes on one study store, and processes that are killed: exactly the budget,
the default once, a killed worker's trial run again, and a resumed study that chooses what an
uninterrupted one chooses. Each on the journal file (the default store), SQLite, and a real
PostgreSQL server that the test starts on 127.0.0.1 where the machine has one."""

import functools
import math
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from glob import glob
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from recbole_sdmtmp.experiments import tuning

SPACE = {"x": tuning.parse_knob("test", "x", {"low": 0.0, "high": 1.0}),
         "lr": tuning.parse_knob("test", "lr", {"low": 1.0e-4, "high": 1.0e-2, "log": True})}
DEFAULTS = {"x": 0.5, "lr": 1.0e-3}
SEED = 11
ROOT = Path(__file__).resolve().parents[2]


# -- a PostgreSQL server of the test's own --------------------------------------------------------

def server_binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "postgres").is_file():
        return Path(found).resolve().parent
    folders = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(Path(f).parent.name))
    return Path(folders[-1]) if folders and (Path(folders[-1]) / "postgres").is_file() else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server in a temporary folder on 127.0.0.1 (trust authentication), stopped
    and removed after the module; as the user ``postgres`` when the tests run as root."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server on this machine (initdb, pg_ctl, postgres): apt-get install postgresql")
    if tuning.find_spec("psycopg") is None and tuning.find_spec("psycopg2") is None:
        pytest.skip("no PostgreSQL driver installed: pip install 'psycopg[binary]' (setup.cfg lists it)")
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root: as the user the package made
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("the tests run as root and there is no user 'postgres' to run the server as")
    folder = Path(tempfile.mkdtemp(prefix="recbole_sdmtmp_pg_"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*command):
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=100"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def url(request, tmp_path):
    """A new, empty study store of each kind."""
    if request.param == "journal":
        return str(tmp_path / "studies.journal")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    import sqlalchemy

    server = request.getfixturevalue("postgres")
    name = f"tune_{os.getpid()}_{int(time.time() * 1e6)}"
    engine = sqlalchemy.create_engine(tuning.driver_url(f"{server}/postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return f"{server}/{name}"


# -- objectives: pure functions through the tuning code path --------------------------------------

def curve(trial) -> float:
    """Training's stand-in: best at x = 0.3, lr = 1e-3, one report per 'epoch' (the median pruner
    stops the worse half once 5 trials have finished)."""
    x, lr = (SPACE[key].suggest(trial, key) for key in ("x", "lr"))
    trial.set_user_attr("overrides", {"x": x, "lr": lr})
    quality = 1.0 - (x - 0.3) ** 2 - (math.log10(lr) + 3) ** 2 / 10
    for epoch in range(1, 13):
        trial.report(quality * epoch / 12, epoch)
        if epoch > 10 and trial.should_prune():
            raise optuna.TrialPruned()
    return quality


def slow_curve(trial, folder: str) -> float:
    """``curve`` that takes a while and logs which process ran which trial."""
    with open(Path(folder) / "log", "a") as log:
        log.write(f"{trial.number} {os.getpid()}\n")
    time.sleep(0.2)
    return curve(trial)


def hang_once(trial, folder: str, number: int) -> float:
    """``curve``, except that the first process to reach trial ``number`` says so and hangs there
    (the test kills it); its re-run is an ordinary trial."""
    marker = Path(folder) / "hung"
    if trial.number == number and not marker.exists():
        for key, knob in SPACE.items():  # as training does: the parameters are drawn, then it runs
            knob.suggest(trial, key)
        marker.write_text(str(os.getpid()))
        time.sleep(600)
    return curve(trial)


def fill(url, n_trials, objective, start=None, poll=0.2):
    """One tuning process: open the study (new or not) and work until the budget is run."""
    if start is not None:
        start.wait(120)
    tuning.prepare_study(url, "M", "toy", "paper", SEED, SPACE, DEFAULTS)
    tuning.work(url, "M", "toy", "paper", SEED, objective, n_trials, poll=poll)


def wait_for(path: Path, seconds=120) -> str:
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    return path.read_text()


def summary(url) -> list:
    """(number, state, params, value, re-run of) of every trial."""
    study = optuna.load_study(study_name="paper/toy/M", storage=tuning.open_storage(url))
    return [(t.number, t.state, t.params, t.value, t.system_attrs.get("failed_trial"))
            for t in study.get_trials(deepcopy=False)]


# -- the tests --------------------------------------------------------------------------------------

def test_processes_opening_a_new_study_at_once_run_exactly_the_budget(url, tmp_path):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)  # once all four have started, they open the new store and study together
    objective = functools.partial(slow_curve, folder=str(tmp_path))
    processes = [context.Process(target=fill, args=(url, 8, objective, start)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(240)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    trials = summary(url)
    assert len(trials) == 8 and all(state in tuning.COUNTED for _, state, *_ in trials)
    assert [params for _, _, params, *_ in trials].count(DEFAULTS) == 1  # the default, once
    assert len({params["x"] for _, _, params, *_ in trials}) == 8
    runs = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(int(number) for number, _ in runs) == list(range(8))  # each trial run once
    assert len({pid for _, pid in runs}) >= 2  # and the work was shared


def test_a_killed_worker_s_trial_runs_again_and_the_resumed_study_chooses_the_same(url, tmp_path):
    uninterrupted = str(tmp_path / "uninterrupted.journal")
    fill(uninterrupted, 10, curve)

    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=fill, args=(url, 10, functools.partial(hang_once, folder=str(tmp_path),
                                                                          number=6)))
    worker.start()
    assert int(wait_for(tmp_path / "hung")) == worker.pid  # trial 6 runs, after the pruner's start-up
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    started = time.time()
    fill(url, 10, curve)  # the same command again
    assert time.time() - started < 60  # no waiting out a heartbeat for a process of this machine

    resumed, expected = summary(url), summary(uninterrupted)
    assert resumed[6][1] == TrialState.FAIL and resumed[7][4] == 6  # trial 7 re-runs the killed trial 6
    assert resumed[7][2] == resumed[6][2] == expected[6][2] and resumed[7][1] == expected[6][1]
    kept = [(state, params, value) for n, state, params, value, _ in resumed if n != 6]
    assert kept == [(state, params, value) for _, state, params, value, _ in expected]  # the same path
    assert {state for state, *_ in kept} == {TrialState.COMPLETE, TrialState.PRUNED}
    results = tmp_path / "results"
    chosen = tuning.chosen_trial(results, "M", "toy", "paper", storage=url)
    assert chosen["overrides"] == tuning.chosen_trial(results, "M", "toy", "paper", storage=uninterrupted)["overrides"]


PARENT = """
import functools, sys
from pathlib import Path
from recbole_sdmtmp.experiments import tuning
from tests.tuning.test_tuning_concurrency import DEFAULTS, SEED, SPACE, hang_once
url, folder = sys.argv[1], sys.argv[2]
tuning.prepare_study(url, "M", "toy", "paper", SEED, SPACE, DEFAULTS)
objective = functools.partial(hang_once, folder=folder, number=2)
tuning.run_workers(url, "M", "toy", "paper", SEED, objective, 6, workers=2, poll=0.2)
print(tuning.write_report(Path(folder) / "results", "toy", "paper", ["M"], 6, "tune", url))
"""


def test_a_parent_whose_worker_was_killed_completes_the_study_and_writes_its_report(url, tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, url, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = int(wait_for(tmp_path / "hung"))
    assert victim != parent.pid
    os.kill(victim, signal.SIGKILL)
    out, err = parent.communicate(timeout=240)
    assert parent.returncode == 0, err[-3000:]
    assert "1 of 2 workers" in err  # the killed worker is named, and the study finished regardless
    trials = summary(url)
    assert [state for _, state, *_ in trials].count(TrialState.FAIL) == 1
    assert sum(state in tuning.COUNTED for _, state, *_ in trials) == 6 and len(trials) == 7
    report = (tmp_path / "results" / "tuning_toy_paper.md").read_text()
    assert "| M | 6 |" in report and "(re-run of 2, stopped)" in report
