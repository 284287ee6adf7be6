"""The tuning studies: Optuna TPE studies per (protocol, dataset, model) in an SQLAlchemy store,
trials that read validation only, their resume and their reports (``python -m
recbole_sdmtmp.tune`` documents the method)."""

import json
import logging
import multiprocessing
import sys
import threading
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp import runner
from recbole_sdmtmp.config import PROPERTIES, build_config, ensure_prepared
from recbole_sdmtmp.experiments.catalogue import BASELINES, protocol_title
from recbole_sdmtmp.experiments.cells import expand_overrides
from recbole_sdmtmp.experiments.fits import check_study_fit, topic_fit

TUNING = PROPERTIES / "tuning"
MODELS = ("SDMTMP", *BASELINES)
SELECTION_METRIC = "ndcg@10"
STORE = "studies.db"
HEARTBEAT_S, GRACE_S = 60, 180
PRUNER = dict(n_startup_trials=5, n_warmup_steps=10)
RANGE_KEYS = {"low", "high", "log", "int", "step"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

logger = logging.getLogger(__name__)
# fail_stale_trials and the retry callback are marked experimental; they are what resumes a study.
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
        try:
            return self.distribution._contains(self.distribution.to_internal_repr(self.external(value)))
        except (ValueError, TypeError):
            return False

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


def storage_url(results: Path, storage: str | None = None) -> str:
    return storage or f"sqlite:///{Path(results) / 'tuning' / STORE}"


def store_exists(url: str) -> bool:
    """Readers must not create an empty SQLite file where no study has run."""
    return not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).is_file()


def open_storage(url: str, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S):
    """The study store. On SQLite every transaction begins with ``BEGIN IMMEDIATE``: Optuna's
    claim of a waiting trial reads its state and then writes RUNNING, trusting ``SELECT ... FOR
    UPDATE`` to lock the row in between, which SQLite ignores, so two workers could both claim one
    trial (seen: a worker failed on "Trial#4 has already finished"). Taking the write lock when
    the transaction starts makes the read and the write one step, as the row lock does on
    PostgreSQL or MySQL."""
    engine = {}
    sqlite = url.startswith("sqlite:///")
    if sqlite:
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # workers wait for each other's writes; no implicit BEGIN from pysqlite (ours is below)
        engine = {"connect_args": {"timeout": 300, "isolation_level": None}}
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
    if sqlite:
        sqlalchemy.event.listen(storage.engine, "begin",
                                lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


def make_sampler(seed: int):
    return optuna.samplers.TPESampler(seed=seed % 2**32, constant_liar=True)


def make_pruner():
    return optuna.pruners.MedianPruner(**PRUNER)


def open_study(url: str, model: str, dataset: str, protocol: str, seed: int, **storage) -> optuna.Study:
    return optuna.create_study(study_name=study_name(model, dataset, protocol),
                               storage=open_storage(url, **storage), direction="maximize",
                               sampler=make_sampler(seed), pruner=make_pruner(), load_if_exists=True)


def counted(trials) -> list:
    """The study's trials less those left running by a stopped process (re-run under a new number)."""
    superseded = {number for t in trials for number in t.system_attrs.get("retry_history", [])}
    return sorted((t for t in trials if t.number not in superseded), key=lambda t: t.number)


def on_other_fit(study: optuna.Study, topics_fit: str | None) -> bool:
    """Whether a topic model's study has trials tuned on another topic fit than ``topics_fit``."""
    return (topics_fit is not None and bool(study.get_trials(deepcopy=False))
            and study.user_attrs.get("topics_fit") != topics_fit)


def top_up(study: optuna.Study, n_trials: int, defaults: dict, seed: int, space: dict,
           topics_fit: str | None = None) -> int:
    """Queue waiting trials until the study holds ``n_trials`` (trial 0 = ``defaults``).

    The seed, the space and, for a model that reads topics, the topic fit (``experiments.fits``)
    are stored with the study: a study resumed with another seed, an edited YAML or on other
    topics would mix two searches, so it is refused.
    """
    described = {key: knob.describe() for key, knob in space.items()}
    attrs = study.user_attrs
    if "seed" in attrs and (attrs["seed"], attrs["space"]) != (seed, described):
        raise SystemExit(f"study {study.study_name} was begun with seed {attrs['seed']} and space "
                         f"{attrs['space']}; it is now asked for seed {seed} and {described}. Restart it "
                         "(--restart) or use another --storage rather than mix the two.")
    trials = study.get_trials(deepcopy=False)
    if on_other_fit(study, topics_fit):
        raise SystemExit(f"study {study.study_name} was tuned on topic fit "
                         f"{attrs.get('topics_fit', '(not recorded: before fits were recorded)')}; the dataset "
                         f"now holds fit {topics_fit}. Restart it on these topics (--restart) rather than mix "
                         "the two.")
    if not trials:
        study.set_user_attr("seed", seed)
        study.set_user_attr("space", described)
        if topics_fit is not None:
            study.set_user_attr("topics_fit", topics_fit)
        study.enqueue_trial(defaults, user_attrs={"defaults": True})
    for _ in range(n_trials - len(counted(study.get_trials(deepcopy=False)))):
        study.enqueue_trial({})
    return len(counted(study.get_trials(deepcopy=False)))


def claim(study: optuna.Study, seed: int):
    """A waiting trial, now running in this process, or None: ``Study.ask`` without its
    creation of a new trial when the queue is empty (that would overrun the budget)."""
    study._thread_local.cached_all_trials = None  # as ask(): read the store afresh
    trial_id = study._pop_waiting_trial_id()
    if trial_id is None:
        return None
    study._storage.record_heartbeat(trial_id)  # at once: a trial that never beats never goes stale
    study.sampler = make_sampler(seed + study._storage.get_trial_number_from_id(trial_id))
    return optuna.Trial(study, trial_id)


class Heartbeat:
    """Records the trial's heartbeat in the store while it runs (what marks a killed one stale)."""

    def __init__(self, storage, trial_id: int):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(storage, trial_id), daemon=True)
        self._thread.start()

    def _beat(self, storage, trial_id):
        while not self._stop.wait(storage.get_heartbeat_interval()):
            storage.record_heartbeat(trial_id)

    def stop(self):
        self._stop.set()
        self._thread.join()


