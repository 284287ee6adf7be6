"""A prepared dataset is checked before it is trusted: a ``.inter`` or topic side-file changed or
cut short after it was written is rebuilt from the raw file when that is at hand, else refused
with one paragraph before anything trains; a damaged result cell is run again, a damaged study
store is one paragraph; ``tune`` refuses an unknown model or dataset the same way."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset_preprocess.pipeline import ensure_dataset, prepare_dataset
from dataset_preprocess.verify import DamagedData
from tests.conftest import REPO_ROOT, SHARED_DIR

GIFT_CARDS_RAW = SHARED_DIR / "data" / "amazon" / "Gift_Cards_5.json.gz"


@pytest.fixture(autouse=True)
def own_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands leave their --key=value settings in sys.argv for RecBole's Config: each test
    gives sys.argv back, so that no later Config reads them."""
    monkeypatch.setattr(sys, "argv", sys.argv[:1])



def shop_csv(path: Path) -> Path:
    """30 users x 8 reviews of 40 items, a day apart: 240 rows."""
    rows = ["user,item,rating,time,text"]
    rows += [f"u{u},i{(3 * u + j) % 40},{1 + (u + j) % 5},{1614816000 + 86400 * (7 * j + u)},fine"
             for u in range(30) for j in range(8)]
    path.write_text("\n".join(rows) + "\n")
    return path


def cut(path: Path, keep_bytes: int | None = None, keep_lines: int | None = None) -> None:
    data = path.read_bytes()
    if keep_lines is not None:
        data = b"".join(data.splitlines(keepends=True)[:keep_lines])
    path.write_bytes(data[:keep_bytes] if keep_bytes is not None else data)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    raw = shop_csv(tmp_path / "shop.csv")
    prepare_dataset("Shop", out_dir=tmp_path / "data", raw_file=raw, topics=False)
    return raw, tmp_path / "data" / "Shop"


def test_a_cut_inter_is_rebuilt_from_the_raw_file_at_hand(shop) -> None:
    from recbole_sdmtmp.config import build_config, ensure_prepared

    raw, folder = shop
    inter = folder / "Shop.inter"
    cut(inter, keep_lines=121)  # the header and 120 of 240 rows, cut at a line end
    ensure_prepared(build_config("Pop", "Shop", config_dict={"data_path": str(folder.parent)}))
    summary = json.loads((folder / "Shop.summary.json").read_text())
    assert sha(inter) == summary["inter_sha256"]
    assert len(pd.read_csv(inter, sep="\t")) == summary["reviews"] == 240


