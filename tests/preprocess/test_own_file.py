"""A review file of the user's own: column mapping, formats, times, optional rating, k-core, the
CLI, and a CSV made here trained end to end through run_recbole_sdmtmp.py."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from dataset_preprocess import cli, pipeline
from dataset_preprocess.readers.amazon import EmptyReviewFile, kcore_filter
from dataset_preprocess.readers.own_file import (
    BadColumns, OwnFileSpec, detect_format, parse_columns, read_own_file,
)

DAY_2021_03_04 = 18_690  # (date(2021, 3, 4) - date(1970, 1, 1)).days; x 86,400 = 1,614,816,000 s

ROWS = [  # customer, sku, stars, when, body
    ("c1", "s1", "5", "2021-03-04", "Great pen. Writes well."),
    ("c1", "s2", "4", "1614816000", "Fine paper."),
    ("c2", "s1", "3", "2021-03-04T12:00:00+02:00", ""),
    ("c2", "s2", "1", "2021-03-05 06:00:00", "Torn, \"bad\", sad."),
]


def write_csv(path: Path, rows=ROWS, sep: str = ",",
              header=("customer", "sku", "stars", "when", "body"), **kwargs) -> Path:
    frame = pd.DataFrame(rows, columns=list(header))
    frame.to_csv(path, sep=sep, index=False, **kwargs)
    return path


MAPPING = "user=customer,item=sku,rating=stars,time=when,text=body"


def read(path: Path, mapping: str = MAPPING, fmt: str | None = None, **kwargs):
    spec = OwnFileSpec(detect_format(path, fmt), parse_columns(mapping),
                       kwargs.pop("time_format", None), kwargs.pop("quotes", None))
    return read_own_file(path, spec, progress=False, **kwargs)


def test_parse_columns() -> None:
    assert parse_columns("user=a, item=b ,rating=,time=t") == {
        "user": "a", "item": "b", "rating": None, "time": "t"}
    assert parse_columns(None) == {}
    for bad in ("user", "who=a", "user=a,user=b", "user="):
        with pytest.raises(BadColumns):
            parse_columns(bad)


@pytest.mark.parametrize(("name", "fmt"), [
    ("r.csv", "csv"), ("r.CSV.gz", "csv"), ("r.tsv", "tsv"), ("r.tab", "tsv"),
    ("r.jsonl", "jsonl"), ("r.json.gz", "jsonl"), ("r.ndjson", "jsonl"), ("r.parquet", "parquet"),
])
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_detect_format_unknown_suffix() -> None:
    with pytest.raises(BadColumns, match="--format"):
        detect_format("reviews.txt")
    assert detect_format("reviews.txt", "tsv") == "tsv"


def test_csv_values_hand_computed(tmp_path: Path) -> None:
    df, report, columns = read(write_csv(tmp_path / "r.csv"))
    assert columns == {"user": "customer", "item": "sku", "rating": "stars", "time": "when",
                       "text": "body"}
    assert df.values.tolist() == [
        ["c1", "s1", 5.0, DAY_2021_03_04, "Great pen. Writes well."],
        ["c1", "s2", 4.0, DAY_2021_03_04, "Fine paper."],
        ["c2", "s1", 3.0, DAY_2021_03_04 + 10 / 24, ""],  # 12:00 at +02:00 is 10:00 UTC
        ["c2", "s2", 1.0, DAY_2021_03_04 + 1.25, 'Torn, "bad", sad.'],
    ]
    assert (report.source_format, report.empty_text, report.lines) == ("csv", 1, 5)


def test_every_format_gives_the_same_reviews(tmp_path: Path) -> None:
    expected = read(write_csv(tmp_path / "r.csv"))[0]
    frame = pd.DataFrame(ROWS, columns=["customer", "sku", "stars", "when", "body"])
    write_csv(tmp_path / "r.tsv", sep="\t", quoting=csv.QUOTE_NONE)  # a quote is a character
    write_csv(tmp_path / "quoted.tsv", sep="\t")  # pandas quotes the text holding '"'
    pd.testing.assert_frame_equal(read(tmp_path / "quoted.tsv", quotes=True)[0], expected)
    with gzip.open(tmp_path / "r.csv.gz", "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, index=False)
    frame.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    for name in ("r.tsv", "r.csv.gz", "r.jsonl", "r.parquet"):
        pd.testing.assert_frame_equal(read(tmp_path / name)[0], expected, obj=name)


def test_typed_json_and_parquet_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"u": [1, 2], "i": ["a", "b"], "r": [4.5, 2],
                          "t": pd.to_datetime(["2021-03-04 00:00", "2021-03-05 12:00"]),
                          "x": ["ok", None]})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    df = read(tmp_path / "r.parquet", "user=u,item=i,rating=r,time=t,text=x")[0]
    assert df.values.tolist() == [["1", "a", 4.5, DAY_2021_03_04, "ok"],
                                  ["2", "b", 2.0, DAY_2021_03_04 + 1.5, ""]]


def test_rating_optional_and_default_names(tmp_path: Path) -> None:
    raw = write_csv(tmp_path / "r.csv", [("u1", "i1", "1614816000", "x")],
                    header=("user_id", "item_id", "timestamp", "review_text"))
    df, _, columns = read(raw, mapping="rating=none")
    assert columns == {"user": "user_id", "item": "item_id", "rating": None,
                       "time": "timestamp", "text": "review_text"}
    assert df["rating"].tolist() == [1.0]
    df, _, columns = read(write_csv(tmp_path / "s.csv"), mapping=MAPPING.replace("stars", ""))
    assert columns["rating"] is None and df["rating"].tolist() == [1.0] * 4


@pytest.mark.parametrize(("key", "header", "row", "hint"), [
    ("rating", ("user_id", "item_id", "timestamp", "review_text"),
     ("u1", "i1", "1614816000", "ok"), "rating=none"),
    ("text", ("user_id", "item_id", "rating", "timestamp"), ("u1", "i1", "4", "1614816000"),
     "text=none"),
])
def test_a_key_neither_given_nor_found_is_an_error(tmp_path: Path, key: str, header: tuple,
                                                   row: tuple, hint: str) -> None:
    """Leaving rating (or text) out used to mean "none" silently: every rating 1, no text."""
    raw = write_csv(tmp_path / "r.csv", [row], header=header)
    with pytest.raises(BadColumns, match=f"no {key} column.*{hint}"):
        read(raw, mapping="")
    df, _, columns = read(raw, mapping=f"{key}=none")
    assert columns[key] is None and len(df) == 1


def test_time_format(tmp_path: Path) -> None:
    raw = write_csv(tmp_path / "r.csv", [("u", "i", "5", "04/03/2021", "t")])
    assert read(raw, time_format="%d/%m/%Y")[0]["timestamp"].tolist() == [DAY_2021_03_04]


def test_digit_dates_need_a_time_format(tmp_path: Path) -> None:
    """20150304 used to be read as Unix seconds (1970-08-22); it is refused without a format,
    read as a date with %Y%m%d (a CSV string or a JSON number alike) and as seconds with unix."""
    from dataset_preprocess.readers.amazon import BadReviewLine

    raw = write_csv(tmp_path / "r.csv", [("u", "i", "5", "20150304", "t")])
    with pytest.raises(BadReviewLine, match="ambiguous"):
        read(raw)
    day_2015_03_04 = 16_498
    assert read(raw, time_format="%Y%m%d")[0]["timestamp"].tolist() == [day_2015_03_04]
    assert read(raw, time_format="unix")[0]["timestamp"].tolist() == [20150304 / 86400]
    (tmp_path / "r.jsonl").write_text(json.dumps({"user_id": "u", "item_id": "i", "rating": 5,
                                                  "timestamp": 20150304, "text": "t"}) + "\n")
    assert read(tmp_path / "r.jsonl", mapping="", time_format="%Y%m%d")[0][
        "timestamp"].tolist() == [day_2015_03_04]
    with pytest.raises(BadReviewLine, match="ambiguous"):
        read(tmp_path / "r.jsonl", mapping="")


def test_json_lines_take_their_columns_from_every_object(tmp_path: Path) -> None:
    """A first object without the text key used to drop the text of every line (and make
    text=review_text "no such column")."""
    lines = [{"reviewerID": "u0", "asin": "i0", "overall": 5, "unixReviewTime": 1614816000}]
    lines += [{"reviewerID": f"u{n}", "asin": "i0", "overall": 4, "unixReviewTime": 1614816000,
               "reviewText": f"Text {n}."} for n in (1, 2)]
    raw = tmp_path / "r.jsonl"
    raw.write_text("".join(json.dumps(x) + "\n" for x in lines))
    df, report, columns = read(raw, mapping="")
    assert columns["text"] == "reviewText"
    assert df["review_text"].tolist() == ["", "Text 1.", "Text 2."] and report.empty_text == 1
    assert read(raw, mapping="text=reviewText")[0]["review_text"].tolist()[1:] == [
        "Text 1.", "Text 2."]


def test_kcore_iterates_until_stable() -> None:
    pairs = [("U1", "I1"), ("U1", "I2"), ("U1", "I3"), ("U2", "I1"), ("U2", "I2"),
             ("U3", "I3"), ("U3", "I4")]
    df = pd.DataFrame([(u, i, 5.0, 0.0, "") for u, i in pairs],
                      columns=["user_id", "item_id", "rating", "timestamp", "review_text"])
    # round 1 drops (U3, I4): I4 has 1; round 2 drops (U3, I3): U3 has 1; round 3 drops
    # (U1, I3): I3 has 1; then every user and item has 2.
    kept = kcore_filter(df, 2)
    assert list(zip(kept["user_id"], kept["item_id"])) == [("U1", "I1"), ("U1", "I2"),
                                                           ("U2", "I1"), ("U2", "I2")]
    from dataset_preprocess.readers.amazon import ReadReport
    report = ReadReport(path=Path("x"), on_bad_line="error")
    kcore_filter(df, 2, report)
    assert report.kcore_removed == {"reviews": 3, "users": 1, "items": 2, "rounds": 3}
    assert len(kcore_filter(df, 1)) == 7
    with pytest.raises(EmptyReviewFile, match="3-core"):
        kcore_filter(df, 3)


def test_cli_own_csv_with_kcore_and_reuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [(f"u{u}", f"i{i}", "4", f"2021-03-{i + 1:02d}", "ok") for u in range(3)
            for i in range(3)] + [("u9", "i0", "2", "2021-03-01", "lonely")]
    raw = write_csv(tmp_path / "shop.csv", rows)
    argv = ["My-Shop.v2", "--raw-file", str(raw), "--columns", MAPPING, "--kcore", "3",
            "--no-topics"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "My-Shop.v2: 9 reviews, 3 users, 3 items" in out
    assert "3-core removed 1 reviews, 1 users, 0 items" in out
    summary = json.loads(Path("dataset/My-Shop.v2/My-Shop.v2.summary.json").read_text())
    assert summary["options"] == {"reader": "own_file", "format": "csv", "kcore": 3,
                                  "columns": parse_columns(MAPPING), "time_format": None}
    assert summary["published_counts"] is None and summary["category"] is None
    inter = pd.read_csv("dataset/My-Shop.v2/My-Shop.v2.inter", sep="\t")
    assert inter.columns.tolist() == ["user_id:token", "item_id:token", "rating:float",
                                      "timestamp:float"]
    assert len(inter) == 9
    # same file, same options: reused; another k: converted again
    monkeypatch.setattr(pipeline, "write_atomic_files", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("converted again")))
    assert cli.main(argv) == 0
    with pytest.raises(AssertionError, match="converted again"):
        cli.main(argv[:-3] + ["--kcore", "2", "--no-topics"])


def test_cli_name_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_csv(tmp_path / "r.csv")
    assert cli.main(["../evil", "--raw-file", str(raw), "--columns", MAPPING, "--out-dir",
                     str(tmp_path / "out"), "--no-topics"]) == 2
    assert "dataset name '../evil'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["NoSuchShop"])  # unknown and no file
    assert "--raw-file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_amazon_category_with_a_csv_is_read_as_own_file(tmp_path: Path) -> None:
    source = pipeline.resolve_source("Gift_Cards", write_csv(tmp_path / "r.csv"), columns=MAPPING)
    assert source.own is not None and source.name == "Gift_Cards"


# -- end to end through the run script ------------------------------------------------------

THEMES = {  # three clear themes, so the real encoder + HDBSCAN find topics in little text
    "strings": ["The strings sound bright and stay in tune.", "These guitar strings broke fast.",
                "Great tone from these nickel strings.", "The strings feel smooth on my fingers."],
    "cable": ["The cable crackles when I move it.", "This audio cable is well shielded.",
              "The cable connector came loose.", "Solid cable, no hum or buzz at all."],
    "tuner": ["The clip tuner is accurate and quick.", "This tuner display is easy to read.",
              "The tuner battery lasts for months.", "My tuner picks up the low E string well."],
}


def shop_rows() -> list[tuple[str, str, str, str, str]]:
    """36 users x 6 of 30 items (each item of one theme; every item reviewed 6 or 12 times),
    2-sentence reviews: 432 sentences."""
    rows = []
    themes = list(THEMES)
    for user in range(36):
        for step in range(6):
            item = (user * 5 + step * 7) % 30
            theme = THEMES[themes[item % 3]]
            text = f"{theme[(user + step) % 4]} {theme[(user + step + 1) % 4]}"
            rows.append((f"cust{user:02d}", f"sku{item:02d}", str(1 + (user + step) % 5),
                         f"2022-01-{1 + step * 4 + user % 3:02d}", text))
    return rows


def test_csv_trains_end_to_end_through_the_run_script(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Default topic settings, which find no topic in the training split's 288 sentences (the error
    says what to do), then smaller ones; the embedding cache starts empty in tmp_path (12 distinct
    sentences to encode)."""
    import sys

    import run_recbole_sdmtmp

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", sys.argv[:1])
    raw = write_csv(tmp_path / "shop.csv", shop_rows())
    common = ["--dataset", "TinyShop", "--raw-file", str(raw), "--columns", MAPPING, "--kcore", "5"]
    assert run_recbole_sdmtmp.main(common + ["--epochs=1"]) == 2
    assert "--min-cluster-size N --min-samples M --refit-topics" in capsys.readouterr().err
    assert cli.main(["TinyShop", "--raw-file", str(raw), "--columns", MAPPING, "--kcore", "5",
                     "--min-cluster-size", "10", "--min-samples", "5", "--refit-topics", "--no-download"]) == 0
    capsys.readouterr()
    code = run_recbole_sdmtmp.main([
        "--dataset", "TinyShop", "--raw-file", str(raw), "--columns", MAPPING, "--kcore", "5",
        "--epochs=2", "--show_progress=False", "--stopping_step=1", "--embedding_size=16"])
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads(printed[printed.index("{"):])
    assert set(result["test_result"]) == {"hit@10", "hit@20", "ndcg@10", "ndcg@20"}
    assert result["epochs"] == 2
    topics = json.loads((tmp_path / "dataset/TinyShop/TinyShop.topics.json").read_text())
    assert topics["n_topics"] >= 2 and topics["n_sentences"] == 432
    summary = json.loads((tmp_path / "dataset/TinyShop/TinyShop.summary.json").read_text())
    assert (summary["reviews"], summary["users"], summary["items"]) == (216, 36, 30)
    assert Path(result["checkpoint"]).with_suffix(".json").is_file()


def test_too_little_text_for_topics_writes_nothing(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_csv(tmp_path / "r.csv")  # 4 reviews (one empty), 4 sentences: topics need 60
    assert cli.main(["Small", "--raw-file", str(raw), "--columns", MAPPING,
                     "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Small: 4 review sentences, but topic modelling needs at least 60" in err
    assert "nothing was written" in err and "--no-topics" in err
    assert not (tmp_path / "out").exists()
