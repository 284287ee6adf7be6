"""The paper's studies of SD-MTMP, on the cells and tables of ``recbole_sdmtmp.compare``.

    python -m studies ablation --protocol paper --datasets Instrument --tuned
    python -m studies readings --protocol paper --datasets Instrument
    python -m studies variants --protocol paper --datasets Instrument --tuned
    python -m studies sensitivity --protocol paper --datasets Instrument --tuned --param beta
    python -m studies paper_claim --datasets Instrument   # the printed procedure, step by step

Run from the checkout's root (the studies are not in the wheel). Each study is a set of rows of
SD-MTMP, run over seeds as table cells (resumable; a finished cell is read back, never run
again unless ``--rerun``) and written as ``<results>/<study>_<dataset>_<protocol>.md`` with a CSV
(the sweeps: ``sensitivity_<param>_<datasets>_<protocol>.md`` and two figures; the paper claim:
``paper_claim_<dataset>.md``). A table records the command that produced it; a command that would
change what a committed table shows is refused.
"""

import argparse
import logging
import sys
from pathlib import Path

from recbole_sdmtmp.compare import add_cell_options, prepare_topics, settle_options
from recbole_sdmtmp.experiments.cells import run_cells
from recbole_sdmtmp.user_errors import reported
from studies.catalogue import SWEEPS, sweep_values
from studies.figures import plot_sensitivity
from studies.paper_claim import run_paper_claim
from studies.planning import plan_study
from studies.tables import write_ablation, write_paper_claim, write_readings, write_sensitivity

COMMAND = "python -m studies"
STUDIES = ("ablation", "readings", "variants", "sensitivity", "paper_claim")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=STUDIES)
    add_cell_options(parser)
    parser.add_argument("--param", choices=sorted(SWEEPS), help="the swept hyperparameter for 'sensitivity'")
    parser.add_argument("--values", nargs="+", type=float, help="values to sweep (default: the paper's)")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 4, 5], choices=range(1, 6),
                        help="paper_claim: the steps to run (1-2 need the tuning studies of protocol paper)")
    return parser.parse_args(argv)


def output_tables(args) -> list[Path]:
    """The Markdown tables this command writes (each with a CSV beside it)."""
    results = Path(args.results)
    if args.study == "sensitivity":
        return [results / f"sensitivity_{args.param}_{'-'.join(args.datasets)}_{args.protocol}.md"]
    if args.study == "paper_claim":
        return [results / f"paper_claim_{dataset}.md" for dataset in args.datasets]
    return [results / f"{args.study}_{dataset}_{args.protocol}.md" for dataset in args.datasets]


def run_study(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    command = settle_options(args, argv, parse_args, output_tables, COMMAND)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    if args.study == "sensitivity" and args.param is None:
        raise SystemExit("sensitivity needs --param: one of " + ", ".join(SWEEPS))
    if prepare_topics(args.datasets, args.data_path):
        return 2
    if args.study == "paper_claim":  # its own protocols, rows and tuned configurations
        for dataset in args.datasets:
            steps = run_paper_claim(dataset, args.seeds, results, args.data_path, args.steps, args.storage,
                                    rerun=args.rerun, threads=args.threads)
            print(write_paper_claim(steps, dataset, results, command))
        return 0
    values = sweep_values(args.param, args.values) if args.study == "sensitivity" else None
    cells, sweep_rows = plan_study(args.study, args.datasets, args.protocol, args.seeds, results, args.tuned,
                                   args.param, values, args.storage, args.data_path)
    records = run_cells(cells, results, args.data_path, rerun=args.rerun, threads=args.threads)
    tuned = f"`python -m recbole_sdmtmp.tune --protocol {args.protocol}`" if args.tuned else None
    if args.study == "sensitivity":
        figures = plot_sensitivity(records, args.datasets, args.param, values, results, args.protocol, sweep_rows)
        print(write_sensitivity(records, args.datasets, args.param, values, results, command,
                                args.protocol, tuned, sweep_rows, figures))
        return 0
    for dataset in args.datasets:
        if args.study == "ablation":
            print(write_ablation(records, dataset, results, command, args.protocol, tuned))
        else:
            print(write_readings(records, dataset, results, command, args.protocol, tuned, args.study))
    return 0


def main(argv=None) -> int:
    """The study's exit status; a user's error (data, settings, the study store) is one
    paragraph, exit status 2."""
    return reported(lambda: run_study(argv))


if __name__ == "__main__":
    raise SystemExit(main())
