"""Every Python block of docs/API.md runs as a script from an empty folder and does what it says:
the first trains and tests SD-MTMP through RecBole's own Config, create_dataset,
data_preparation and Trainer on the real Gift_Cards file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataset_preprocess.topics.review_vectors import review_vector_paths
from tests.conftest import REPO_ROOT

API_DOC = REPO_ROOT / "docs" / "API.md"
BLOCKS = re.findall(r"```python\n(.*?)```", API_DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_the_recbole_route_first():
    assert len(BLOCKS) >= 3
    first = BLOCKS[0]
    for step in ("Config(model=SDMTMP", "create_dataset(config)", "data_preparation(config, dataset)",
                 "Trainer(config, model)", "trainer.fit(", "trainer.evaluate("):
        assert step in first


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_block_runs_as_a_script(index, tmp_path):
    script = tmp_path / f"block{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))  # the checkout's package, from any folder
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # every block ends by printing test metrics (or a table of recommendations)
    assert "ndcg@10" in done.stdout, done.stdout[-2000:]
    folder = tmp_path / "dataset" / "Gift_Cards"
    assert (folder / "Gift_Cards.inter").is_file()
    # the pinned fit is installed (nothing clustered), and no model here reads review vectors:
    # none are encoded (RGCL's preparation builds them: tests/preprocess/test_review_vectors.py)
    assert "BERTopic" not in done.stderr and "installed the pinned topic fit" in done.stderr
    assert not any(path.exists() for path in review_vector_paths(folder, "Gift_Cards").values())
    if index == 1:  # RecBole's quick start after prepare(): RecBole's own log file is written
        assert list((tmp_path / "log").rglob("*.log")), "run_recbole wrote no log file"
    if index == 0:
        metrics = dict(re.findall(r"'(\w+@\d+)', ([0-9.]+)", done.stdout))
        assert set(metrics) == {"hit@10", "hit@20", "ndcg@10", "ndcg@20"}
        assert 0 < float(metrics["ndcg@10"]) <= float(metrics["hit@10"]) <= 1
