"""Raw Amazon reviews -> RecBole atomic files: the real Instrument file, every bad-input case
of the policy in ``dataset_preprocess.readers.amazon``, raw-file discovery, atomic writes and the CLI."""

from __future__ import annotations

import functools
import gzip
import json
import os
import subprocess
import sys
import threading
import types
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataset_preprocess import pipeline, registry
from dataset_preprocess.readers import amazon
from dataset_preprocess.readers.amazon import BadReviewLine, EmptyReviewFile, read_reviews
from dataset_preprocess.atomic_io import atomic_write, atomic_write_json
from dataset_preprocess.cli import main
from dataset_preprocess.pipeline import prepare_dataset
from tests.conftest import SHARED_DIR
from dataset_preprocess.registry import RawDataMissing, find_raw_file, resolve

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTRUMENT_SHA256 = "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"
# The .inter of the real Instrument file, byte for byte as every version since the first wrote it
# (whole-day times are exact in float32, so storing float32 days changed none of its bytes).
INSTRUMENT_INTER_SHA256 = "cdb63639f2b0e8d9592db32f3c28cce7e4ae0a9647732da057439e8ef9c68e31"
DROP = object()  # review(...) value meaning "leave the field out"


def review(**fields: Any) -> dict[str, Any]:
    base = {"reviewerID": "U1", "asin": "I1", "helpful": [0, 0], "reviewText": "Fine strings.",
            "overall": 4.0, "summary": "ok", "unixReviewTime": 1393545600,
            "reviewTime": "02 28, 2014"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


def write_raw(path: Path, lines: list[Any], compress: bool = False) -> Path:
    """One line per entry: dicts are dumped as JSON, strings written as they are."""
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no dataset/raw and no $SDMTMP_RAW_DIR."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(registry.RAW_DIR_ENV, raising=False)
    return tmp_path


# -- the real Instrument file ---------------------------------------------------------------

@pytest.fixture(scope="module")
def instrument_dir(instrument_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted")
    return prepare_dataset("Instrument", out_dir=out, raw_file=instrument_raw, topics=False)


def test_real_instrument_inter(instrument_dir: Path) -> None:
    inter = pd.read_csv(instrument_dir / "Instrument.inter", sep="\t",
                        dtype={"user_id:token": str, "item_id:token": str})
    assert list(inter.columns) == amazon.INTER_HEADER
    assert len(inter) == 10_261
    assert inter["user_id:token"].nunique() == 1_429
    assert inter["item_id:token"].nunique() == 900
    assert inter["rating:float"].value_counts().to_dict() == {
        1.0: 217, 2.0: 250, 3.0: 772, 4.0: 2_084, 5.0: 6_938}
    ts = inter["timestamp:float"].to_numpy()
    assert ts.min() == 1095465600 / 86400 and ts.max() == 1405987200 / 86400
    assert np.array_equal(ts.astype(np.float32).astype(np.float64), ts)
    assert inter.duplicated(["user_id:token", "item_id:token"]).sum() == 0
    key = list(zip(inter["user_id:token"], ts, inter["item_id:token"]))
    assert key == sorted(key)


def test_real_instrument_summary(instrument_dir: Path) -> None:
    summary = json.loads((instrument_dir / "Instrument.summary.json").read_text())
    assert summary["matches_published_counts"] is True
    assert (summary["reviews"], summary["users"], summary["items"]) == (10_261, 1_429, 900)
    assert summary["rating_histogram"] == {"1": 217, "2": 250, "3": 772, "4": 2084, "5": 6938}
    assert summary["empty_text"] == 7
    assert summary["source_sha256"] == INSTRUMENT_SHA256
    assert summary["inter_sha256"] == INSTRUMENT_INTER_SHA256
    assert amazon.sha256_file(instrument_dir / "Instrument.inter") == INSTRUMENT_INTER_SHA256
    assert summary["users_all_one_time"] == 142 and summary["kcore_check"]["is_kcore"] is True
    assert summary["source_format"] == "2014"
    assert summary["time_range_iso"] == ["2004-09-18", "2014-07-22"]
    assert summary["timestamps_exact_in_float32"] is True
    assert summary["skipped"] == {} and summary["duplicates_dropped"] == 0


def test_real_instrument_loads_in_recbole(instrument_dir: Path) -> None:
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.model.general_recommender import BPR

    config = Config(model=BPR, dataset="Instrument", config_dict={
        "data_path": str(instrument_dir.parent), "normalize_all": False, "show_progress": False,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]}})
    dataset = create_dataset(config)
    assert dataset.inter_num == 10_261
    assert (dataset.user_num, dataset.item_num) == (1_429 + 1, 900 + 1)  # + padding id
    ts = dataset.inter_feat["timestamp"].to_numpy()
    assert ts.min() == 1095465600 / 86400 and ts.max() == 1405987200 / 86400


