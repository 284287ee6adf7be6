"""Every run names what made it: the main job's summary JSON and a table cell record the package
version, the commit of the checkout, the topic fit the model read (none for a model without
topics) and the library versions."""

import json
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import optuna
import pytest
import torch

from dataset_preprocess.topics.files import topic_fit_id
from recbole_sdmtmp import cli, provenance
from recbole_sdmtmp.experiments.cells import Cell, run_cells
from tests.tiny_data import write_tiny_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def expected(tiny_root, reads_topics: bool = True) -> dict:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"version": metadata.version("recbole-sdmtmp"),
            "commit": head.stdout.strip() if head.returncode == 0 else None,
            "topics_fit": topic_fit_id(tiny_root / "tiny", "tiny") if reads_topics else None,
            "libraries": {"torch": torch.__version__, "recbole": metadata.version("recbole"),
                          "optuna": optuna.__version__}}


def same(recorded: dict, wanted: dict) -> bool:
    """Equal, a commit with uncommitted changes in the checkout being ``<commit>+dirty``."""
    commit = recorded["commit"]
    return {**recorded, "commit": commit and commit.removesuffix("+dirty")} == wanted


def test_the_main_job_s_summary_names_the_code_the_fit_and_the_libraries(tiny_root, tmp_path, capsys):
    code = cli.main(["--dataset", "tiny", f"--data_path={tiny_root}", "--epochs=1", "--topic_fit=prepared",
                     f"--checkpoint_dir={tmp_path}", "--show_progress=False", "--embedding_size=8", "--n_layers=1"])
    assert code == 0
    summary = json.loads(next(tmp_path.glob("*.json")).read_text())
    wanted = expected(tiny_root)
    assert wanted["topics_fit"] is not None and same(summary["provenance"], wanted)


def test_a_cell_records_it_too(tiny_root, tmp_path):
    cell = Cell("BPR", "BPR", "tiny", 1, (("epochs", 1), ("embedding_size", 8)))
    record = run_cells([cell], tmp_path, str(tiny_root))[cell]
    assert same(record["provenance"], expected(tiny_root, reads_topics=False))  # BPR reads no topics
    assert same(json.loads(cell.path(tmp_path).read_text())["provenance"], expected(tiny_root, reads_topics=False))


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_commit_is_read_from_a_checkout_only_and_marks_uncommitted_changes(tmp_path):
    commit_of = provenance.git_commit.__wrapped__
    outside = tmp_path / "site-packages" / "recbole_sdmtmp"
    outside.mkdir(parents=True)
    assert commit_of(outside) is None  # an installed package: no commit
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    (repo / "recbole_sdmtmp").mkdir(parents=True)
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "recbole_sdmtmp" / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert commit_of(repo / "recbole_sdmtmp") == head
    (repo / "recbole_sdmtmp" / "a.py").write_text("x = 2\n")
    assert commit_of(repo / "recbole_sdmtmp") == head + "+dirty"
    installed = repo / ".venv" / "lib" / "site-packages" / "recbole_sdmtmp"  # a venv inside a checkout
    installed.mkdir(parents=True)
    assert commit_of(installed) is None
