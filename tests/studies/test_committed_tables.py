"""Commands never replace committed results with other settings: every ``compare`` and
``studies`` command the README lists renders its committed tables byte for byte from the committed cells (on a copy of
``results/``), and a command whose settings differ from a table's recorded ones is refused."""

import filecmp
import re
import shlex
import shutil

import pytest

from recbole_sdmtmp import compare
from studies import __main__ as studies_cli
from tests.conftest import REPO_ROOT

README_COMMANDS = sorted(set(re.findall(r"^(python -m (?:recbole_sdmtmp\.compare|studies) [^#\n`]*?)\s*(?:#.*)?$",
                                        (REPO_ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M)))
COMMAND_LINES = {compare.COMMAND: compare, studies_cli.COMMAND: studies_cli}


def command_line(command: str):
    """The module behind a README command: ``compare`` or the studies' command line."""
    return next(module for prefix, module in COMMAND_LINES.items() if command.startswith(prefix + " "))


@pytest.fixture(scope="module")
def results_copy(tmp_path_factory):
    copy = tmp_path_factory.mktemp("results") / "results"
    shutil.copytree(REPO_ROOT / "results", copy)
    return copy


def test_the_readme_lists_compare_and_studies_commands():
    assert any(" table " in command for command in README_COMMANDS) and len(AUDIT_COMMANDS) == 1
    assert {command_line(command) for command in README_COMMANDS} == {compare, studies_cli}


@pytest.mark.parametrize("command", README_COMMANDS)
def test_each_readme_compare_command_renders_its_committed_tables_unchanged(command, results_copy, tmp_path):
    cli = command_line(command)
    argv = shlex.split(command)[3:]
    args = cli.parse_args(argv)
    argv += ["--results", str(results_copy), "--data-path", str(tmp_path / "dataset")]
    assert cli.main(argv) == 0
    written = [table for table in cli.output_tables(cli.parse_args(argv))]
    assert written
    for table in written:
        committed = REPO_ROOT / "results" / table.name
        assert committed.is_file(), f"{command} writes {table.name}, which is not committed"
        for suffix in (".md", ".csv"):
            assert filecmp.cmp(table.with_suffix(suffix), committed.with_suffix(suffix), shallow=False), \
                f"{command} changed {committed.with_suffix(suffix).name}"
    assert args.results == "results"  # as listed, the README's command writes the committed folder


AUDIT_COMMANDS = re.findall(r"^(python -m recbole_sdmtmp\.leak_audit [^#\n`]*?)\s*(?:#.*)?$",
                            (REPO_ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M)


@pytest.mark.parametrize("command", AUDIT_COMMANDS)
def test_the_readme_leak_audit_command_renders_its_committed_tables_unchanged(command, results_copy, tmp_path):
    from recbole_sdmtmp import leak_audit

    argv = shlex.split(command)[3:] + ["--results", str(results_copy), "--data-path", str(tmp_path / "dataset")]
    assert leak_audit.main(argv) == 0  # the datasets are prepared first (the pinned fits, no clustering)
    for suffix in (".md", ".csv"):
        assert filecmp.cmp(results_copy / f"leak_audit{suffix}", REPO_ROOT / "results" / f"leak_audit{suffix}",
                           shallow=False), f"{command} changed leak_audit{suffix}"


def write_table(results, dataset, command):
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{dataset}_paper.md").write_text(f"# t\n\nProduced by `{command}`. Protocol.\n")


def test_unset_seeds_are_the_recorded_ones_and_the_command_is_kept(tmp_path):
    results = tmp_path / "results"
    recorded = ("python -m recbole_sdmtmp.compare table --protocol paper --datasets Gift_Cards --tuned "
                "--seeds 2024 2025 2026 2027 2028 --threads 1")
    write_table(results, "Gift_Cards", recorded)
    argv = ["table", "--protocol", "paper", "--datasets", "Gift_Cards", "--tuned", "--results", str(results)]
    args = compare.parse_args(argv)
    assert compare.settle_options(args, argv) == recorded
    assert args.seeds == [2024, 2025, 2026, 2027, 2028]


def test_other_seeds_or_models_are_refused_and_another_folder_is_free(tmp_path):
    results = tmp_path / "results"
    write_table(results, "Gift_Cards", "python -m recbole_sdmtmp.compare table --protocol paper "
                                       "--datasets Gift_Cards --tuned --seeds 2024 2025 2026 2027 2028")
    for extra in (["--seeds", "2024", "2025", "2026"], ["--models", "SDMTMP", "Pop"], []):
        argv = ["table", "--protocol", "paper", "--datasets", "Gift_Cards", "--results", str(results), *extra]
        with pytest.raises(SystemExit, match="would replace it"):
            compare.settle_options(compare.parse_args(argv), argv)  # [] : untuned against a tuned table
    argv = ["table", "--protocol", "paper", "--datasets", "Gift_Cards", "--seeds", "1", "--results", str(tmp_path / "new")]
    args = compare.parse_args(argv)
    assert compare.settle_options(args, argv) == "python -m recbole_sdmtmp.compare " + " ".join(argv)
    assert args.seeds == [1]


def test_without_a_table_the_default_seeds_apply(tmp_path):
    argv = ["ablation", "--datasets", "Gift_Cards", "--results", str(tmp_path)]
    args = studies_cli.parse_args(argv)
    command = compare.settle_options(args, argv, studies_cli.parse_args, studies_cli.output_tables, studies_cli.COMMAND)
    assert args.seeds == compare.DEFAULT_SEEDS and command == "python -m studies " + " ".join(argv)


def test_a_study_table_keeps_its_recorded_command_and_refuses_other_rows(tmp_path):
    recorded = "python -m studies ablation --protocol paper --datasets Gift_Cards --tuned"
    (tmp_path / "ablation_Gift_Cards_paper.md").write_text(f"# t\n\nProduced by `{recorded}`. Text.\n")
    argv = ["ablation", "--datasets", "Gift_Cards", "--tuned", "--results", str(tmp_path)]
    args = studies_cli.parse_args(argv)
    assert compare.settle_options(args, argv, studies_cli.parse_args, studies_cli.output_tables,
                                  studies_cli.COMMAND) == recorded
    argv = ["ablation", "--datasets", "Gift_Cards", "--results", str(tmp_path)]  # untuned over a tuned table
    with pytest.raises(SystemExit, match="would replace it"):
        compare.settle_options(studies_cli.parse_args(argv), argv, studies_cli.parse_args, studies_cli.output_tables,
                               studies_cli.COMMAND)