# -- bad-input policy -------------------------------------------------------------------------

BAD_LINES = [
    ("malformed_json", '{"reviewerID": "U9", "asin": '),
    ("malformed_json", "[1, 2, 3]"),
    ("missing_field", review(asin=DROP)),
    ("missing_field", review(reviewerID=None)),
    ("missing_field", review(overall=DROP)),
    ("missing_field", review(unixReviewTime=DROP)),
    ("bad_id", review(reviewerID="U 9")),
    ("bad_id", review(asin=12345)),
    ("bad_rating", review(overall="five")),
    ("bad_rating", review(overall=0)),
    ("bad_rating", review(overall=5.5)),
    ("bad_rating", review(overall=True)),
    ("bad_rating", review(overall=float("nan"))),
    ("bad_time", review(unixReviewTime="yesterday")),
    ("bad_time", review(unixReviewTime=-1)),
    ("bad_time", review(unixReviewTime=1393545600000)),  # milliseconds
    ("bad_text", review(reviewText=["not", "text"])),
]


@pytest.mark.parametrize(("reason", "bad"), BAD_LINES)
def test_bad_line_is_an_error_naming_file_and_line(tmp_path: Path, reason: str, bad: Any) -> None:
    raw = write_raw(tmp_path / "r.json", [review(asin="I1"), bad, review(asin="I2")])
    with pytest.raises(BadReviewLine) as err:
        read_reviews(raw)
    assert isinstance(err.value, ValueError)
    assert (err.value.line_no, err.value.reason) == (2, reason)
    assert str(raw) in str(err.value) and "line 2" in str(err.value)


@pytest.mark.parametrize(("reason", "bad"), BAD_LINES)
def test_bad_line_is_skipped_and_counted(tmp_path: Path, reason: str, bad: Any) -> None:
    raw = write_raw(tmp_path / "r.json", [review(asin="I1"), bad, review(asin="I2")])
    df, report = read_reviews(raw, on_bad_line="skip")
    assert list(df["item_id"]) == ["I1", "I2"]
    assert report.skipped == {reason: 1}