def run_claimed(study: optuna.Study, trial, objective) -> TrialState:
    beat = Heartbeat(study._storage, trial._trial_id)
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        beat.stop()
        return study.tell(trial, state=TrialState.PRUNED).state
    except KeyboardInterrupt:  # stopped, not failed: run its parameters again
        beat.stop()
        frozen = study.tell(trial, state=TrialState.FAIL)
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, frozen)
        raise
    except Exception as error:  # noqa: BLE001  (the study goes on; the report shows the failure)
        beat.stop()
        logger.exception("trial %d of %s failed", trial.number, study.study_name)
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
        return study.tell(trial, state=TrialState.FAIL).state
    beat.stop()
    return study.tell(trial, value).state


def work(url: str, model: str, dataset: str, protocol: str, seed: int, objective, poll: float | None = None,
         **storage) -> int:
    """Run waiting trials of the study until none is left or running; the number run here."""
    study = open_study(url, model, dataset, protocol, seed, **storage)
    poll = poll if poll is not None else min(storage.get("heartbeat", HEARTBEAT_S), 30)
    ran = 0
    while True:
        optuna.storages.fail_stale_trials(study)
        trial = claim(study, seed)
        if trial is not None:
            run_claimed(study, trial, objective)
            ran += 1
        elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            time.sleep(poll)  # another process's trial: it finishes, or goes stale and is queued again
        else:
            return ran


def _worker(url, model, dataset, protocol, seed, objective, threads, storage):
    sys.argv = sys.argv[:1]  # RecBole's Config must not read the parent's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if threads:
        import torch

        torch.set_num_threads(threads)
    work(url, model, dataset, protocol, seed, objective, **storage)


