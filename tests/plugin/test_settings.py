"""Settings are checked before anything runs: a key that nothing reads (a typo) is refused with
the closest known name, a number of the wrong type or range with what it must be, and a
``--config_files`` file that is missing or not YAML with its reason: one paragraph each, exit
status 2, nothing prepared or trained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recbole_sdmtmp.cli import main

REFUSED = [
    (["--model", "SDMTMP", "--embeding_size=32"],
     "embeding_size on the command line is not a setting of RecBole, the protocol or SDMTMP "
     "(did you mean embedding_size?)"),
    (["--model", "BPR", "--foo_bar=1"], "foo_bar on the command line is not a setting"),
    (["--model", "BPR", "--n_heads=2"], "n_heads on the command line is not a setting of RecBole, the protocol or BPR"),
    (["--model", "SDMTMP", "--embedding_size=abc"], "embedding_size='abc' on the command line must be a whole number"),
    (["--model", "SDMTMP", "--embedding_size=0"], "embedding_size=0 on the command line must be a whole number of at least 1"),
    (["--model", "BPR", "--embedding_size=64.0"], "embedding_size=64.0 on the command line must be a whole number"),
    (["--model", "SDMTMP", "--learning_rate=abc"], "learning_rate='abc' on the command line must be a number"),
    (["--model", "LightGCN", "--learning_rate=0"], "learning_rate=0 on the command line must be a number greater than 0"),
    (["--model", "SDMTMP", "--n_layers=1.5"], "n_layers=1.5 on the command line must be a whole number"),
    (["--model", "SDMTMP", "--n_layers=-1"], "n_layers=-1 on the command line must be a whole number of at least 0"),
    (["--model", "SDMTMP", "--dropout_rate=2.0"], "dropout_rate=2.0 on the command line must be a probability"),
    (["--model", "SASRec", "--hidden_dropout_prob=1"], "hidden_dropout_prob=1 on the command line must be a probability"),
    (["--model", "BPR", "--train_batch_size=0"], "train_batch_size=0 on the command line must be a whole number of at least 1"),
    (["--model", "Pop", "--epochs=0"], "epochs=0 on the command line must be a whole number of at least 1"),
    (["--model", "SDMTMP", "--sd_detach_teacher=maybe"], "sd_detach_teacher='maybe' on the command line must be True or False"),
    (["--model", "BPR", "--embedding_size", "32"], "--embedding_size 32: not an option of this command, and settings are written --key=value"),
]


@pytest.fixture(autouse=True)
def own_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands leave their --key=value settings in sys.argv for RecBole's Config: each test
    gives sys.argv back, so that no later Config reads them."""
    monkeypatch.setattr(sys, "argv", sys.argv[:1])



@pytest.mark.parametrize("argv, words", REFUSED, ids=[" ".join(argv[1:]) for argv, _ in REFUSED])
def test_a_bad_setting_is_refused_before_anything_runs(argv: list[str], words: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, saved = tmp_path / "data", tmp_path / "saved"
    code = main(["--dataset", "Shop", *argv, f"--data_path={data}", f"--checkpoint_dir={saved}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err
    assert not data.exists() and not saved.exists()


def test_a_bad_yaml_file_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("embeding_size: 32\nlearning_rate: 0.01\n")
    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text("n_layers: two\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("embedding_size: 32\nlearning_rate: [0.01\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("- embedding_size\n")
    cases = [
        (typo, f"embeding_size in {typo} is not a setting of RecBole, the protocol or SDMTMP (did you mean embedding_size?)"),
        (wrong_type, f"n_layers='two' in {wrong_type} must be a whole number"),
        (broken, f"--config_files {broken} is not valid YAML at line"),
        (listed, f"--config_files {listed} holds a YAML list"),
        (tmp_path / "missing.yaml", f"--config_files {tmp_path / 'missing.yaml'} cannot be read (No such file"),
    ]
    for path, words in cases:
        code = main(["--dataset", "Shop", "--model", "SDMTMP", f"--config_files={path}",
                     f"--data_path={tmp_path / 'data'}"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert words in err, err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("model, argv", [
    ("SDMTMP", ["--embedding_size=64", "--gamma1=0.5", "--ablation=w/o-H", "--learning_rate=1e-3",
                "--dropout_type=none", "--sd_detach_teacher=False", "--short_term_ratio=1.0"]),
    ("SASRec", ["--n_heads=2", "--hidden_dropout_prob=0.2", "--gpu_id=0", "--topk=[10]",
                "--valid_metric=Hit@10", "--show_progress=False", "--stopping_step=0", "--eval_step=0"]),
    ("LightGCN", ["--n_layers=0", "--reg_weight=1e-4", "--learning_rate=1"]),
    ("NCL", ["--num_clusters=3", "--train_neg_sample_args={'distribution': 'uniform', 'sample_num': 2}"]),
    ("GRU4RecCPR", ["--reranker_CAN_NUM=500,100,20"]),
])
def test_known_settings_pass(model: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The check refuses nothing a model reads (RecBole's keys, the protocol's, the model's own)."""
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.settings import check_settings

    monkeypatch.setattr(sys, "argv", ["run_recbole_sdmtmp.py", *argv])
    config = build_config(model, "Shop")
    assert set(config.cmd_config_dict) == {arg[2:].split("=")[0] for arg in argv}
    check_settings(config)


def test_tune_refuses_a_model_without_a_search_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recbole_sdmtmp.tune import main as tune_main

    code = tune_main(["--models", "NARM", "--datasets", "Gift_Cards", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no search space for NARM" in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_recommend_refuses_settings_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """recommend scores with the checkpoint's own Config: --embedding_size=3 used to be dropped
    without a word."""
    from recbole_sdmtmp.recommend import main as recommend_main

    out = tmp_path / "recs.csv"
    code = recommend_main(["--checkpoint", str(tmp_path / "any.pth"), "--out", str(out), "--embedding_size=3"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --embedding_size=3: not an option of recommend"), err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--embeding_size=3"], "embeding_size on the command line is not a setting of RecBole, the protocol "
                            "or SDMTMP (did you mean embedding_size?)"),
    (["--n_layers", "2"], "--n_layers 2: not an option of this command"),
])
def test_explain_checks_the_settings_it_trains_with(argv, words, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from recbole_sdmtmp.explain import main as explain_main

    code = explain_main(["--dataset", "Shop", "--user", "u1", f"--data_path={tmp_path / 'data'}", *argv])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the note that a model is trained first
    assert code == 2 and last.startswith("error: ") and words in last, err
    assert "Traceback" not in err and not (tmp_path / "data").exists()