def test_skips_reach_log_and_summary(isolated: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = write_raw(isolated / "r.json", [review(asin="I1"), "{oops", review(overall=9),
                                          review(overall=7), review(asin="I2")])
    out = prepare_dataset("Instrument", out_dir="out", raw_file=raw, on_bad_line="skip",
                          download=False, topics=False)
    summary = json.loads((out / "Instrument.summary.json").read_text())
    assert summary["skipped"] == {"bad_rating": 2, "malformed_json": 1}
    assert summary["reviews"] == 2 and summary["matches_published_counts"] is False
    assert "bad_rating=2, malformed_json=1" in caplog.text
    assert "line 3" in caplog.text


def test_empty_or_missing_text_is_kept(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "r.json", [
        review(asin="I1", reviewText=""), review(asin="I2", reviewText="  \n "),
        review(asin="I3", reviewText=None), review(asin="I4", reviewText=DROP),
        review(asin="I5", reviewText="Has words.")])
    df, report = read_reviews(raw)
    assert list(df["review_text"]) == ["", "", "", "", "Has words."]
    assert report.empty_text == 4


def test_2018_format_without_review_text(tmp_path: Path) -> None:
    def review_2018(**fields: Any) -> dict[str, Any]:
        return review(helpful=DROP, verified=True, vote="3", style={"Format:": " Audio CD"},
                      **fields)

    raw = write_raw(tmp_path / "Digital_Music_5.json.gz", [
        review_2018(asin="I1", reviewText=DROP), review_2018(asin="I2", summary=DROP)],
        compress=True)
    df, report = read_reviews(raw)
    assert report.source_format == "2018"
    assert list(df["review_text"]) == ["", "Fine strings."]


def test_plain_json_and_gzip_detected_by_content(tmp_path: Path) -> None:
    lines = [review(asin="I1"), review(asin="I2", overall=2)]
    plain = write_raw(tmp_path / "plain.json", lines)
    gz_without_suffix = write_raw(tmp_path / "packed.json", lines, compress=True)
    plain_with_gz_suffix = write_raw(tmp_path / "fake.json.gz", lines)
    frames = [read_reviews(p)[0] for p in (plain, gz_without_suffix, plain_with_gz_suffix)]
    assert gz_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    for df in frames:
        pd.testing.assert_frame_equal(df, frames[0])
    assert list(frames[0]["rating"]) == [4.0, 2.0]
    assert list(frames[0].columns) == amazon.COLUMNS


def test_duplicates_keep_latest_review(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "r.json", [
        review(unixReviewTime=86400 * 100, overall=1),
        review(unixReviewTime=86400 * 300, overall=3),  # latest: kept
        review(unixReviewTime=86400 * 200, overall=2),
        review(reviewerID="U2", unixReviewTime=86400, overall=4),
        review(reviewerID="U2", unixReviewTime=86400, overall=5),  # same time, later line: kept
    ])
    df, report = read_reviews(raw)
    assert report.duplicates_dropped == 3
    assert df[["user_id", "rating", "timestamp"]].values.tolist() == [
        ["U1", 3.0, 300.0], ["U2", 5.0, 1.0]]


def test_odd_unicode_survives(isolated: Path) -> None:
    line = json.dumps(review(reviewText="Cafe\u0301 \U0001f3b8 \u0645\u0645\u062a\u0627\u0632"
                                        "\x00 bell\x07 tab\there\nnext \ud83d lone"))
    raw = isolated / "r.json"
    raw.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n"
                    + json.dumps(review(asin="I2", reviewText="x \u00ff")).encode() + b"\n")
    df, report = read_reviews(raw)
    texts = df.set_index("item_id")["review_text"]
    assert texts["I1"] == ("Caf\u00e9 \U0001f3b8 \u0645\u0645\u062a\u0627\u0632"
                           " bell tab\there\nnext \ufffd lone")
    assert texts["I2"] == "x \u00ff"
    assert report.texts_normalised == 1
    for text in df["review_text"]:
        text.encode("utf-8")
    out = prepare_dataset("Instrument", out_dir="out", raw_file=raw, topics=False)
    assert (out / "Instrument.inter").read_text().count("\n") == 3


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "r.json", ["", review(asin="I1"), "   ", "\t", review(asin="I2")])
    df, report = read_reviews(raw)
    assert len(df) == 2 and report.blank_lines == 3 and not report.skipped


@pytest.mark.parametrize("lines", [[], ["", "  "], ["{bad", review(overall=0)]])
def test_no_valid_review_is_an_error(tmp_path: Path, lines: list[Any]) -> None:
    raw = write_raw(tmp_path / "r.json.gz", lines, compress=True)
    with pytest.raises(EmptyReviewFile, match="no valid review in .*r.json.gz"):
        read_reviews(raw, on_bad_line="skip")


def test_fractional_days_are_stored_as_recbole_holds_them(tmp_path: Path) -> None:
    """A time one second past midnight: the .inter holds the float32 days RecBole keeps (no
    hidden rounding on load), and the summary says the time was rounded."""
    raw = write_raw(tmp_path / "r.json", [review(unixReviewTime=1095465601)])
    out = prepare_dataset("Office", out_dir=tmp_path / "out", raw_file=raw, topics=False)
    exact = pd.read_csv(out / "Office.inter", sep="\t", float_precision="round_trip")
    stored = exact.loc[0, "timestamp:float"]
    assert stored == float(np.float32(1095465601 / 86400)) == 12679.0  # 84 s steps in 2004
    assert float(np.float32(stored)) == stored
    summary = json.loads((out / "Office.summary.json").read_text())
    assert summary["timestamps_exact_in_float32"] is False and summary["times_rounded"] == 1


