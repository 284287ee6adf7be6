"""Fair tuning: the same guided trials for every model, selection on validation only.

    python -m recbole_sdmtmp.tune --protocol paper --datasets Instrument --trials 30
    python -m recbole_sdmtmp.tune --protocol paper --datasets Instrument --trials 30 --workers 2
    python -m recbole_sdmtmp.tune ... --storage postgresql://user@host/db   # several machines
    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned

Each model declares its search space in ``properties/tuning/<Model>.yaml``: a list of values is
categorical; ``{low: 1.0e-4, high: 1.0e-2, log: true}`` a log-uniform float range,
``{low: 0.0, high: 0.5}`` a uniform one, ``int: true`` an integer range (``step`` optional);
``a.b`` keys set key b of dict a. A knob that several models share (learning_rate, reg_weight,
embedding_size) has the same range in each (``tests/tuning/test_tune.py`` checks it).

A study is one Optuna study per (protocol, dataset, model), named ``<protocol>/<Dataset>/<Model>``,
in the study store: the journal file ``<results>/tuning/studies.journal`` (Optuna's
``JournalStorage``: any number of processes on one machine) unless ``--storage`` names another
journal file, ``sqlite:///<file>``, or the SQLAlchemy URL of a database server for processes on
several machines (``postgresql://user:password@host/db``; docs/TUNING.md). It maximises
validation NDCG@10 (the protocol's ``valid_metric``); trials never read the test split
(``evaluate_test=False``), and the test is read once, for the chosen configuration, by
``compare --tuned``.

- Sampler: TPE (Optuna's default settings, independent per knob, constant liar for parallel
  workers), seeded per trial with the study seed plus the number of earlier trials that did not
  fail: the same history gives the same suggestion in any process, so a study resumed after a
  kill chooses what an uninterrupted one chooses.
- Trial 0 is the untuned default: the model's own values of every knob (its YAML, SD-MTMP's
  per-dataset YAML, RecBole's defaults), queued once (``enqueue_trial(skip_if_exists=True)``). A
  range that does not contain the default is an error, so the default is a point of the space.
- Pruner: Optuna's MedianPruner on validation NDCG@10 reported after every epoch (5 finished
  trials before any pruning, none in a trial's first 10 epochs). Chosen over successive halving
  because trials end at different epochs under RecBole's early stopping (10 epochs without
  gain): the median pruner compares a trial only with the trials that reached the same epoch and
  needs no fixed epoch budget, where successive halving's rungs assume one. A pruned trial counts
  as run and is never chosen (its score is partial).
- Budget: every process runs ``Study.optimize`` until the study holds ``--trials`` complete or
  pruned trials (``MaxTrialsCallback``; 1 for a model with nothing to tune, Pop), and asks for a
  new trial only under a lock that all processes of the store share, and only while fewer than
  ``--trials`` are complete, pruned or running: N processes (``--workers``, or processes on
  several machines) run ``--trials`` trials, not more. A failed trial (an exception in training)
  is listed and not counted. A larger ``--trials`` later adds trials; a study never shrinks.
- Versions: a study records the Optuna version it was begun under; resuming it under another
  major version is refused (Optuna's sampler defaults change between major versions).
- Topics: a study of a model that reads topics (SD-MTMP) records the dataset's topic fit; on
  another fit (topics prepared again on another machine) it is skipped with a warning (the other
  models go on; ``compare --tuned`` refuses it), and ``--restart``
  deletes the named models' studies and tunes them again (``recbole_sdmtmp.experiments.fits``;
  it lists the studies and their trials and asks first, or takes ``--yes``).
- Resume: a trial whose process was killed is failed and its parameters queued again (Optuna's
  retry callback): at once when the process ran on this machine, after Optuna's heartbeat grace
  period (3 minutes) when it ran on another machine against a database server. The stopped trial
  is not counted; its re-run is. Ctrl-C queues the trial again at once. A process waits for the
  trials running elsewhere to end before it returns, so a finished ``tune`` leaves the study
  complete; with ``--workers`` the parent finishes what a killed worker left, then writes the
  report.

``results/tuning_<Dataset>_<protocol>.md`` lists, per model, the trials run, the chosen
configuration and every trial with its state, read from the store only.
"""

import argparse
import functools
import logging
import sys
from pathlib import Path

