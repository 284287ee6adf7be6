"""The tuning studies: one Optuna TPE study per (protocol, dataset, model) in a study store,
filled by any number of processes through ``Study.optimize``, trials that read validation only,
and their reports (``python -m recbole_sdmtmp.tune`` documents the method, docs/TUNING.md the
store).

Only Optuna's public API is used. What Optuna leaves to its user is done here with a lock that
every process of one store shares (:class:`StoreLock`): creating a study and queueing its
untuned default, re-queueing the trial of a killed worker, and each ``ask`` of a new trial, so
that N processes starting at once run exactly the budget and the default once.
"""

import fcntl
import json
import logging
import socket
import sys
import time
import warnings
import zlib
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import optuna
import psutil
import sqlalchemy
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.config import PROPERTIES, build_config
from recbole_sdmtmp.experiments import cells
from recbole_sdmtmp.experiments.catalogue import BASELINES, protocol_title
from recbole_sdmtmp.experiments.fits import check_study_fit, topic_fit

TUNING = PROPERTIES / "tuning"
MODELS = ("SDMTMP", *BASELINES)
SELECTION_METRIC = "ndcg@10"
STORE = "studies.journal"
# A trial of a worker on another machine (an RDB store) that stops beating for GRACE_S seconds
# is failed and queued again; a killed worker on this machine is found at once (its process is gone).
HEARTBEAT_S, GRACE_S = 60, 180
POLL_S = 5.0
PRUNER = dict(n_startup_trials=5, n_warmup_steps=10)
RANGE_KEYS = {"low", "high", "log", "int", "step"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # the budget: a pruned trial has run
OPTUNA_MAJOR = optuna.__version__.split(".")[0]
LOCK_KEY = zlib.crc32(b"recbole_sdmtmp.tune")  # PostgreSQL's advisory lock of the store

logger = logging.getLogger(__name__)
# The heartbeat's retry callback is marked experimental; it is what resumes a killed trial.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class Knob:
    """One tuned key: its Optuna distribution; list-valued choices (NGCF's hidden_size_list)
    travel as JSON strings, since Optuna's choices must be scalars."""

    distribution: object
    encoded: bool = False

    def suggest(self, trial, key: str):
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            value = trial.suggest_categorical(key, d.choices)
            return json.loads(value) if self.encoded else value
        if isinstance(d, IntDistribution):
            return trial.suggest_int(key, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(key, d.low, d.high, step=d.step, log=d.log)

    def external(self, value):
        """A configuration value as Optuna stores it (for ``enqueue_trial``)."""
        return json.dumps(value) if self.encoded else value

    def contains(self, value) -> bool:
        d, value = self.distribution, self.external(value)
        if isinstance(d, CategoricalDistribution):
            return any(value == choice and isinstance(value, bool) == isinstance(choice, bool) for choice in d.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not d.low <= value <= d.high:
            return False
        if isinstance(d, IntDistribution):
            return float(value).is_integer() and (int(value) - d.low) % d.step == 0
        steps = None if d.step is None else (value - d.low) / d.step
        return steps is None or abs(steps - round(steps)) < 1.0e-8

    def describe(self) -> str:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return "{" + ", ".join(str(json.loads(c) if self.encoded else c) for c in d.choices) + "}"
        integer = isinstance(d, IntDistribution)
        kind = ("log-" if d.log else "") + ("integer" if integer else "uniform")
        step = f" step {d.step:g}" if d.step is not None and not (integer and d.step == 1) else ""
        return f"{kind} [{d.low:g}, {d.high:g}]{step}"


def parse_knob(where: str, key: str, spec) -> Knob:
    """A list (categorical) or a {low, high[, log][, int][, step]} range, with clear errors."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"{where}: {key} must be a non-empty list of values or a {{low, high}} range")
        encoded = any(not (value is None or isinstance(value, (bool, int, float, str))) for value in spec)
        choices = [json.dumps(value) for value in spec] if encoded else list(spec)
        if len(set(map(str, choices))) != len(choices):
            raise ValueError(f"{where}: {key} lists a value twice: {spec}")
        return Knob(CategoricalDistribution(choices), encoded)
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: {key} must be a list of values or a range such as "
                         f"{{low: 1.0e-4, high: 1.0e-2, log: true}}, not {spec!r}")
    unknown = set(spec) - RANGE_KEYS
    if unknown or not {"low", "high"} <= set(spec):
        raise ValueError(f"{where}: {key} is a range with keys low, high and optionally log, int, "
                         f"step; got {sorted(spec)}")
    low, high, log, integer, step = (spec["low"], spec["high"], spec.get("log", False),
                                     spec.get("int", False), spec.get("step"))
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise ValueError(f"{where}: {key}'s low, high and step must be numbers (write 1.0e-4, not 1e-4: "
                         f"YAML reads 1e-4 as a string); got {spec}")
    if not isinstance(log, bool) or not isinstance(integer, bool):
        raise ValueError(f"{where}: {key}'s log and int must be true or false; got {spec}")
    if not low < high:
        raise ValueError(f"{where}: {key} needs low < high; got low {low}, high {high}")
    if log and low <= 0:
        raise ValueError(f"{where}: {key} is log-scaled, so low must be > 0; got {low}")
    if log and step is not None:
        raise ValueError(f"{where}: {key} cannot be both log-scaled and stepped")
    if integer:
        if not all(float(v).is_integer() for v in numbers):
            raise ValueError(f"{where}: {key} is an integer range; low, high and step must be integers")
        return Knob(IntDistribution(int(low), int(high), log=log, step=int(step or 1)))
    return Knob(FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step)))


def search_space(model: str) -> dict[str, Knob]:
    """The declared space of ``model``: {key: Knob} (empty: nothing to tune)."""
    path = TUNING / f"{model}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no search space for {model}: write {path} (a list of values or a "
                                "{low, high} range per key)")
    space = yaml.safe_load(path.read_text()) or {}
    if not isinstance(space, dict):
        raise ValueError(f"{path}: expected a mapping of keys to lists or ranges")
    return {key: parse_knob(str(path), key, spec) for key, spec in space.items()}


def budget(space: dict, n_trials: int) -> int:
    """Trials of a study: one for a model with nothing to tune (they would all be the same)."""
    return n_trials if space else 1


def default_params(model: str, dataset: str, protocol: str, space: dict, data_path: str = "dataset/") -> dict:
    """The untuned value of every knob, as Optuna stores it: trial 0."""
    config = build_config(model, dataset, config_dict={"protocol": protocol, "data_path": data_path})
    params = {}
    for key, knob in space.items():
        outer, _, inner = key.partition(".")
        value = config[outer] if not inner else (config[outer] or {}).get(inner)
        if not knob.contains(value):
            raise ValueError(f"{TUNING / (model + '.yaml')}: {key} {knob.describe()} does not contain "
                             f"{model}'s default {value!r} on {dataset}; widen it, so that trial 0 (the "
                             "untuned default) is a point of the space")
        params[key] = knob.external(value)
    return params


def study_seed(base_seed: int, model: str, dataset: str, protocol: str) -> int:
    """A fixed, model-specific stream of draws (stable across Python runs, unlike hash())."""
    return base_seed + zlib.crc32(f"{model}/{dataset}/{protocol}".encode())


def study_name(model: str, dataset: str, protocol: str) -> str:
    return f"{protocol}/{dataset}/{model}"


# -- the store ------------------------------------------------------------------------------------

def storage_url(results: Path, storage: str | None = None) -> str:
    """``--storage`` as given, or the default journal file ``<results>/tuning/studies.journal``."""
    return storage or str(Path(results) / "tuning" / STORE)


def is_rdb(url: str) -> bool:
    return "://" in url


def local_file(url: str) -> Path | None:
    """The file of a one-machine store (a journal file or SQLite); None for a database server."""
    if not is_rdb(url):
        return Path(url)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def store_exists(url: str) -> bool:
    """Readers must not create an empty store where no study has run."""
    path = local_file(url)
    return path is None or path.is_file()


def driver_url(url: str) -> str:
    """``postgresql://`` with the PostgreSQL driver that is installed: SQLAlchemy 2.1 reads a URL
    without a driver as psycopg (version 3), which may be missing where psycopg2 is there."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    for driver in ("psycopg", "psycopg2"):
        if find_spec(driver) is not None:
            return f"postgresql+{driver}://{rest}"
    raise SystemExit(f"the store {shown(url)} needs a PostgreSQL driver and none is installed: "
                     "pip install 'psycopg[binary]' (or psycopg2-binary and write postgresql+psycopg2://...)")


def shown(url: str) -> str:
    """A URL as it may be printed: without its password."""
    if not is_rdb(url):
        return url
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def open_storage(url: str, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S):
    """The study store: a journal file (the default: several processes on one machine), SQLite,
    or any SQLAlchemy URL of a database server (several machines). On a server a running trial
    records a heartbeat, and a trial whose worker stopped beating is failed and queued again by
    Optuna (``RetryHeartbeatStaleTrialCallback``); on one machine a dead worker is seen at once
    (:func:`requeue_dead`)."""
    if not is_rdb(url):
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # processes wait for each other's writes rather than fail with "database is locked"
        return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 300}})
    return RDBStorage(driver_url(url), heartbeat_interval=heartbeat, grace_period=grace,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())