# -- reuse, topics hook and CLI -----------------------------------------------------------------

@dataclass
class FakeTopicConfig:
    encoder: str = "all-MiniLM-L6-v2"
    min_cluster_size: int = 30
    cache_dir: str = "cache/embeddings"
    batch_size: int = 64


@pytest.fixture
def fake_topics(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("dataset_preprocess.topics.fit")

    def build_topics(reviews: pd.DataFrame, **kwargs: Any) -> None:
        calls.append({"reviews": reviews, **kwargs})

    module.TopicConfig = FakeTopicConfig  # type: ignore[attr-defined]
    module.build_topics = build_topics  # type: ignore[attr-defined]
    module.minimum_sentences = lambda config: 1  # type: ignore[attr-defined]
    module.sentence_encoder = lambda config: None  # type: ignore[attr-defined]  (review vectors)
    monkeypatch.setitem(sys.modules, "dataset_preprocess.topics.fit", module)
    vectors = types.ModuleType("dataset_preprocess.topics.review_vectors")  # no encoder in these tests
    vectors.build_review_vectors = lambda reviews, *args, **kwargs: None  # type: ignore[attr-defined]
    vectors.recorded_inter_sha256 = lambda *args: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dataset_preprocess.topics.review_vectors", vectors)
    monkeypatch.setattr(pipeline, "build_review_vectors", vectors.build_review_vectors)
    monkeypatch.setattr(pipeline, "recorded_inter_sha256", vectors.recorded_inter_sha256)
    return calls


def test_reuse_force_and_topics_hook(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                     fake_topics: list[dict[str, Any]]) -> None:
    raw = write_raw(isolated / "r.json", [review(asin="I1"), review(asin="I2")])
    out = prepare_dataset("instrument", out_dir="out", raw_file=raw)
    assert len(fake_topics) == 1
    call = fake_topics[0]
    assert (call["out_dir"], call["name"], call["config"]) == (out, "Instrument",
                                                               FakeTopicConfig())
    assert list(call["reviews"].columns) == amazon.COLUMNS

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(pipeline, "write_atomic_files", fail)
    prepare_dataset("instrument", out_dir="out", raw_file=raw, topics=False)  # reused
    with pytest.raises(AssertionError, match="converted again"):
        prepare_dataset("instrument", out_dir="out", raw_file=raw, topics=False, force=True)
    with (out / "Instrument.inter").open("a") as fh:  # a tampered .inter is not trusted
        fh.write("U9\tI9\t1.0\t0.0\n")
    with pytest.raises(AssertionError, match="converted again"):
        prepare_dataset("instrument", out_dir="out", raw_file=raw, topics=False)


def test_cli_success_maps_topic_options(isolated: Path, capsys: pytest.CaptureFixture[str],
                                        fake_topics: list[dict[str, Any]]) -> None:
    raw = write_raw(isolated / "r.json", [review(asin="I1"), "{", review(asin="I2")])
    code = main(["Musical_Instruments", "--raw-file", str(raw), "--out-dir", "out",
                 "--on-bad-line", "skip", "--encoder", "enc", "--min-cluster-size", "7"])
    assert code == 0
    assert fake_topics[0]["config"] == FakeTopicConfig(encoder="enc", min_cluster_size=7)
    printed = capsys.readouterr().out
    assert "Instrument: 2 reviews, 1 users, 2 items" in printed
    assert "malformed_json=1" in printed and "2014-02-28 .. 2014-02-28" in printed


def test_cli_bad_line_exits_non_zero_writing_nothing(
        isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_raw(isolated / "r.json", [review(asin="I1"), review(overall="x")])
    assert main(["Office", "--raw-file", str(raw), "--out-dir", "out", "--no-topics"]) == 2
    assert "line 2" in capsys.readouterr().err
    assert not (isolated / "out").exists()


def test_cli_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["Bookz"])  # not a category, and no --raw-file of the user's own
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Instrument" in err and "Gift_Cards" in err and "--raw-file" in err


# -- finding and downloading raw files ----------------------------------------------------------

def test_missing_raw_without_download(isolated: Path) -> None:
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(RawDataMissing) as err:
        find_raw_file("DigitalMusic", raw_dirs=[empty], download=False)
    message = str(err.value)
    music = registry.DIGITAL_MUSIC
    for part in (music.file_2014, music.url_2014, music.file_2018, music.url_2018, "--raw-file",
                 str(empty)):
        assert part in message
    assert "\n" not in message


def test_missing_raw_when_download_fails(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "URL_2014", "http://127.0.0.1:9/x")
    with pytest.raises(RawDataMissing) as err:
        find_raw_file("Office")
    assert "http://127.0.0.1:9/x" in str(err.value)
    assert "reviews_Office_Products_5.json.gz" in str(err.value)
    assert list(isolated.iterdir()) == []


def test_missing_raw_file_argument(isolated: Path) -> None:
    with pytest.raises(RawDataMissing, match="nope.json.*reviews_Office_Products_5"):
        find_raw_file("Office", raw_file=isolated / "nope.json")


def test_search_order_and_accepted_names(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, env = isolated / "first", isolated / "env"
    first.mkdir()
    env.mkdir()
    (env / "Digital_Music_5.json").write_text("{}")
    monkeypatch.setenv(registry.RAW_DIR_ENV, str(env))
    assert find_raw_file("music", raw_dirs=[first], download=False) == env / "Digital_Music_5.json"
    (first / "reviews_Digital_Music_5.json").write_text("{}")
    assert find_raw_file("music", raw_dirs=[first], download=False) == (
        first / "reviews_Digital_Music_5.json")


def test_shared_folder_holds_the_instrument_file(isolated: Path, instrument_raw: Path) -> None:
    assert find_raw_file("Instrument", download=False).resolve() == instrument_raw.resolve()


@pytest.fixture
def http_dir(tmp_path: Path) -> Any:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_then_convert(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                               http_dir: tuple[Path, str]) -> None:
    served, base = http_dir
    write_raw(served / "Office_Products.gz", [review(asin="I1"), review(asin="I2")],
              compress=True)
    write_raw(served / "Digital_Music.gz", [review()])  # not gzip: refused
    monkeypatch.setattr(registry, "URL_2014", base + "/{category}.gz")
    path = find_raw_file("Office")
    assert path == Path("dataset/raw/reviews_Office_Products_5.json.gz")
    assert len(read_reviews(path)[0]) == 2
    with pytest.raises(RawDataMissing, match="did not return a gzip file"):
        find_raw_file("DigitalMusic")
    assert sorted(p.name for p in (isolated / "dataset" / "raw").iterdir()) == [
        "reviews_Office_Products_5.json.gz"]


def test_cli_missing_raw_subprocess(tmp_path: Path) -> None:
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != registry.RAW_DIR_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "dataset_preprocess", "DigitalMusic", "--out-dir", str(out),
         "--raw-dir", str(empty), "--no-download"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert registry.DIGITAL_MUSIC.url_2014 in result.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# -- atomic writes --------------------------------------------------------------------------

def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.inter"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half a file")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_keeps_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"good": True})
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "wb") as fh:
            fh.write(b"half")
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"good": True}
    assert list(tmp_path.iterdir()) == [target]
    atomic_write_json(target, {"good": "again"})
    assert json.loads(target.read_text()) == {"good": "again"}


