"""Side-by-side comparison under one protocol: baselines, ablations and sensitivity sweeps.

    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned
    python -m recbole_sdmtmp.compare ablation --protocol paper --datasets Instrument
    python -m recbole_sdmtmp.compare sensitivity --protocol paper --datasets Instrument --param beta
    python -m recbole_sdmtmp.compare paper_claim --datasets Instrument   # the printed procedure, step by step

Every (row, dataset, seed) cell is one ``runner.run`` on the same dataset, dataloaders, split and
evaluator, in this process, one after the other (timings are comparable). A finished cell is a
JSON file under ``<results>/cells/<protocol>/``; it is not run again unless ``--rerun``. Tables
are rebuilt from the cell files each time. ``--tuned`` runs each model with the configuration
that ``python -m recbole_sdmtmp.tune`` chose on validation, read from its study store.
"""

import argparse
import logging
import sys
from pathlib import Path

from recbole_sdmtmp.experiments.catalogue import BASELINES, CHANGE_STUDIES, PROTOCOLS, SWEEPS, sweep_values
from recbole_sdmtmp.experiments.cells import run_cells
from recbole_sdmtmp.experiments.figures import plot_sensitivity
from recbole_sdmtmp.experiments.paper_claim import run_paper_claim
from recbole_sdmtmp.experiments.planning import plan_cells
from recbole_sdmtmp.experiments.tuning import LEGACY_NOTE
from recbole_sdmtmp.experiments.tables import (
    write_ablation, write_comparison, write_paper_claim, write_readings, write_sensitivity,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("table", "ablation", "readings", "variants", "sensitivity", "paper_claim"))
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    parser.add_argument("--tuned", action="store_true",
                        help="run each model with the configuration chosen by recbole_sdmtmp.tune")
    parser.add_argument("--legacy-tuning", action="store_true",
                        help="with --tuned: the configurations of the earlier 6-trial random draw "
                             "(results/tuning/<protocol>/), for a protocol whose Optuna studies have not run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025, 2026])
    parser.add_argument("--models", nargs="+", default=["SDMTMP", *BASELINES],
                        help="rows of 'table' (SDMTMP is labelled SD-MTMP)")
    parser.add_argument("--param", choices=sorted(SWEEPS), help="the swept hyperparameter for 'sensitivity'")
    parser.add_argument("--values", nargs="+", type=float, help="values to sweep (default: the paper's)")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 4, 5], choices=range(1, 6),
                        help="paper_claim: the steps to run (1-2 need the tuning studies of protocol paper)")
    parser.add_argument("--results", default="results", help="output folder")
    parser.add_argument("--data-path", default="dataset/", help="RecBole data_path")
    parser.add_argument("--rerun", action="store_true", help="run finished cells again")
    parser.add_argument("--storage", help="with --tuned: SQLAlchemy URL of the tuning studies "
                                          "(default sqlite:///<results>/tuning/studies.db)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The study's exit status; a user's error (data, settings, the study store) is one
    paragraph, exit status 2."""
    from recbole_sdmtmp.user_errors import reported

    return reported(lambda: run_study(argv))


def run_study(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    command = "python -m recbole_sdmtmp.compare " + " ".join(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    if args.study == "sensitivity" and args.param is None:
        raise SystemExit("sensitivity needs --param: one of " + ", ".join(SWEEPS))
    if args.study == "paper_claim":  # its own protocols, rows and tuned configurations
        for dataset in args.datasets:
            steps = run_paper_claim(dataset, args.seeds, results, args.data_path, args.steps, args.storage,
                                    rerun=args.rerun, threads=args.threads)
            print(write_paper_claim(steps, dataset, results, command))
        return 0
    values = sweep_values(args.param, args.values) if args.study == "sensitivity" else None
    cells, sweep_rows = plan_cells(args.study, args.datasets, args.protocol, args.seeds, results,
                                   args.tuned, args.models, args.param, values, args.storage, args.legacy_tuning,
                                   args.data_path)
    records = run_cells(cells, results, args.data_path, rerun=args.rerun, threads=args.threads)
    tuned = f"`python -m recbole_sdmtmp.tune --protocol {args.protocol}`" if args.tuned else None
    if args.tuned and args.legacy_tuning:
        tuned = LEGACY_NOTE
    for dataset in args.datasets:
        if args.study == "table":
            print(write_comparison(records, dataset, results, command, args.protocol, tuned))
        elif args.study == "ablation":
            print(write_ablation(records, dataset, results, command, args.protocol, tuned))
        elif args.study in CHANGE_STUDIES:
            print(write_readings(records, dataset, results, command, args.protocol, tuned, args.study))
    if args.study == "sensitivity":
        figures = plot_sensitivity(records, args.datasets, args.param, values, results, args.protocol,
                                   sweep_rows)
        print(write_sensitivity(records, args.datasets, args.param, values, results, command,
                                args.protocol, tuned, sweep_rows, figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