from recbole_sdmtmp.data.protocol import PROTOCOLS
from recbole_sdmtmp.experiments.tuning import (
    MODELS, budget, default_params, delete_study, load_study, on_other_fit, prepare_study, run_workers, search_space,
    storage_url, study_seed, train_trial, write_report,
)
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.experiments.fits import topic_fit
from recbole_sdmtmp.registry import resolve_model
from recbole_sdmtmp.user_errors import reported


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--models", nargs="+", help="default: every model (" + " ".join(MODELS) + ")")
    parser.add_argument("--trials", type=int, default=30, help="trials per model (the same for all)")
    parser.add_argument("--seed", type=int, default=2024, help="the tuning seed (training and sampler)")
    parser.add_argument("--results", default="results")
    parser.add_argument("--storage", help="the study store: a journal file (default <results>/tuning/studies.journal), "
                                          "sqlite:///<file>, or a database server's URL, e.g. "
                                          "postgresql://user:password@host/db")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine filling each study")
    parser.add_argument("--data-path", default="dataset/")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from the store")
    parser.add_argument("--restart", action="store_true",
                        help="delete the studies of --models on --datasets first and tune them afresh "
                             "(a topic model's study tuned on another topic fit is refused otherwise); "
                             "asks first, or --yes")
    parser.add_argument("--yes", action="store_true", help="with --restart: delete without asking")
    return parser.parse_args(argv)


def confirm_restart(url: str, models: list, datasets: list, protocol: str) -> None:
    """``--restart`` throws trials away: say which and ask, or refuse where nobody can answer."""
    doomed = [(study.study_name, len(study.get_trials(deepcopy=False)))
              for dataset in datasets for model in models
              if (study := load_study(url, model, dataset, protocol)) is not None]
    doomed = [(name, n) for name, n in doomed if n]
    if not doomed:
        return
    listed = ", ".join(f"{name} ({n} trials)" for name, n in doomed)
    if not sys.stdin.isatty():
        raise SystemExit(f"--restart would delete {listed}; add --yes to delete them without asking.")
    answer = input(f"--restart deletes {listed}. Delete? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise SystemExit("nothing deleted")


def main(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.trials < 1 or args.workers < 1:
        raise SystemExit("--trials and --workers must be at least 1")
    if args.restart and not args.models:
        raise SystemExit("--restart deletes studies: name them with --models (e.g. --models SDMTMP)")
    args.models = args.models or list(MODELS)
    return reported(lambda: tune(args))


def tune(args) -> int:
    """Every model and dataset is checked first (a model with a search space, a dataset that
    exists and is intact: ``ensure_prepared``), then the studies are filled."""
    for model in args.models:
        resolve_model(model)
        search_space(model)
    for dataset in args.datasets:
        for model in args.models if not args.report_only else ():
            ensure_prepared(build_config(model, dataset, config_dict={"data_path": args.data_path}))
    results = Path(args.results)
    url = storage_url(results, args.storage)
    if args.restart and not args.yes:
        confirm_restart(url, args.models, args.datasets, args.protocol)
    # The report covers every model with a study, not only this run's --models: a study
    # resumed one model at a time still ends in one report.
    reported = list(dict.fromkeys([*MODELS, *args.models]))
    for dataset in args.datasets:
        if not args.report_only:
            for model in args.models:
                space = search_space(model)
                seed = study_seed(args.seed, model, dataset, args.protocol)
                defaults = default_params(model, dataset, args.protocol, space, args.data_path)
                if args.restart:
                    delete_study(url, model, dataset, args.protocol)
                fit = topic_fit(model, dataset, args.data_path, args.protocol)
                if (study := load_study(url, model, dataset, args.protocol)) is not None and on_other_fit(study, fit):
                    logging.warning("skipping %s: its study was tuned on another topic fit than %s holds; "
                                    "tune it again with --models %s --restart", study.study_name,
                                    Path(args.data_path) / dataset, model)
                    continue  # the other models' studies go on; compare --tuned refuses this one
                prepare_study(url, model, dataset, args.protocol, seed, space, defaults, fit)
                objective = functools.partial(train_trial, model=model, dataset=dataset, protocol=args.protocol,
                                              seed=args.seed, results=str(results), data_path=args.data_path)
                run_workers(url, model, dataset, args.protocol, seed, objective, budget(space, args.trials),
                            args.workers, args.threads)
        storage = f" --storage {args.storage}" if args.storage else ""
        command = (f"python -m recbole_sdmtmp.tune --protocol {args.protocol} --datasets {dataset} "
                   f"--trials {args.trials}{storage}")
        print(write_report(results, dataset, args.protocol, reported, args.trials, command, args.storage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
