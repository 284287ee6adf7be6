"""The leak audit on the hand-made data plus a late user u5 (i0 on day 125, i1 on day 130), every
count by hand. Test cases and test times: under the per-user splits u0..u4's last two items
(days 124 + u and 127 + u) and u5's i1 (day 130); under global_time (cuts 125.0 and 127.9) the
users with a day >= 127.9: u1..u5. The topic side-file lists six reviews: u0's items j = 0, 1, 9
(days 100, 103, 127), u1's j = 0 (101), u2's j = 2 (108), u3's j = 3 (112)."""

import pytest

from recbole_sdmtmp import leak_audit
from tests.tiny_data import hand_made_training_fits, write_tiny_dataset, write_tiny_review_vectors

LATE_USER = [("u5", "i0", 3.0, 125.0), ("u5", "i1", 4.0, 130.0)]


@pytest.fixture(scope="module")
def late_root(tmp_path_factory):
    root = write_tiny_dataset(tmp_path_factory.mktemp("audit"))
    with open(root / "tiny" / "tiny.inter", "a") as inter:
        inter.writelines(f"{u}\t{i}\t{r}\t{d}\n" for (u, i, r, d) in LATE_USER)
    write_tiny_review_vectors(root / "tiny")
    return root


@pytest.fixture(autouse=True)
def training_fits(monkeypatch):
    hand_made_training_fits(monkeypatch)


def counts(root, protocol) -> dict:
    rows = leak_audit.audit("tiny", protocol, str(root))
    return {row["input"]: (row["cases"], row["direct"], row["timeline"]) for row in rows}


def test_paper_leaks_other_users_future_through_training_and_the_fit(late_root):
    assert counts(late_root, "paper") == {
        # u5's training interaction (day 125) is after u0's (124) and u1's (125) test time
        "training interactions": (6, 0, 2),
        "case input": (6, 0, 0),
        # the fit read the training split's reviews: u5's (day 125) is after u0's and u1's test time
        "topic fit": (6, 0, 2),
        "topic links": (6, 0, 0),  # training reviews with a topic: the newest is day 112
        "review vectors": (6, 0, 2),  # RGCL's training reviews with text, u5's day 125 among them
    }


def test_the_printed_procedure_is_caught(late_root):
    # 80/20 by user: training j < 8 (newest: u4's day 125, u5's day 125); the window from the
    # complete record holds every case's own test items; links from every review
    assert counts(late_root, "paper_as_printed") == {
        "training interactions": (6, 0, 2),
        "case input": (6, 6, 6),
        # the fit of every review read u0's test review (day 127): u0's own, after u0..u3's test time
        "topic fit": (6, 1, 4),
        "topic links": (6, 1, 4),
        "review vectors": (6, 0, 2),
    }


def test_global_time_has_no_timeline_leak(late_root):
    assert counts(late_root, "global_time") == {
        "training interactions": (5, 0, 0),  # before day 125; test time 127.9
        "case input": (5, 0, 0),  # histories before 127.9
        "topic fit": (5, 0, 0),  # the training reviews, before day 125
        "topic links": (5, 0, 0),
        "review vectors": (5, 0, 0),
    }


def test_the_audit_writes_its_tables(late_root, tmp_path, monkeypatch):
    monkeypatch.setattr(leak_audit, "ensure_prepared", lambda config: None)  # "tiny" has no raw file
    assert leak_audit.main(["--datasets", "tiny", "--protocols", "paper", "global_time", "--data-path",
                            str(late_root), "--results", str(tmp_path)]) == 0
    csv = (tmp_path / "leak_audit.csv").read_text().splitlines()
    assert csv[0] == "dataset,protocol,input,cases,direct,timeline"
    assert "tiny,paper,topic fit,6,0,2" in csv and "tiny,global_time,training interactions,5,0,0" in csv
    assert len(csv) == 1 + 2 * len(leak_audit.INPUTS)
    assert "Produced by `python -m recbole_sdmtmp.leak_audit --datasets tiny --protocols paper global_time`" in (
        tmp_path / "leak_audit.md").read_text()


def test_a_table_is_replaced_only_by_the_command_that_made_it(late_root, tmp_path, monkeypatch):
    monkeypatch.setattr(leak_audit, "ensure_prepared", lambda config: None)
    argv = ["--datasets", "tiny", "--data-path", str(late_root), "--results", str(tmp_path)]
    assert leak_audit.main(argv + ["--protocols", "paper"]) == 0
    before = (tmp_path / "leak_audit.csv").read_text()
    with pytest.raises(SystemExit, match="was produced by `python -m recbole_sdmtmp.leak_audit --datasets tiny "
                                         "--protocols paper`"):
        leak_audit.main(argv + ["--protocols", "global_time"])
    assert (tmp_path / "leak_audit.csv").read_text() == before
    assert leak_audit.main(argv + ["--protocols", "paper"]) == 0  # the same command renders it again
