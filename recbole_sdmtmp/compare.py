"""Models side by side under one protocol: a table of any RecBole or plugin models over seeds,
with paired tests.

    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned
    python -m recbole_sdmtmp.compare table --protocol global_time --datasets Gift_Cards --models SDMTMP SASRec Pop

Every (row, dataset, seed) cell is one ``runner.run`` on the same dataset, dataloaders, split and
evaluator, in this process, one after the other (timings are comparable). A finished cell is a
JSON file under ``<results>/cells/<protocol>/``; it is not run again unless ``--rerun``. Tables
are rebuilt from the cell files each time. ``--tuned`` runs each model with the configuration
that ``python -m recbole_sdmtmp.tune`` chose on validation, read from its study store. The
paper's own studies (ablation, readings, sweeps, the paper-claim steps) run on the same cells
from the checkout's ``studies/`` folder (``python -m studies --help``).
"""

import argparse
import logging
import re
import shlex
import sys
from pathlib import Path

from dataset_preprocess.pipeline import INPUT_ERRORS
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.experiments.catalogue import BASELINES, PROTOCOLS
from recbole_sdmtmp.experiments.cells import run_cells
from recbole_sdmtmp.experiments.planning import plan_cells, table_rows
from recbole_sdmtmp.experiments.tables import write_comparison
from recbole_sdmtmp.registry import reads_topics

DEFAULT_SEEDS = [2024, 2025, 2026]
COMMAND = "python -m recbole_sdmtmp.compare"
# What changes a table's content; --threads, --results, --data-path and --storage do not.
CONTENT_OPTIONS = ("study", "protocol", "tuned", "seeds", "models", "param", "values", "steps")
PRODUCED_BY = re.compile(r"Produced by `(python -m [\w.]+ [^`]*)`")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("table",))
    add_cell_options(parser)
    parser.add_argument("--models", nargs="+", default=["SDMTMP", *BASELINES],
                        help="the table's rows: RecBole or plugin models (SDMTMP is labelled SD-MTMP)")
    return parser.parse_args(argv)


def add_cell_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs cells over seeds (``compare`` and the studies)."""
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    parser.add_argument("--tuned", action="store_true",
                        help="run each model with the configuration chosen by recbole_sdmtmp.tune")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="default: the seeds the table being rendered records, else 2024 2025 2026")
    parser.add_argument("--results", default="results", help="output folder")
    parser.add_argument("--data-path", default="dataset/", help="RecBole data_path")
    parser.add_argument("--rerun", action="store_true", help="run finished cells again")
    parser.add_argument("--storage", help="with --tuned: the tuning studies' store "
                                          "(default <results>/tuning/studies.journal; see tune --help)")


def output_tables(args) -> list[Path]:
    """The Markdown tables this command writes (each with a CSV beside it)."""
    return [Path(args.results) / f"{dataset}_{args.protocol}.md" for dataset in args.datasets]


def recorded_command(table: Path) -> str | None:
    """The command a written table says produced it."""
    if not table.is_file():
        return None
    found = PRODUCED_BY.search(table.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def settle_options(args, argv: list[str], parse=parse_args, outputs=output_tables, prefix: str = COMMAND) -> str:
    """Keep every table this command would write as its recorded command made it: unset seeds
    are the recorded ones, any other difference in what the table shows is refused (write
    elsewhere with --results), and a table rendered again records its own command unchanged.
    Returns the command to record. ``parse``, ``outputs`` and ``prefix`` are the command's own
    (another command that writes tables from cells passes its own)."""
    recorded = {table: command for table in outputs(args) if (command := recorded_command(table))}
    earlier = {table: parse(shlex.split(command)[3:]) for table, command in recorded.items()}
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
    if len(commands) == 1 and len(recorded) == len(outputs(args)):
        return commands.pop()  # rendered again: the same text
    return f"{prefix} " + " ".join(argv)


def main(argv=None) -> int:
    """The command's exit status; a user's error (data, settings, the study store) is one
    paragraph, exit status 2."""
    from recbole_sdmtmp.user_errors import reported

    return reported(lambda: compare(argv))


def prepare_topics(datasets, data_path: str) -> int:
    """Prepare (or install the pinned) topics a tuned SD-MTMP is checked against: 0, or 2 after
    one paragraph on the user's error."""
    for dataset in datasets:
        try:
            ensure_prepared(build_config("SDMTMP", dataset, config_dict={"data_path": data_path}))
        except INPUT_ERRORS + (ValueError,) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


def compare(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    command = settle_options(args, argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = Path(args.results)
    if any(reads_topics(model) for model in args.models) and prepare_topics(args.datasets, args.data_path):
        return 2
    cells = plan_cells(table_rows(args.models), args.datasets, args.protocol, args.seeds, results, args.tuned,
                       args.storage, args.data_path)
    records = run_cells(cells, results, args.data_path, rerun=args.rerun, threads=args.threads)
    tuned = f"`python -m recbole_sdmtmp.tune --protocol {args.protocol}`" if args.tuned else None
    for dataset in args.datasets:
        print(write_comparison(records, dataset, results, command, args.protocol, tuned))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