def run_workers(url: str, model: str, dataset: str, protocol: str, seed: int, objective, workers: int = 1,
                threads: int | None = None, **storage) -> None:
    """``workers`` processes fill one study (one: this process). ``objective`` must pickle."""
    if workers == 1:
        if threads:
            import torch

            torch.set_num_threads(threads)
        work(url, model, dataset, protocol, seed, objective, **storage)
        return
    context = multiprocessing.get_context("spawn")  # no forked torch or SQLite state
    processes = [context.Process(target=_worker, args=(url, model, dataset, protocol, seed, objective,
                                                       threads, storage)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [process.exitcode for process in processes if process.exitcode]
    if failed:
        raise SystemExit(f"{len(failed)} of {workers} workers of {study_name(model, dataset, protocol)} "
                         f"exited with {failed}; run the same command again to resume")


def train_trial(trial, model: str, dataset: str, protocol: str, seed: int, results: str, data_path: str,
                settings: dict | None = None) -> float:
    """One trial: train with the suggested knobs, report validation NDCG@10 per epoch (the
    pruner may stop it), never read the test split; the run's record is kept with the trial."""
    overrides = {key: knob.suggest(trial, key) for key, knob in search_space(model).items()}
    trial.set_user_attr("overrides", overrides)
    config_dict = {"seed": seed, "protocol": protocol, "data_path": data_path, "show_progress": False,
                   "checkpoint_dir": str(Path(results) / "checkpoints"), **(settings or {})}
    base = build_config(model, dataset, config_dict=config_dict)
    if str(base["valid_metric"]).lower() != SELECTION_METRIC:
        raise ValueError(f"tuning selects on {SELECTION_METRIC}; valid_metric is {base['valid_metric']}")
    ensure_prepared(base)
    config_dict.update(expand_overrides(overrides, base))

    def on_valid(epoch: int, score: float) -> None:
        trial.report(float(score), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation NDCG@10 {score:.4f} at epoch {epoch} is below the median")

    result = runner.run(build_config(model, dataset, config_dict=config_dict), evaluate_test=False, saved=False,
                        on_valid=on_valid).to_dict()
    record = {key: result[key] for key in ("best_valid_result", "epochs", "train_seconds_per_epoch",
                                            "eval_seconds", "device", "machine", "valid_cases")}
    if (fit := topic_fit(model, dataset, data_path)) is not None:
        record["topics_fit"] = fit
    trial.set_user_attr("record", record)
    return float(record["best_valid_result"][SELECTION_METRIC])


def study_trials(results: Path, model: str, dataset: str, protocol: str, storage: str | None = None) -> list:
    """The counted trials of a study in the store (none if it has not begun)."""
    url = storage_url(results, storage)
    if not store_exists(url):
        return []
    try:
        study = optuna.load_study(study_name=study_name(model, dataset, protocol), storage=open_storage(url))
    except KeyError:
        return []
    return counted(study.get_trials(deepcopy=False))


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
            "error": trial.user_attrs.get("error"), "retry_of": trial.system_attrs.get("failed_trial"),
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
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        return 0
    n_trials = len(study.get_trials(deepcopy=False))
    optuna.delete_study(study_name=name, storage=open_storage(url))
    logger.info("deleted study %s (%d trials) to restart it", name, n_trials)
    return n_trials


LEGACY_NOTE = ("the earlier seeded random draw (6 trials per model, `results/tuning/<protocol>/`, whose "
               "validation scores came from the code before December 2026), each configuration re-run "
               "with the current code")


def legacy_chosen_trial(results: Path, model: str, dataset: str, protocol: str) -> dict:
    """The configuration that the earlier random-draw tuner chose on validation NDCG@10 (the
    earlier trial on a tie), read from its trial files: for the tables of a protocol whose
    Optuna studies have not run yet, labelled as such (``LEGACY_NOTE``)."""
    folder = results / "tuning" / protocol / dataset
    records = []
    for path in sorted(folder.glob(f"{model}_trial_*/seed*.json")):
        record = json.loads(path.read_text())
        trial = int(path.parent.name.rsplit("_", 1)[1])
        records.append({"trial": trial, "valid": record["best_valid_score"], "overrides": record["overrides"]})
    if not records:
        raise FileNotFoundError(f"{model} has no trial of the earlier random-draw tuning for {dataset} under "
                                f"protocol {protocol!r} in {folder}")
    return max(records, key=lambda record: (record["valid"], -record["trial"]))


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
             "- Sampler: Optuna TPE, seeded (trial n with the study seed + n), constant liar.",
             f"- Pruner: Optuna MedianPruner({pruner}) on validation NDCG@10 after each epoch; a pruned "
             "trial counts as run and is never chosen.",
             f"- Storage: `{url}`, one study per model named `{protocol}/{dataset}/<Model>`.",
             "- Spaces: `properties/tuning/<Model>.yaml`.", "",
             "| model | trials run | complete | pruned | failed | default valid NDCG@10 | best valid NDCG@10 "
             "| chosen trial | chosen configuration | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for model in models:
        trials = study_trials(results, model, dataset, protocol, storage)
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
        space = search_space(model)
        details += [f"### {model}", "", "Space: " + ("; ".join(f"`{k}` {knob.describe()}" for k, knob in space.items())
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
    path = results / f"tuning_{dataset}_{protocol}.md"
    atomic_write_text(path, "\n".join(lines))
    return path