@pytest.mark.parametrize("damage", ["cut at a line end", "cut mid-line", "emptied", "a row edited"])
def test_a_damaged_inter_without_its_raw_file_is_refused_before_training(
        damage: str, shop, capsys: pytest.CaptureFixture[str]) -> None:
    """The runner trained on 1,482 of 2,965 rows of a cut .inter, `tune` too."""
    from recbole_sdmtmp.cli import main

    raw, folder = shop
    inter = folder / "Shop.inter"
    if damage == "cut at a line end":
        cut(inter, keep_lines=100)
    elif damage == "cut mid-line":
        cut(inter, keep_bytes=len(inter.read_bytes()) // 2 + 3)
    elif damage == "emptied":
        inter.write_bytes(b"")
    else:
        inter.write_text(inter.read_text().replace("\t5.0\t", "\t1.0\t", 1))
    raw.unlink()
    saved = folder.parent.parent / "saved"
    code = main(["--dataset", "Shop", "--model", "Pop", f"--data_path={folder.parent}",
                 f"--checkpoint_dir={saved}", "--epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{inter} holds" in err and "its summary recorded 240" in err
    assert "raw file of Shop is not at hand" in err and "Traceback" not in err
    assert not saved.exists()  # nothing trained


def test_sd_mtmp_on_an_own_dataset_without_topics_says_so(shop, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The dataset exists but has no topic files and its raw file is gone: it used to be an
    "unknown dataset"."""
    from recbole_sdmtmp.cli import main

    raw, folder = shop
    raw.unlink()
    code = main(["--dataset", "Shop", "--model", "SDMTMP", f"--data_path={folder.parent}",
                 f"--checkpoint_dir={tmp_path / 'saved'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{folder} holds Shop's atomic files but no topic files" in err, err
    assert "raw file of Shop is not at hand" in err and "unknown dataset" not in err


def test_recommend_compare_and_tune_refuse_a_damaged_inter(shop, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint used on a .inter cut after training, a comparison and a study on it: refused
    before anything is scored or trained (each used to go on without a word)."""
    from recbole_sdmtmp.cli import main as run_main
    from recbole_sdmtmp.compare import main as compare_main
    from recbole_sdmtmp.recommend import main as recommend_main
    from recbole_sdmtmp.tune import main as tune_main

    raw, folder = shop
    saved = tmp_path / "saved"
    assert run_main(["--dataset", "Shop", "--model", "Pop", f"--data_path={folder.parent}",
                     f"--checkpoint_dir={saved}", "--epochs=1"]) == 0
    checkpoint = next(saved.glob("Pop-*.pth"))
    capsys.readouterr()
    cut(folder / "Shop.inter", keep_lines=100)
    raw.unlink()
    out = tmp_path / "recs.csv"
    results = tmp_path / "results"
    for command in (
        lambda: recommend_main(["--checkpoint", str(checkpoint), "--out", str(out)]),
        lambda: compare_main(["table", "--models", "Pop", "--datasets", "Shop", "--seeds", "1",
                              "--data-path", str(folder.parent), "--results", str(results)]),
        lambda: tune_main(["--models", "Pop", "--datasets", "Shop", "--trials", "1",
                           "--data-path", str(folder.parent), "--results", str(results)]),
    ):
        code = command()
        err = capsys.readouterr().err
        assert code == 2 and "its summary recorded 240" in err, err
        assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    assert not out.exists() and not list(results.rglob("*.json")) and not list(results.rglob("*.db"))


def _tiny_fit(root: Path, seed: int = 0) -> Path:
    """The tiny dataset with its topic side-files written by the fit's own writer (which records
    the sha256 of each); ``seed`` draws the topic vectors."""
    from dataset_preprocess.topics.fit import _write_side_files
    from tests.tiny_data import N_TOPICS, TOPIC_DIM, review_topics, write_tiny_dataset

    write_tiny_dataset(root)
    frame = pd.DataFrame(review_topics(), columns=["user_id", "item_id", "topic_id", "sentences"])
    vectors = np.random.default_rng(seed).normal(size=(N_TOPICS, TOPIC_DIM)).astype(np.float32)
    topics = [{"topic_id": t, "size": int(frame.loc[frame.topic_id == t, "sentences"].sum()),
               "n_users": int(frame.loc[frame.topic_id == t, "user_id"].nunique()),
               "n_items": int(frame.loc[frame.topic_id == t, "item_id"].nunique()), "words": []}
              for t in range(N_TOPICS)]
    meta = {"format_version": 1, "n_topics": N_TOPICS, "embedding_dim": TOPIC_DIM, "topics": topics}
    _write_side_files(root / "tiny", "tiny", frame.sort_values(["user_id", "item_id", "topic_id"]),
                      vectors, meta)
    return root / "tiny"


def _shuffle_users(path: Path) -> None:
    lines = path.read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    users = [row[0] for row in rows][::-1]
    path.write_text("\n".join([lines[0], *("\t".join([u, *row[1:]]) for u, row in zip(users, rows))]) + "\n")


@pytest.mark.parametrize("damage", ["cut at a line end", "only its header", "cut mid-line",
                                    "emptied", "users shuffled"])
def test_a_damaged_topic_file_is_refused_without_its_raw_file(damage: str, tmp_path: Path) -> None:
    """Each of these used to be read silently (or end in a traceback)."""
    folder = _tiny_fit(tmp_path)
    ensure_dataset("tiny", out_dir=tmp_path)  # intact: used as it is
    review_topic = folder / "tiny.review_topic"
    if damage == "cut at a line end":
        cut(review_topic, keep_lines=4)
    elif damage == "only its header":
        cut(review_topic, keep_lines=1)
    elif damage == "cut mid-line":
        cut(review_topic, keep_bytes=len(review_topic.read_bytes()) - 5)
    elif damage == "emptied":
        review_topic.write_bytes(b"")
    else:
        _shuffle_users(review_topic)
    with pytest.raises(DamagedData, match=r"tiny\.review_topic is not the file its fit wrote.*"
                                          r"raw file of tiny is not at hand"):
        ensure_dataset("tiny", out_dir=tmp_path)


@pytest.fixture(scope="module")
def gift_cards_with_its_pinned_fit(tmp_path_factory) -> Path:
    """The real Gift_Cards, converted from a copy of its raw file that is then removed, with its
    committed topic fit (a fit recorded before side-file hashes: checked by its per-topic counts)."""
    root = tmp_path_factory.mktemp("gift")
    raw = root / "Gift_Cards_5.json.gz"
    shutil.copy(GIFT_CARDS_RAW, raw)
    folder = prepare_dataset("Gift_Cards", out_dir=root / "data", raw_file=raw, download=False,
                             topics=False)
    raw.unlink()
    for path in (REPO_ROOT / "results" / "topic_fits" / "Gift_Cards").glob("Gift_Cards.*"):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("damage", ["cut at a line end", "only its header", "cut mid-line"])
def test_a_damaged_pinned_fit_is_noticed_by_its_recorded_counts(
        damage: str, gift_cards_with_its_pinned_fit: Path, tmp_path: Path) -> None:
    """A fit recorded before side-file hashes (the committed pins): every topic's sentence, user
    and item counts are compared. (ensure_dataset then rebuilds an Amazon dataset's topics from
    the raw file the registry finds, or refuses as above.)"""
    from dataset_preprocess.verify import topic_problem

    folder = tmp_path / "Gift_Cards"
    shutil.copytree(gift_cards_with_its_pinned_fit, folder)
    assert topic_problem(folder, "Gift_Cards") is None
    review_topic = folder / "Gift_Cards.review_topic"
    if damage == "cut at a line end":
        cut(review_topic, keep_lines=len(review_topic.read_text().splitlines()) - 3)
    elif damage == "only its header":
        cut(review_topic, keep_lines=1)
    else:
        cut(review_topic, keep_bytes=len(review_topic.read_bytes()) - 7)
    problem = topic_problem(folder, "Gift_Cards")
    words = "cannot be read" if damage == "cut mid-line" else "but its fit recorded"
    assert problem is not None and words in problem, problem


def test_a_damaged_cell_is_run_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from recbole_sdmtmp.experiments.cells import Cell, finished_record

    cell = Cell(label="Pop", model="Pop", dataset="tiny", seed=1)
    path = cell.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"label": "Pop", "test_result": {"ndcg@10": 0.')  # cut short
    assert finished_record(cell, tmp_path, str(tmp_path)) is None
    assert "is damaged" in caplog.text and "running the cell again" in caplog.text


def test_tune_reports_a_damaged_store_an_unknown_model_or_dataset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recbole_sdmtmp.tune import main

    store = tmp_path / "studies.db"
    store.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # a store cut short
    cases = [
        (["--report-only", "--models", "Pop", "--datasets", "Gift_Cards", "--storage",
          f"sqlite:///{store}"], "the study store cannot be read"),
        (["--models", "Foo"], "unknown model 'Foo'"),
        (["--models", "Pop", "--datasets", "NoSuch", "--data-path", str(tmp_path / "data")],
         "unknown dataset 'NoSuch'"),
    ]
    for argv, words in cases:
        code = main([*argv, "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and words in err, (argv, err)
        assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
