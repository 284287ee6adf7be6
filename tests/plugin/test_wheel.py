"""The package as a user installs it: a wheel built from the checkout (``properties/`` inside it),
installed into a folder of its own, runs the main job from a folder outside the checkout."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SHARED_DIR

RAW = SHARED_DIR / "data" / "amazon" / "Gift_Cards_5.json.gz"
PREPARED = REPO_ROOT / "dataset" / "Gift_Cards"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(REPO_ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    shutil.rmtree(REPO_ROOT / "build", ignore_errors=True)  # setuptools' staging folder
    return next(out.glob("recbole_sdmtmp-*.whl"))


def test_the_wheel_holds_the_properties_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"recbole_sdmtmp/properties/protocol.yaml", "recbole_sdmtmp/properties/model/SDMTMP.yaml",
            "recbole_sdmtmp/properties/dataset/default.yaml", "recbole_sdmtmp/properties/tuning/SDMTMP.yaml",
            "recbole_sdmtmp/model/sdmtmp/model.py", "recbole_sdmtmp/experiments/tuning.py",
            "dataset_preprocess/pipeline.py", "dataset_preprocess/topics/fit.py"} <= names
    pins = {f"recbole_sdmtmp/topic_fits/{path.relative_to(REPO_ROOT / 'results' / 'topic_fits')}"
            for path in (REPO_ROOT / "results" / "topic_fits").rglob("*") if path.is_file()}
    assert len(pins) >= 75 and pins <= names  # the shipped datasets' pinned fits, the training splits' too
    checkout = {str(path.relative_to(REPO_ROOT)) for package in ("recbole_sdmtmp", "dataset_preprocess")
                for path in (REPO_ROOT / package).rglob("*.py")}
    assert checkout <= names  # no module left out of setup.cfg's package list
    # the plugin only: no tests, no paper's studies, no benchmarks
    assert not any(name.startswith(("tests/", "studies/", "benchmarks/")) for name in names)
    assert not any(Path(name).stem in ("paper_claim", "status", "floors", "leak_depth") for name in names)


def test_the_installed_package_runs_the_main_job_outside_the_checkout(wheel, tmp_path):
    if not (PREPARED / "Gift_Cards.topics.json").is_file() and not RAW.is_file():
        pytest.skip("neither a prepared Gift_Cards nor its raw file")
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    extra = []
    if (PREPARED / "Gift_Cards.topics.json").is_file():
        # keeps the times (topics current); the training fits are installed from the wheel's pins
        shutil.copytree(PREPARED, work / "dataset" / "Gift_Cards", ignore=shutil.ignore_patterns("fits"))
    else:
        extra = ["--raw-file", str(RAW)]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)  # the wheel's files only: the checkout is not on the path
    code = ("import sys, recbole_sdmtmp, dataset_preprocess; "
            "print(recbole_sdmtmp.__file__, dataset_preprocess.__file__, file=sys.stderr); "
            "from recbole_sdmtmp.cli import main; sys.exit(main())")
    run = subprocess.run([sys.executable, "-c", code, "--dataset", "Gift_Cards", "--epochs=1", *extra],
                         cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    pins = REPO_ROOT / "results" / "topic_fits" / "Gift_Cards"
    shipped = [pins / "paper" / "pin.json"] + ([pins / "pin.json"] if extra else [])  # prepared here: both
    for pin in shipped:  # the fits shipped in the wheel are installed, nothing is clustered
        assert f"installed the pinned topic fit {json.loads(pin.read_text())['topic_fit']}" in run.stderr
    assert "BERTopic" not in run.stderr and "fitting topics" not in run.stderr
    assert str(site / "recbole_sdmtmp") in run.stderr and str(REPO_ROOT) not in run.stderr.splitlines()[0]
    assert '"test_result"' in run.stdout and list((work / "saved").glob("SDMTMP-*.pth"))
    entry = site / "bin" / "run_recbole_sdmtmp"
    assert entry.is_file() and "recbole_sdmtmp.cli" in entry.read_text()  # the console script
