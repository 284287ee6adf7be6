"""Fair tuning: the same guided trials for every model, selection on validation only.

    python -m recbole_sdmtmp.tune --protocol paper --datasets Instrument --trials 30
    python -m recbole_sdmtmp.tune --protocol paper --datasets Instrument --trials 30 --workers 2
    python -m recbole_sdmtmp.tune ... --storage postgresql://user@host/db   # several machines
    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned

Each model declares its search space in ``properties/tuning/<Model>.yaml``: a list of values is
categorical; ``{low: 1.0e-4, high: 1.0e-2, log: true}`` a log-uniform float range,
``{low: 0.0, high: 0.5}`` a uniform one, ``int: true`` an integer range (``step`` optional);
``a.b`` keys set key b of dict a. A knob that several models share (learning_rate, reg_weight,
embedding_size) has the same range in each (``tests/test_tune.py`` checks it).

A study is one Optuna study per (protocol, dataset, model), named ``<protocol>/<Dataset>/<Model>``,
in an SQLAlchemy database: ``sqlite:///<results>/tuning/studies.db`` unless ``--storage``. It
maximises validation NDCG@10 (the protocol's ``valid_metric``); trials never read the test split
(``evaluate_test=False``), and the test is read once, for the chosen configuration, by
``compare --tuned``.

- Sampler: TPE (Optuna's default settings, independent per knob, constant liar for parallel
  workers). Trial n is sampled with seed ``study_seed + n``: the same seed gives the same
  suggestions for the same history, and a resumed process or a second worker does not replay
  the first process's random start-up draws.
- Trial 0 is the untuned default: the model's own values of every knob (its YAML, SD-MTMP's
  per-dataset YAML, RecBole's defaults), enqueued with ``enqueue_trial``. A range that does not
  contain the default is an error, so the default is a point of the space.
- Pruner: Optuna's MedianPruner on validation NDCG@10 reported after every epoch (5 finished
  trials before any pruning, none in a trial's first 10 epochs). Chosen over successive halving
  because trials end at different epochs under RecBole's early stopping (10 epochs without
  gain): the median pruner compares a trial only with the trials that reached the same epoch and
  needs no fixed epoch budget, where successive halving's rungs assume one. A pruned trial counts
  as run and is never chosen (its score is partial).
- Budget: the study holds exactly ``--trials`` trials (1 for a model with nothing to tune, Pop).
  They are created up front as a queue of waiting trials (trial 0 the default); every process
  claims a waiting trial atomically (Optuna's own pop of ``ask``, without ``ask``'s creation of a
  new trial when the queue is empty), so N workers (``--workers``, or processes on several
  machines) run each trial once and the total is ``--trials``, not N x ``--trials``. A failed
  trial (an exception in training) and a pruned one count as run. A larger ``--trials`` later
  adds trials to the queue; a study never shrinks.
- Topics: a study of a model that reads topics (SD-MTMP) records the dataset's topic fit; on
  another fit (topics prepared again on another machine) it is skipped with a warning (the other
  models go on; ``compare --tuned`` refuses it), and ``--restart``
  deletes the named models' studies and tunes them again (``recbole_sdmtmp.experiments.fits``).
- Resume: a running trial records a heartbeat in the store every minute. A trial whose process
  was killed stops beating; after 3 minutes any process of the study marks it FAIL and queues a
  new trial with the same parameters (Optuna's RetryHeartbeatStaleTrialCallback). The stale
  trial is not counted; its re-run is. Ctrl-C does the same at once. A process waits for
  running trials to end (or go stale) before it returns, so a finished ``tune`` leaves the
  study complete.

``results/tuning_<Dataset>_<protocol>.md`` lists, per model, the trials run, the chosen
configuration and every trial with its state, read from the store only. The trial folders that
the earlier random-draw tuning left under ``results/tuning/<protocol>/<Dataset>/`` are never read:
a study in the store starts afresh, and its report replaces the old one when it is written.
"""

import argparse
import functools
import logging
import sys
from pathlib import Path

from recbole_sdmtmp.data.protocol import PROTOCOLS
from recbole_sdmtmp.experiments.tuning import (
    MODELS, budget, default_params, delete_study, on_other_fit, open_study, run_workers, search_space, storage_url,
    study_seed, top_up, train_trial, write_report,
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
    parser.add_argument("--storage", help="SQLAlchemy URL of the study store "
                                          "(default sqlite:///<results>/tuning/studies.db)")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine filling each study")
    parser.add_argument("--data-path", default="dataset/")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from the store")
    parser.add_argument("--restart", action="store_true",
                        help="delete the studies of --models on --datasets first and tune them afresh "
                             "(a topic model's study tuned on another topic fit is refused otherwise)")
    return parser.parse_args(argv)


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
                study = open_study(url, model, dataset, args.protocol, seed)
                fit = topic_fit(model, dataset, args.data_path)
                if on_other_fit(study, fit):
                    logging.warning("skipping %s: its study was tuned on another topic fit than %s holds; "
                                    "tune it again with --models %s --restart", study.study_name,
                                    Path(args.data_path) / dataset, model)
                    continue  # the other models' studies go on; compare --tuned refuses this one
                top_up(study, budget(space, args.trials), defaults, seed, space, fit)
                objective = functools.partial(train_trial, model=model, dataset=dataset, protocol=args.protocol,
                                              seed=args.seed, results=str(results), data_path=args.data_path)
                run_workers(url, model, dataset, args.protocol, seed, objective, args.workers, args.threads)
        storage = f" --storage {args.storage}" if args.storage else ""
        command = (f"python -m recbole_sdmtmp.tune --protocol {args.protocol} --datasets {dataset} "
                   f"--trials {args.trials}{storage}")
        print(write_report(results, dataset, args.protocol, reported, args.trials, command, args.storage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