# -- registry -------------------------------------------------------------------------------

@pytest.mark.parametrize(("alias", "name"), [
    ("Instrument", "Instrument"), ("Musical_Instruments", "Instrument"),
    ("musical-instruments", "Instrument"), ("INSTRUMENTS", "Instrument"),
    ("Digital_Music", "DigitalMusic"), ("digital music", "DigitalMusic"),
    ("digitalmusic", "DigitalMusic"), ("Office_Products", "Office"), ("office", "Office"),
])
def test_alias_resolution(alias: str, name: str) -> None:
    assert resolve(alias).name == name


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="Instrument.*DigitalMusic.*Office.*Books.*Gift_Cards"):
        resolve("Bookz")


def test_registry_sources_and_counts() -> None:
    inst = registry.INSTRUMENT
    assert inst.url_2014 == ("http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
                             "reviews_Musical_Instruments_5.json.gz")
    assert inst.url_2018 == ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
                             "categoryFilesSmall/Musical_Instruments_5.json.gz")
    assert [inst.file_2014, inst.file_2018] == ["reviews_Musical_Instruments_5.json.gz",
                                                "Musical_Instruments_5.json.gz"]
    paper = {name: tuple(registry.DATASETS[name].published_counts.values())
             for name in registry.PAPER_DATASETS}
    assert paper == {"Instrument": (10_261, 1_429, 900), "DigitalMusic": (64_706, 5_541, 3_568),
                     "Office": (53_258, 4_905, 2_420)}


