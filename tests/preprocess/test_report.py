"""Dataset statistics and topic reports: NPMI and diversity against hand-computed values, and
the report files of a small prepared dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset_preprocess.pipeline import prepare_dataset
from dataset_preprocess.report import (
    bertopic_clean, build_report, main, npmi_coherence, prepared_datasets, topic_diversity,
    write_reports,
)
from dataset_preprocess.topics.files import topic_fit_id
from dataset_preprocess.topics.sentences import split_reviews

SENTENCES = ["Apple banana.", "apple, BANANA!", "The apple and a cherry.", "dog"]
# P(apple) = 3/4, P(banana) = 2/4, P(cherry) = P(dog) = 1/4; P(apple, banana) = 2/4,
# P(apple, cherry) = 1/4; banana-cherry and cherry-dog never share a sentence.
NPMI_AB = math.log(0.5 / (0.75 * 0.5)) / -math.log(0.5)  # 0.4150
NPMI_AC = math.log(0.25 / (0.75 * 0.25)) / -math.log(0.25)  # 0.2075


def test_npmi_hand_computed() -> None:
    never = [0, 0]
    scores = npmi_coherence([["apple", "banana"], ["banana", "cherry"],
                             ["apple", "banana", "cherry"], ["cherry", "dog"], ["dog"]],
                            SENTENCES, never=never)
    assert never == [3, 6]  # b-c, b-c again, c-d of 1 + 1 + 3 + 1 pairs
    assert scores[0] == pytest.approx(NPMI_AB) and NPMI_AB == pytest.approx(0.41504, abs=1e-5)
    assert scores[1] == -1.0
    assert scores[2] == pytest.approx((NPMI_AB + NPMI_AC - 1.0) / 3)
    assert scores[3] == -1.0
    assert math.isnan(scores[4])


def test_npmi_reads_only_the_top_words_and_perfect_pairs() -> None:
    # the 3rd word is beyond n_words=2; words in every sentence are perfectly associated
    assert npmi_coherence([["apple", "banana", "dog"]], SENTENCES, n_words=2) == [
        pytest.approx(NPMI_AB)]
    assert npmi_coherence([["x1", "y1"]], ["x1 y1", "y1 x1."]) == [1.0]


def test_diversity_hand_computed() -> None:
    assert topic_diversity([["a", "b", "c"], ["a", "d", "e"]]) == 5 / 6
    assert topic_diversity([["a", "b", "c"], ["a", "d", "e"]], n_words=1) == 1 / 2
    assert topic_diversity([list("abcdefghijklmnopqrstuvwxyz")]) == 1.0  # top 25 of 26
    assert math.isnan(topic_diversity([]))


@pytest.fixture
def tiny_prepared(tmp_path: Path) -> Path:
    """A prepared own dataset (3 users, 2 items, 5 reviews) with a hand-written topics.json."""
    rows = [("u1", "i1", "5", "2021-03-01", "Apple banana. Dog."),
            ("u1", "i2", "4", "2021-03-02", "Apple cherry."),
            ("u2", "i1", "3", "2021-03-03", "apple banana"),
            ("u3", "i1", "2", "2021-03-04", ""),
            ("u3", "i2", "1", "2021-03-05", "banana")]
    raw = tmp_path / "tiny.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "review_text"]
                 ).to_csv(raw, index=False)
    data = tmp_path / "dataset"
    out = prepare_dataset("Tiny", out_dir=data, raw_file=raw, topics=False)
    reviews = pd.DataFrame([r[:2] + (float(r[2]), 0.0, r[4]) for r in rows],
                           columns=["user_id", "item_id", "rating", "timestamp", "review_text"])
    n_sentences = len(split_reviews(reviews))
    assert n_sentences == 5  # "Apple banana." "Dog." "Apple cherry." "apple banana" "banana"
    topics = [{"topic_id": 0, "size": 3, "n_users": 3, "n_items": 2,
               "words": ["apple", "banana"], "words_25": ["apple", "banana"]},
              {"topic_id": 1, "size": 1, "n_users": 1, "n_items": 1,
               "words": ["cherry", "apple"], "words_25": ["cherry", "apple", "dog"]}]
    meta = {"n_sentences": n_sentences, "n_reviews": 5, "n_topics": 2, "outlier_ratio": 0.2,
            "encoder": "test", "seed": 1, "config": {}, "topics": topics}
    (out / "Tiny.topics.json").write_text(json.dumps(meta))
    (out / "Tiny.review_topic").write_text("user_id:token\titem_id:token\ttopic_id:token\tsentences:float\n"
                                           "u1\ti1\t0\t1\n")
    np.save(out / "Tiny.topic_vec.npy", np.zeros((2, 3), dtype=np.float32))
    return data


def test_report_of_a_small_dataset(tiny_prepared: Path, tmp_path: Path) -> None:
    report = build_report("Tiny", tiny_prepared)
    assert (report.users, report.items, report.interactions) == (3, 2, 5)
    assert report.density == 5 / 6 and report.per_user == 5 / 3 and report.per_item == 5 / 2
    assert report.sentences_per_review == 1.0 and report.n_topics == 2
    # sentences: apple 3/5, banana 3/5, cherry 1/5; apple+banana 2/5, apple+cherry 1/5
    ab = math.log(0.4 / (0.6 * 0.6)) / -math.log(0.4)
    ac = math.log(0.2 / (0.6 * 0.2)) / -math.log(0.2)
    assert [t["npmi"] for t in report.topics] == [pytest.approx(ab), pytest.approx(ac)]
    assert report.coherence == pytest.approx((ab + ac) / 2)
    # reviews with text as documents (4): apple 3/4, banana 3/4, cherry 1/4; a+b 2/4, a+c 1/4
    ab_r = math.log(0.5 / (0.75 * 0.75)) / -math.log(0.5)
    ac_r = math.log(0.25 / (0.75 * 0.25)) / -math.log(0.25)
    assert report.coherence_review == pytest.approx((ab_r + ac_r) / 2)
    assert report.diversity == 4 / 5 and report.diversity_n_words == 25

    out = tmp_path / "results"
    write_reports(["Tiny"], tiny_prepared, out, command="CMD")
    table = (out / "datasets.md").read_text()
    assert "| Tiny | 3 | 2 | 5 | 83.33% | 1.67 | 2.50 | 1.00 | 2 | 20.0% |" in table
    assert "Last run: `CMD`" in table
    assert "- **Tiny**: own file (csv), tiny.csv." in table
    assert f"Topic fit `{topic_fit_id(tiny_prepared / 'Tiny', 'Tiny')}`" in table and report.topic_fit
    page = (out / "topics" / "Tiny.md").read_text()
    assert "| 0 | 3 | 3 | 2 |" in page and "apple, banana" in page
    assert "![largest topics](Tiny_topics.png)" in page
    assert (out / "topics" / "Tiny_topics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_finds_prepared_datasets(tiny_prepared: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert prepared_datasets(tiny_prepared) == ["Tiny"]
    out = tmp_path / "r"
    assert main(["--data-dir", str(tiny_prepared), "--out-dir", str(out)]) == 0
    assert "Tiny: 3 users, 2 items, 5 interactions, 2 topics" in capsys.readouterr().out
    assert main(["--datasets", "Nope", "--data-dir", str(tiny_prepared),
                 "--out-dir", str(tmp_path / "none")]) == 2
    assert "python -m dataset_preprocess Nope" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_npmi_tokenises_like_bertopic() -> None:
    """BERTopic strips punctuation before counting words, so "great..love" is the topic word
    "greatlove"; NPMI must find it in the sentences (it scored -1 before)."""
    import numpy as np
    from bertopic import BERTopic

    sentences = ["Great..love these strings!", "great..love the strings", "The cable broke."]
    ours = [bertopic_clean(s) for s in sentences + ["tab\there\nnew-line, café"]]
    theirs = BERTopic(language="english")._preprocess_text(
        np.array(sentences + ["tab\there\nnew-line, café"]))
    assert ours == theirs and ours[0] == "Greatlove these strings"
    # P(greatlove) = P(strings) = P(both) = 2/3: perfectly associated
    assert npmi_coherence([["greatlove", "strings"]], sentences) == [pytest.approx(1.0)]


def _other_row_file(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "datasets.md").write_text(
        "# Datasets\n\n"
        "| dataset | users | items | interactions | density | interactions / user | "
        "interactions / item | sentences / review | topics | outlier share | coherence (NPMI) "
        "| NPMI, review = document | diversity |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| Other | 9 | 9 | 9 | 1% | 1 | 1 | 1 | 1 | 1% | 0.1 | 0.1 | 0.1 |\n\n"
        "Sources: Other: Amazon 2014 5-core, other.json.gz.\n")


def test_report_keeps_the_rows_of_datasets_not_named(tiny_prepared: Path,
                                                      tmp_path: Path) -> None:
    """`report --datasets Tiny` used to overwrite datasets.md with the Tiny row alone."""
    out = tmp_path / "results"
    _other_row_file(out)
    write_reports(["Tiny"], tiny_prepared, out, command="CMD")
    write_reports(["Tiny"], tiny_prepared, out, command="CMD")  # replaced, not repeated
    table = (out / "datasets.md").read_text()
    assert "| Other | 9 | 9 | 9 |" in table and table.count("| Tiny | 3 | 2 | 5 |") == 1
    assert table.index("| Other |") < table.index("| Tiny |")
    assert "- **Other**: Amazon 2014 5-core, other.json.gz." in table


def test_report_refuses_an_out_dir_holding_datasets(tiny_prepared: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The converter's --out-dir is the report's --data-dir: given as --out-dir, the report
    used to read dataset/ and write its markdown and charts into the data folder."""
    monkeypatch.chdir(tiny_prepared.parent)  # ./dataset holds Tiny
    for out_dir in ("dataset", str(tiny_prepared)):
        with pytest.raises(SystemExit) as exit_info:
            main(["--out-dir", out_dir])
        assert exit_info.value.code == 2
    assert not (tiny_prepared / "datasets.md").exists()
    assert not (tiny_prepared / "topics").exists()
    # both given: written where told
    assert main(["--data-dir", "dataset", "--out-dir", "dataset"]) == 0
    assert (tiny_prepared / "datasets.md").is_file()


def test_report_repeats_the_converter_warnings(tmp_path: Path) -> None:
    """Ties (every review of a user on one day) reach results/datasets.md."""
    rows = [("u1", "i1", "5", "2021-03-01", "ok"), ("u1", "i2", "4", "2021-03-01", "ok"),
            ("u2", "i1", "3", "2021-03-02", "ok"), ("u2", "i2", "3", "2021-03-03", "ok")]
    raw = tmp_path / "ties.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "review_text"]
                 ).to_csv(raw, index=False)
    prepare_dataset("Ties", out_dir=tmp_path / "data", raw_file=raw, topics=False)
    summary = json.loads((tmp_path / "data/Ties/Ties.summary.json").read_text())
    assert summary["users_all_one_time"] == 1 and summary["users_with_2_or_more"] == 2
    write_reports(["Ties"], tmp_path / "data", tmp_path / "results", command="CMD")
    table = (tmp_path / "results" / "datasets.md").read_text()
    assert ("Warning: 1 of 2 users with 2+ reviews (50.0%) have every review at one time; "
            "their order is by item id") in table
    assert summary["warnings"][0] in table
