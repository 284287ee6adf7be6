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
import re
import shlex
import sys
from pathlib import Path

from dataset_preprocess.pipeline import INPUT_ERRORS
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.experiments.catalogue import BASELINES, CHANGE_STUDIES, PROTOCOLS, SWEEPS, sweep_values
from recbole_sdmtmp.experiments.cells import run_cells
from recbole_sdmtmp.experiments.figures import plot_sensitivity
from recbole_sdmtmp.experiments.paper_claim import run_paper_claim
from recbole_sdmtmp.experiments.planning import plan_cells
from recbole_sdmtmp.experiments.tables import (
    write_ablation, write_comparison, write_paper_claim, write_readings, write_sensitivity,
)
from recbole_sdmtmp.registry import reads_topics

DEFAULT_SEEDS = [2024, 2025, 2026]
# What changes a table's content; --threads, --results, --data-path and --storage do not.
CONTENT_OPTIONS = ("study", "protocol", "tuned", "seeds", "models", "param", "values", "steps")
PRODUCED_BY = re.compile(r"Produced by `(python -m recbole_sdmtmp\.compare [^`]*)`")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("table", "ablation", "readings", "variants", "sensitivity", "paper_claim"))
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    parser.add_argument("--tuned", action="store_true",
                        help="run each model with the configuration chosen by recbole_sdmtmp.tune")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="default: the seeds the table being rendered records, else 2024 2025 2026")
    parser.add_argument("--models", nargs="+", default=["SDMTMP", *BASELINES],
                        help="rows of 'table' (SDMTMP is labelled SD-MTMP)")
    parser.add_argument("--param", choices=sorted(SWEEPS), help="the swept hyperparameter for 'sensitivity'")
    parser.add_argument("--values", nargs="+", type=float, help="values to sweep (default: the paper's)")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 4, 5], choices=range(1, 6),
                        help="paper_claim: the steps to run (1-2 need the tuning studies of protocol paper)")
    parser.add_argument("--results", default="results", help="output folder")
    parser.add_argument("--data-path", default="dataset/", help="RecBole data_path")
    parser.add_argument("--rerun", action="store_true", help="run finished cells again")
    parser.add_argument("--storage", help="with --tuned: the tuning studies' store "
                                          "(default <results>/tuning/studies.journal; see tune --help)")
    return parser.parse_args(argv)


def output_tables(args) -> list[Path]:
    """The Markdown tables this command writes (each with a CSV beside it)."""
    results = Path(args.results)
    if args.study == "sensitivity":
        return [results / f"sensitivity_{args.param}_{'-'.join(args.datasets)}_{args.protocol}.md"]
    stem = {"table": "{dataset}_{protocol}", "ablation": "ablation_{dataset}_{protocol}",
            "paper_claim": "paper_claim_{dataset}"}.get(args.study, args.study + "_{dataset}_{protocol}")
    return [results / (stem.format(dataset=dataset, protocol=args.protocol) + ".md") for dataset in args.datasets]


def recorded_command(table: Path) -> str | None:
    """The command a written table says produced it."""
    if not table.is_file():
        return None
    found = PRODUCED_BY.search(table.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def settle_options(args, argv: list[str]) -> str:
    """Keep every table this command would write as its recorded command made it: unset seeds
    are the recorded ones, any other difference in what the table shows is refused (write
    elsewhere with --results), and a table rendered again records its own command unchanged.
    Returns the command to record."""
    recorded = {table: command for table in output_tables(args) if (command := recorded_command(table))}
    earlier = {table: parse_args(shlex.split(command)[3:]) for table, command in recorded.items()}
    if args.seeds is None:
        seeds = {tuple(old.seeds) for old in earlier.values() if old.seeds is not None}
        args.seeds = list(seeds.pop()) if len(seeds) == 1 else DEFAULT_SEEDS
    for table, old in earlier.items():
        old.seeds = old.seeds or DEFAULT_SEEDS
        differ = [f"--{name.replace('_', '-')} {getattr(old, name, None)} there, {getattr(args, name, None)} here"
                  for name in CONTENT_OPTIONS if getattr(old, name, None) != getattr(args, name, None)]
        if differ:
            raise SystemExit(
                f"error: {table} was produced by `{recorded[table]}`; this command differs in what the table "
                f"shows ({'; '.join(differ)}) and would replace it. Run the recorded command to render it again, "
                "or write elsewhere with --results <folder>.")
    commands = set(recorded.values())
    if len(commands) == 1 and len(recorded) == len(output_tables(args)):
        return commands.pop()  # rendered again: the same text
    return "python -m recbole_sdmtmp.compare " + " ".join(argv)


def main(argv=None) -> int:
    """The study's exit status; a user's error (data, settings, the study store) is one
    paragraph, exit status 2."""
    from recbole_sdmtmp.user_errors import reported

    return reported(lambda: run_study(argv))


def run_study(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    command = settle_options(args, argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    if args.study == "sensitivity" and args.param is None:
        raise SystemExit("sensitivity needs --param: one of " + ", ".join(SWEEPS))
    if args.study != "table" or any(reads_topics(model) for model in args.models):
        for dataset in args.datasets:  # the topics a tuned SD-MTMP is checked against (a pin installs)
            try:
                ensure_prepared(build_config("SDMTMP", dataset, config_dict={"data_path": args.data_path}))
            except INPUT_ERRORS + (ValueError,) as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
    if args.study == "paper_claim":  # its own protocols, rows and tuned configurations
        for dataset in args.datasets:
            steps = run_paper_claim(dataset, args.seeds, results, args.data_path, args.steps, args.storage,
                                    rerun=args.rerun, threads=args.threads)
            print(write_paper_claim(steps, dataset, results, command))
        return 0
    values = sweep_values(args.param, args.values) if args.study == "sensitivity" else None
    cells, sweep_rows = plan_cells(args.study, args.datasets, args.protocol, args.seeds, results,
                                   args.tuned, args.models, args.param, values, args.storage, args.data_path)
    records = run_cells(cells, results, args.data_path, rerun=args.rerun, threads=args.threads)
    tuned = f"`python -m recbole_sdmtmp.tune --protocol {args.protocol}`" if args.tuned else None
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
