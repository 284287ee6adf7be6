"""A checkpoint is used only as what it was trained as: another model, dataset, protocol, model
setting, atomic file or topic fit is refused naming what differs (RecBole evaluated a BPR
checkpoint as LightGCN without a word, and ended other mismatches in a state_dict traceback);
a missing or cut checkpoint is one paragraph."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dataset_preprocess.pipeline import prepare_dataset
from recbole_sdmtmp.cli import main
from recbole_sdmtmp.recommend import main as recommend_main
from tests.preprocess.test_checked_data import shop_csv


@pytest.fixture(autouse=True)
def own_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands leave their --key=value settings in sys.argv for RecBole's Config: each test
    gives sys.argv back, so that no later Config reads them."""
    monkeypatch.setattr(sys, "argv", sys.argv[:1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(data root with Shop, a BPR checkpoint of 8-dimensional embeddings trained on it)."""
    root = tmp_path_factory.mktemp("identity")
    prepare_dataset("Shop", out_dir=root / "data", raw_file=shop_csv(root / "shop.csv"), topics=False)
    argv = sys.argv
    try:
        code = main(["--dataset", "Shop", "--model", "BPR", f"--data_path={root / 'data'}",
                     f"--checkpoint_dir={root / 'saved'}", "--epochs=1", "--embedding_size=8"])
    finally:
        sys.argv = argv
    assert code == 0
    return root / "data", next((root / "saved").glob("BPR-*.pth"))


def evaluate(data: Path, checkpoint: Path, *argv: str) -> int:
    return main(["--dataset", "Shop", f"--data_path={data}", f"--checkpoint={checkpoint}", *argv])


def refused(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err and '"test_result"' not in captured.out
    return captured.err


def test_the_checkpoint_evaluates_as_what_it_was_trained_as(trained, capsys) -> None:
    data, checkpoint = trained
    assert evaluate(data, checkpoint, "--model", "BPR", "--embedding_size=8") == 0
    assert '"test_result"' in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--model", "LightGCN", "--embedding_size=8"], "model BPR there, LightGCN here"),
    (["--model", "BPR"], "embedding_size=8 there, 64 here"),
    (["--model", "BPR", "--embedding_size=8", "--protocol=next_item"], "protocol paper there, next_item here"),
])
def test_a_checkpoint_used_as_something_else_is_refused(argv, words, trained, capsys) -> None:
    data, checkpoint = trained
    err = refused(evaluate(data, checkpoint, *argv), capsys)
    assert f"checkpoint {checkpoint} was trained on something else than this run: {words}" in err, err


def test_a_checkpoint_of_another_dataset_is_refused(trained, tmp_path, capsys) -> None:
    data, checkpoint = trained
    other = tmp_path / "data"
    prepare_dataset("Other", out_dir=other, raw_file=shop_csv(tmp_path / "other.csv"), topics=False)
    code = main(["--dataset", "Other", "--model", "BPR", "--embedding_size=8", f"--data_path={other}",
                 f"--checkpoint={checkpoint}"])
    assert "dataset Shop there, Other here" in refused(code, capsys)


def test_other_data_under_the_same_name_is_refused(trained, tmp_path, capsys) -> None:
    """The same dataset name converted from other reviews (more users): the evaluation, and
    recommend with --data-path, are refused naming the atomic file."""
    data, checkpoint = trained
    raw = shop_csv(tmp_path / "shop.csv")
    raw.write_text(raw.read_text() + "".join(f"u99,i{j},4,{1614816000 + 86400 * j},fine\n" for j in range(8)))
    prepare_dataset("Shop", out_dir=tmp_path / "data", raw_file=raw, topics=False)
    err = refused(evaluate(tmp_path / "data", checkpoint, "--model", "BPR", "--embedding_size=8"), capsys)
    assert "Shop.inter is not the one it was trained on" in err, err
    out = tmp_path / "recs.csv"
    err = refused(recommend_main(["--checkpoint", str(checkpoint), "--out", str(out),
                                  "--data-path", str(tmp_path / "data")]), capsys)
    assert "Shop.inter is not the one it was trained on" in err and not out.exists(), err


def test_a_checkpoint_without_a_data_record_still_has_its_shapes_checked(trained, tmp_path, capsys) -> None:
    """A checkpoint saved before data identities were recorded, on data with another number of
    users: the parameters whose shape differs are named instead of a state_dict traceback."""
    import torch

    data, checkpoint = trained
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["config"].final_config_dict.pop("trained_on", None)
    old = tmp_path / "old.pth"
    torch.save(state, old)
    raw = shop_csv(tmp_path / "shop.csv")
    raw.write_text(raw.read_text() + "".join(f"u99,i{j},4,{1614816000 + 86400 * j},fine\n" for j in range(8)))
    prepare_dataset("Shop", out_dir=tmp_path / "data", raw_file=raw, topics=False)
    err = refused(evaluate(tmp_path / "data", old, "--model", "BPR", "--embedding_size=8"), capsys)
    assert "user_embedding.weight of shape (31, 8) there, (32, 8) here" in err, err


def test_a_missing_or_cut_checkpoint_is_one_paragraph(trained, tmp_path, capsys) -> None:
    data, checkpoint = trained
    cut = tmp_path / "cut.pth"
    cut.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    for path, words in ((tmp_path / "none.pth", "does not exist"), (cut, "cannot be read")):
        err = refused(evaluate(data, path, "--model", "BPR", "--embedding_size=8"), capsys)
        assert f"checkpoint {path} {words}" in err, err
        err = refused(recommend_main(["--checkpoint", str(path), "--out", str(tmp_path / "r.csv")]), capsys)
        assert f"checkpoint {path} {words}" in err, err


def test_a_topic_model_s_checkpoint_on_another_fit_is_refused(tmp_path, capsys) -> None:
    """SD-MTMP trained on the tiny dataset's topics, then the topics replaced by another fit of
    the same shape: recommend refuses, naming both fits."""
    from recbole_sdmtmp.recommend import recommendations
    from tests.preprocess.test_checked_data import _tiny_fit

    _tiny_fit(tmp_path)
    code = main(["--dataset", "tiny", "--model", "SDMTMP", f"--data_path={tmp_path}",
                 f"--checkpoint_dir={tmp_path / 'saved'}", "--epochs=1", "--embedding_size=8", "--topic_fit=prepared"])
    assert code == 0
    checkpoint = next((tmp_path / "saved").glob("SDMTMP-*.pth"))
    assert len(recommendations(str(checkpoint), 3)) > 0
    capsys.readouterr()
    _tiny_fit(tmp_path, seed=1)  # another fit of the same reviews: other topic vectors
    err = refused(recommend_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "r.csv")]), capsys)
    assert "topic fit" in err and "was trained on something else" in err, err