# -- warnings a researcher needs -----------------------------------------------------------------

def test_kcore_on_an_amazon_category_compares_the_lines_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--kcore 5 on Gift_Cards (whose 2,972 lines match the published count) used to say the
    lines read differ from the published counts, comparing the filtered reviews."""
    raw = SHARED_DIR / "data" / "amazon" / "Gift_Cards_5.json.gz"
    assert main(["Gift_Cards", "--raw-file", str(raw), "--out-dir", str(tmp_path),
                 "--no-topics", "--kcore", "5"]) == 0
    printed = capsys.readouterr().out
    assert "lines read match the published 2018 5-core counts: 2,972 reviews" in printed
    summary = json.loads((tmp_path / "Gift_Cards" / "Gift_Cards.summary.json").read_text())
    assert summary["matches_published_counts"] is True and summary["kcore_removed"]["reviews"] > 0
    assert summary["kcore_check"]["is_kcore"] is True


def test_amazon_file_no_longer_a_kcore_after_dedup_is_flagged(
        isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """5 users x 5 items, but U0 reviewed I0 twice instead of I4: after the repeated pair is
    dropped U0 and I4 have 4 interactions each."""
    lines = [review(reviewerID=f"U{u}", asin=f"I{i}", unixReviewTime=1393545600 + 86400 * i)
             for u in range(5) for i in range(5) if (u, i) != (0, 4)]
    lines.append(review(reviewerID="U0", asin="I0", unixReviewTime=1393545600 + 86400 * 9))
    raw = write_raw(isolated / "r.json", lines)
    assert main(["Instrument", "--raw-file", str(raw), "--out-dir", "out", "--no-topics"]) == 0
    printed = capsys.readouterr().out
    assert ("warning: not a 5-core after dropping repeated (user, item) pairs: 1 user and 1 "
            "item have fewer than 5 interactions (--kcore 5 restores it)") in printed
    summary = json.loads((isolated / "out/Instrument/Instrument.summary.json").read_text())
    assert summary["kcore_check"] == {"k": 5, "users_below_k": 1, "items_below_k": 1,
                                      "is_kcore": False}
    assert summary["warnings"] == [printed.split("warning: ")[1].split("\n")[0]]


def test_users_whose_reviews_share_one_time_are_counted(
        isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Most 2018 users have every review on one day; their order is then by item id."""
    lines = [review(reviewerID="U1", asin=a) for a in ("I2", "I1", "I3")]
    lines += [review(reviewerID="U2", asin="I1", unixReviewTime=1393545600 + 86400 * d)
              for d in (0,)] + [review(reviewerID="U2", asin="I2", unixReviewTime=1393632000)]
    lines += [review(reviewerID="U3", asin="I1")]
    raw = write_raw(isolated / "r.json", lines)
    assert main(["Instrument", "--raw-file", str(raw), "--out-dir", "out", "--no-topics"]) == 0
    printed = capsys.readouterr().out
    assert ("warning: 1 of 2 users with 2+ reviews (50.0%) have every review at one time; their "
            "order is by item id") in printed
    summary = json.loads((isolated / "out/Instrument/Instrument.summary.json").read_text())
    assert (summary["users_all_one_time"], summary["users_with_2_or_more"]) == (1, 2)
    inter = pd.read_csv(isolated / "out/Instrument/Instrument.inter", sep="\t")
    assert inter["item_id:token"].tolist()[:3] == ["I1", "I2", "I3"]  # U1's tie, by item id
