"""Imports go one way: recbole_sdmtmp may import dataset_preprocess, never the reverse."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "dataset_preprocess"

IMPORT_ALL = """
import importlib, json, pkgutil, sys
import dataset_preprocess
names = sorted(m.name for m in pkgutil.iter_modules(dataset_preprocess.__path__))
for name in names:
    if name != "__main__":
        importlib.import_module("dataset_preprocess." + name)
print(json.dumps({"modules": names,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                                   ("recbole_sdmtmp", "recbole"))}))
"""


def test_importing_every_dataset_preprocess_module_loads_no_recbole() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"amazon", "cli", "registry", "topic_files", "topics"} <= set(found["modules"])
    assert found["loaded"] == []


def test_no_dataset_preprocess_source_names_recbole_sdmtmp() -> None:
    """Also the imports inside functions, which the subprocess above never runs."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] == "recbole_sdmtmp"]
    assert offenders == []


def test_model_import_path_of_the_topic_files_still_works() -> None:
    import dataset_preprocess.topic_files as home
    from recbole_sdmtmp.topic_files import TopicFiles, load_topic_files, topic_file_paths

    assert (TopicFiles, load_topic_files, topic_file_paths) == (
        home.TopicFiles, home.load_topic_files, home.topic_file_paths)