class StoreLock:
    """One process of a store at a time creates a study, re-queues a killed worker's trial or asks
    for a new trial: a file lock beside a journal or SQLite file, an advisory lock on PostgreSQL,
    a named lock on MySQL. Each is released by the system when its process dies."""

    def __init__(self, url: str):
        self.url, self.held, self._file, self._connection = url, False, None, None
        path = local_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._path = path.with_name(path.name + ".queue-lock")
            return
        engine = sqlalchemy.create_engine(driver_url(url), isolation_level="AUTOCOMMIT",
                                          poolclass=sqlalchemy.pool.NullPool)
        self._statements = {
            "postgresql": (f"SELECT pg_advisory_lock({LOCK_KEY})", f"SELECT pg_advisory_unlock({LOCK_KEY})"),
            "mysql": ("SELECT GET_LOCK('recbole_sdmtmp.tune', -1)", "SELECT RELEASE_LOCK('recbole_sdmtmp.tune')"),
        }.get(engine.dialect.name)
        if self._statements is None:
            raise SystemExit(f"the store {shown(url)} is a {engine.dialect.name} database; tuning over several "
                             "machines needs PostgreSQL or MySQL (a lock that all processes share), and on one "
                             "machine a journal file (the default) or sqlite:///<file>")
        self._engine = engine

    def acquire(self) -> None:
        if self.held:
            return
        if local_file(self.url) is not None:
            self._file = open(self._path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        else:
            if self._connection is None:
                self._connection = self._engine.connect()
            self._connection.exec_driver_sql(self._statements[0])
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        else:
            self._connection.exec_driver_sql(self._statements[1])
        self.held = False

    def close(self) -> None:
        self.release()
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# -- the sampler and the pruner -------------------------------------------------------------------

class SeededTPE(optuna.samplers.BaseSampler):
    """Optuna's TPE (default settings, constant liar for parallel workers) seeded per trial with
    the study seed plus the number of trials before it that did not fail. The same history then
    gives the same suggestion in any process: a resumed study, whose killed trial was failed and
    run again under a new number, draws what an uninterrupted one draws."""

    def __init__(self, seed: int):
        self.seed = seed
        self._tpe = self._make(seed)

    @staticmethod
    def _make(seed: int):
        return optuna.samplers.TPESampler(seed=seed % 2**32, constant_liar=True)

    def before_trial(self, study, trial) -> None:
        earlier = sum(1 for t in study.get_trials(deepcopy=False)
                      if t.number < trial.number and t.state != TrialState.FAIL)
        self._tpe = self._make(self.seed + earlier)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()


def make_pruner():
    return optuna.pruners.MedianPruner(**PRUNER)


def open_study(url: str, model: str, dataset: str, protocol: str, seed: int, **storage) -> optuna.Study:
    return optuna.create_study(study_name=study_name(model, dataset, protocol),
                               storage=open_storage(url, **storage), direction="maximize",
                               sampler=SeededTPE(seed), pruner=make_pruner(), load_if_exists=True)


# -- a study's trials -----------------------------------------------------------------------------

def counted(trials) -> list:
    """The study's trials less those left running by a stopped process (re-run under a new number)."""
    superseded = {number for t in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    return sorted((t for t in trials if t.number not in superseded), key=lambda t: t.number)


def on_other_fit(study: optuna.Study, topics_fit: str | None) -> bool:
    """Whether a topic model's study has trials tuned on another topic fit than ``topics_fit``."""
    return (topics_fit is not None and bool(study.get_trials(deepcopy=False))
            and study.user_attrs.get("topics_fit") != topics_fit)


def check_resumable(study: optuna.Study, seed: int, described: dict, topics_fit: str | None) -> None:
    """A study resumed with another seed, an edited YAML, on other topics or under another major
    version of Optuna (whose TPE defaults may differ) would mix two searches: refused."""
    attrs, name = study.user_attrs, study.study_name
    if not study.get_trials(deepcopy=False) and "seed" not in attrs:
        return
    recorded = attrs.get("optuna_version")
    if recorded is None:
        raise SystemExit(f"study {name} does not record the Optuna version it was tuned under (it was made "
                         "before the store recorded it), so whether Optuna "
                         f"{optuna.__version__} would go on along the same path cannot be checked. Restart it "
                         "(--restart) or use another --storage.")
    if recorded.split(".")[0] != OPTUNA_MAJOR:
        raise SystemExit(f"study {name} was tuned under Optuna {recorded}; this is Optuna {optuna.__version__}, "
                         "another major version, whose sampler defaults differ, so the resumed search would not "
                         f"follow the path it began on. Install optuna {recorded.split('.')[0]}.x to resume it, "
                         "or restart it (--restart).")
    if (attrs.get("seed"), attrs.get("space")) != (seed, described):
        raise SystemExit(f"study {name} was begun with seed {attrs.get('seed')} and space {attrs.get('space')}; "
                         f"it is now asked for seed {seed} and {described}. Restart it (--restart) or use another "
                         "--storage rather than mix the two.")
    if on_other_fit(study, topics_fit):
        raise SystemExit(f"study {name} was tuned on topic fit "
                         f"{attrs.get('topics_fit', '(not recorded: before fits were recorded)')}; the dataset "
                         f"now holds fit {topics_fit}. Restart it on these topics (--restart) rather than mix "
                         "the two.")


def prepare_study(url: str, model: str, dataset: str, protocol: str, seed: int, space: dict, defaults: dict,
                  topics_fit: str | None = None) -> None:
    """Create the study if it is new (recording its seed, space, topic fit and Optuna version) and
    queue trial 0, the untuned default, once: every process may call it at the same time."""
    described = {key: knob.describe() for key, knob in space.items()}
    lock = StoreLock(url)
    lock.acquire()
    try:
        study = open_study(url, model, dataset, protocol, seed)
        check_resumable(study, seed, described, topics_fit)
        if "seed" not in study.user_attrs:
            for key, value in (("seed", seed), ("space", described), ("optuna_version", optuna.__version__),
                               ("topics_fit", topics_fit)):
                if value is not None:
                    study.set_user_attr(key, value)
        study.enqueue_trial(defaults, user_attrs={"defaults": True}, skip_if_exists=True)
    finally:
        lock.close()


def this_process() -> dict:
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid, "started": round(process.create_time(), 2)}


def is_gone(worker: dict | None) -> bool:
    """Whether the process that ran a trial has ended (only known for a process of this machine)."""
    if worker is None:
        return True  # asked, then killed before it said who it is: only the lock holder can be there
    if worker.get("host") != socket.gethostname():
        return False
    try:
        process = psutil.Process(worker["pid"])
        return (round(process.create_time(), 2) != worker["started"]
                or process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def requeue_dead(study: optuna.Study) -> list[int]:
    """Fail each running trial whose process on this machine is gone and queue its parameters
    again (Optuna's retry callback: the re-run records which trial it replaces). The caller holds
    the store's lock. The numbers of the trials failed."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_gone(trial.user_attrs.get("worker")):
            study.tell(trial.number, state=TrialState.FAIL)
            requeue(study, trial.number)
            failed.append(trial.number)
    if failed:
        logger.warning("%s: trial(s) %s of a stopped process queued again", study.study_name, failed)
    return failed


def requeue(study: optuna.Study, number: int) -> None:
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    RetryHeartbeatStaleTrialCallback()(study, frozen)


def budget_left(study: optuna.Study, n_trials: int) -> tuple[bool, bool]:
    """(done, may_ask): the budget counts complete and pruned trials; a new trial may be asked
    for while a trial waits or fewer than ``n_trials`` are complete, pruned or running. A study
    whose trials raised ``n_trials`` errors is done too (a model that cannot train would
    otherwise draw for ever; the report lists the errors)."""
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    errors = sum(t.state == TrialState.FAIL and "error" in t.user_attrs for t in trials)
    done = sum(state in COUNTED for state in states) >= n_trials or errors >= n_trials
    running = sum(state in (*COUNTED, TrialState.RUNNING) for state in states)
    return done, not done and (TrialState.WAITING in states or running < n_trials)


class Gate:
    """After each trial: take the store's lock, re-queue a dead worker's trial, and stop this
    process unless a trial is left to ask for; the lock is held into the next ``ask`` and let go
    when that trial starts (so no two processes ask at once and the total is the budget)."""

    def __init__(self, lock: StoreLock, n_trials: int, heartbeat: bool):
        self.lock, self.n_trials, self.heartbeat = lock, n_trials, heartbeat

    def check(self, study: optuna.Study) -> bool:
        """Whether the study is done; holding the lock on return means a trial is left to ask for."""
        self.lock.acquire()
        requeue_dead(study)
        if self.heartbeat:
            optuna.storages.fail_stale_trials(study)
        done, may_ask = budget_left(study, self.n_trials)
        if not may_ask:
            self.lock.release()
        return done

    def __call__(self, study: optuna.Study, trial) -> None:
        self.check(study)
        if not self.lock.held:
            study.stop()


def work(url: str, model: str, dataset: str, protocol: str, seed: int, objective, n_trials: int,
         poll: float = POLL_S, **storage) -> int:
    """Run trials of the study until it holds ``n_trials`` complete or pruned ones; the number run
    here. While the rest of the budget runs in other processes this one waits for them, so that it
    returns a complete study (a trial of a killed process is run again)."""
    study = open_study(url, model, dataset, protocol, seed, **storage)
    heartbeat = local_file(url) is None  # a database server: Optuna's heartbeat finds a dead worker
    lock = StoreLock(url)
    gate = Gate(lock, n_trials, heartbeat)
    ran = []

    def run(trial):
        trial.set_user_attr("worker", this_process())
        lock.release()  # asked: the next process may ask
        ran.append(trial.number)
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as error:  # the study goes on; the report shows the failure
            logger.exception("trial %d of %s failed", trial.number, study.study_name)
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            raise

    try:
        while not gate.check(study):
            if lock.held:  # a trial to ask for: optimize asks while the lock is held
                study.optimize(run, callbacks=[MaxTrialsCallback(n_trials, states=COUNTED), gate],
                               catch=(Exception,))
            else:  # the rest of the budget is running elsewhere: wait for it to end (or die)
                time.sleep(poll)
    except KeyboardInterrupt:  # stopped, not failed: its trial runs again
        lock.acquire()
        last = next((t for t in study.get_trials(deepcopy=False) if ran and t.number == ran[-1]), None)
        if last is not None and last.state == TrialState.FAIL:
            requeue(study, last.number)
        raise
    finally:
        lock.close()
    return len(ran)


def _worker(url, model, dataset, protocol, seed, objective, n_trials, threads, storage):
    sys.argv = sys.argv[:1]  # RecBole's Config must not read the parent's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if threads:
        import torch

        torch.set_num_threads(threads)
    work(url, model, dataset, protocol, seed, objective, n_trials, **storage)


def run_workers(url: str, model: str, dataset: str, protocol: str, seed: int, objective, n_trials: int,
                workers: int = 1, threads: int | None = None, **storage) -> None:
    """``workers`` processes fill one study (``objective`` must pickle); then this process runs
    whatever a worker that died left (its running trial, queued again), so that the study it
    returns is complete whether or not every worker ended well."""
    if workers > 1:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no forked torch or database state
        processes = [context.Process(target=_worker, args=(url, model, dataset, protocol, seed, objective,
                                                           n_trials, threads, storage)) for _ in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [process.exitcode for process in processes if process.exitcode]
        if failed:
            logger.warning("%d of %d workers of %s exited with %s; this process finishes the study",
                           len(failed), workers, study_name(model, dataset, protocol), failed)
    if threads:
        import torch

        torch.set_num_threads(threads)
    work(url, model, dataset, protocol, seed, objective, n_trials, **storage)


def train_trial(trial, model: str, dataset: str, protocol: str, seed: int, results: str, data_path: str,
                settings: dict | None = None) -> float:
    """One trial: train with the suggested knobs, report validation NDCG@10 per epoch (the
    pruner may stop it), never read the test split; the run's record is kept with the trial."""
    overrides = {key: knob.suggest(trial, key) for key, knob in search_space(model).items()}
    trial.set_user_attr("overrides", overrides)

    def on_valid(epoch: int, score: float) -> None:
        trial.report(float(score), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation NDCG@10 {score:.4f} at epoch {epoch} is below the median")

    def check(config) -> None:
        if str(config["valid_metric"]).lower() != SELECTION_METRIC:
            raise ValueError(f"tuning selects on {SELECTION_METRIC}; valid_metric is {config['valid_metric']}")

    result = cells.train(model, dataset, seed, protocol, data_path, Path(results), overrides, evaluate_test=False,
                         saved=False, on_valid=on_valid, settings=settings, check=check).to_dict()
    record = {key: result[key] for key in ("best_valid_result", "epochs", "train_seconds_per_epoch",
                                            "eval_seconds", "device", "machine", "valid_cases", "provenance")}
    if (fit := topic_fit(model, dataset, data_path, protocol)) is not None:
        record["topics_fit"] = fit
    trial.set_user_attr("record", record)
    return float(record["best_valid_result"][SELECTION_METRIC])


def load_study(url: str, model: str, dataset: str, protocol: str):
    """The study in the store for reading, or None if it has not begun."""
    if not store_exists(url):
        return None
    try:
        return optuna.load_study(study_name=study_name(model, dataset, protocol), storage=open_storage(url))
    except KeyError:
        return None


def study_trials(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None) -> list:
    """The counted trials of a study in the store (none if it has not begun)."""
    study = load_study(storage_url(results, storage), model, dataset, protocol)
    return [] if study is None else counted(study.get_trials(deepcopy=False))
def trial_record(trial) -> dict:
    """A finished trial as the report and ``compare --tuned`` read it."""
    record = trial.user_attrs.get("record", {})
    intermediate = trial.intermediate_values
    valid = (trial.value if trial.state == TrialState.COMPLETE
             else max(intermediate.values()) if intermediate else None)
    seconds = ((trial.datetime_complete - trial.datetime_start).total_seconds()
               if trial.datetime_complete and trial.datetime_start else 0.0)
    return {"trial": trial.number, "state": trial.state.name, "valid": valid,
            "overrides": trial.user_attrs.get("overrides", {}), "defaults": trial.user_attrs.get("defaults", False),
            "best_valid_result": record.get("best_valid_result"),
            "epochs": record.get("epochs", trial.last_step or 0), "seconds": seconds,
            "error": trial.user_attrs.get("error"),
            "retry_of": RetryHeartbeatStaleTrialCallback.retried_trial_number(trial),
            "topics_fit": record.get("topics_fit")}


def finished_trials(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None) -> list[dict]:
    """Every finished (complete, pruned or failed) trial of a study, in trial order."""
    return [trial_record(t) for t in study_trials(results, model, dataset, protocol, storage) if t.state in FINISHED]


def chosen_trial(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None,
                 data_root: str = "dataset/") -> dict:
    """The complete trial with the best validation NDCG@10 (the earlier trial on a tie).
    ``OtherTopicFit`` if the model reads topics and was tuned on another fit than ``data_root``'s."""
    records = [r for r in finished_trials(results, model, dataset, protocol, storage) if r["state"] == "COMPLETE"]
    if not records:
        raise FileNotFoundError(
            f"{model} has no finished tuning trial for {dataset} under protocol {protocol!r} in "
            f"{storage_url(results, storage)}; run python -m recbole_sdmtmp.tune --protocol {protocol} "
            f"--datasets {dataset} --models {model}"
        )
    chosen = max(records, key=lambda record: (record["valid"], -record["trial"]))
    check_study_fit(chosen["topics_fit"], model, dataset, protocol, data_root)
    return chosen


def delete_study(url: str, model: str, dataset: str, protocol: str) -> int:
    """Remove a study from the store (``tune --restart``); the number of trials it held."""
    name = study_name(model, dataset, protocol)
    study = load_study(url, model, dataset, protocol)
    if study is None:
        return 0
    n_trials = len(study.get_trials(deepcopy=False))
    optuna.delete_study(study_name=name, storage=open_storage(url))
    logger.info("deleted study %s (%d trials) to restart it", name, n_trials)
    return n_trials


def configuration(overrides: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(overrides.items())) or "defaults"


def write_report(results: Path, dataset: str, protocol: str, models, n_trials: int, command: str,
                 storage: str | None = None) -> Path:
    url = storage_url(results, storage)
    pruner = ", ".join(f"{k}={v}" for k, v in PRUNER.items())
    lines = [f"# Tuning on {dataset}, protocol {protocol_title(protocol)}", "",
             f"Produced by `{command}`. {n_trials} trials per model (1 for a model with nothing to tune), "
             "read from the study store; trial 0 is the untuned default. Each trial trains with one "
             "seed and is scored by validation NDCG@10; the test split is never read here. The chosen "
             "configuration is the complete trial with the best validation NDCG@10.", "",
             "- Sampler: Optuna TPE, seeded per trial (the study seed + the number of earlier trials that "
             "did not fail), constant liar.",
             f"- Pruner: Optuna MedianPruner({pruner}) on validation NDCG@10 after each epoch; a pruned "
             "trial counts as run and is never chosen.",
             f"- Storage: `{shown(url)}`, one study per model named `{protocol}/{dataset}/<Model>`.",
             "- Spaces: `properties/tuning/<Model>.yaml`.", "",
             "| model | trials run | complete | pruned | failed | default valid NDCG@10 | best valid NDCG@10 "
             "| chosen trial | chosen configuration | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for model in models:
        study = load_study(url, model, dataset, protocol)
        trials = [] if study is None else counted(study.get_trials(deepcopy=False))
        records = [trial_record(t) for t in trials if t.state in FINISHED]
        if not records:
            continue
        states = [r["state"] for r in records]
        complete = [r for r in records if r["state"] == "COMPLETE"]
        best = max(complete, key=lambda r: (r["valid"], -r["trial"])) if complete else None
        default = next((r for r in complete if r["defaults"]), None)
        default_score = f"{default['valid']:.4f}" if default else "n/a"
        best_cells = (f"{best['valid']:.4f} | {best['trial']} | {configuration(best['overrides'])}"
                      if best else "n/a | n/a | n/a")
        minutes = sum(r["seconds"] for r in records) / 60
        lines.append(f"| {model} | {len(records)} | {states.count('COMPLETE')} | {states.count('PRUNED')} | "
                     f"{states.count('FAIL')} | {default_score} | {best_cells} | {minutes:.1f} |")
        space = study.user_attrs.get("space", {})  # as the study was run
        details += [f"### {model}", "", "Space: " + ("; ".join(f"`{k}` {described}" for k, described in space.items())
                                                     or "none"), ""]
        if len(trials) > len(records):
            details += [f"{len(trials) - len(records)} trial(s) waiting or running.", ""]
        details += ["| trial | state | configuration | epochs | valid NDCG@10 | valid HR@10 | minutes |",
                    "|---|---|---|---|---|---|---|"]
        for r in records:
            state = r["state"].lower() + (" (default)" if r["defaults"] else "") + (
                f" (re-run of {r['retry_of']}, stopped)" if r["retry_of"] is not None else "")
            valid = f"{r['valid']:.4f}" if r["valid"] is not None else "-"
            hit = f"{r['best_valid_result']['hit@10']:.4f}" if r["best_valid_result"] else "-"
            details.append(f"| {r['trial']} | {state} | {configuration(r['overrides'])} | {r['epochs']} | "
                           f"{valid} | {hit} | {r['seconds'] / 60:.1f} |")
        details.append("")
    lines += ["", "Minutes: wall time of the trials. A pruned trial's validation score is its best epoch "
              "before it was stopped.", "", "## Every trial", "", *details]
    path = Path(results) / f"tuning_{dataset}_{protocol}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))
    return path
