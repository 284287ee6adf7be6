"""The bad-input suite: every kind of bad raw file, through the CLI.

Each kind is one test (a parametrised case): the command exits with status 2, prints one
paragraph starting "error:" that names the file (and the line, where there is one), and writes
nothing. Line-level kinds are also skipped and counted with --on-bad-line skip. A few inputs
that look odd but are fine (BOM + CRLF, blank lines, control characters, null text) are
accepted, as the policy says.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from dataset_preprocess import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def review(**fields) -> dict:
    base = {"reviewerID": "U1", "asin": "I1", "reviewText": "Fine strings.", "overall": 4.0,
            "unixReviewTime": 1393545600, "helpful": [0, 0]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def jsonl(lines: list) -> bytes:
    return "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n"
                   for x in lines).encode()


def many_reviews(n: int) -> bytes:
    return jsonl([review(reviewerID=f"U{i}", reviewText="A long enough review text. " * 4)
                  for i in range(n)])


GOOD = review(asin="I0")
CSV_HEADER = "customer,sku,stars,when,body\n"
CSV_MAP = "user=customer,item=sku,rating=stars,time=when,text=body"


def _truncated_gzip_small() -> bytes:
    packed = gzip.compress(many_reviews(50))
    return packed[: len(packed) // 2]


def _truncated_gzip_large() -> bytes:  # breaks after the first 64 KiB: the error names a line
    packed = gzip.compress(many_reviews(5000), compresslevel=1)
    return packed[: len(packed) * 3 // 4]


def _bad_crc_gzip() -> bytes:
    packed = bytearray(gzip.compress(many_reviews(20)))
    packed[-8] ^= 0xFF  # the CRC32 of the trailer
    return bytes(packed)


def _corrupt_deflate() -> bytes:
    packed = bytearray(gzip.compress(many_reviews(20)))
    packed[10:40] = b"\xff" * 30  # the compressed blocks right after the 10-byte header
    return bytes(packed)


def _parquet_garbage() -> bytes:
    return b"PAR1" + bytes(range(256)) * 4 + b"PAR1"


def _parquet_duplicate_fields() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array(["c1"]), pa.array(["s1"]), pa.array([5]),
                                  pa.array([1]), pa.array(["2021-03-04"])],
                                 names=["customer", "product", "stars", "stars", "date"])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _nul_after_the_sniffed_start() -> bytes:
    """A NUL byte on line 2,001, well after the first 64 KiB: it used to be stripped silently."""
    lines = many_reviews(2000)
    assert len(lines) > 2 * (1 << 16)
    return lines + json.dumps(review(asin="I9", reviewText="nul\u0000")).replace(
        "\\u0000", "\x00").encode() + b"\n"


# kind -> (file name, bytes, extra CLI args, words the message must hold, line number or None)
FILE_KINDS: dict[str, tuple[str, Callable[[], bytes], list[str], list[str], int | None]] = {
    "truncated gzip (inside the first block)": (
        "r.json.gz", _truncated_gzip_small, [], ["truncated"], None),
    "truncated gzip (after many lines)": (
        "r.json.gz", _truncated_gzip_large, [], ["truncated", "after line"], None),
    "gzip with a bad CRC": ("r.json.gz", _bad_crc_gzip, [], ["corrupt", "CRC"], None),
    "gzip with corrupt deflate data": ("r.json.gz", _corrupt_deflate, [], ["corrupt"], None),
    "binary garbage": ("r.json", lambda: bytes(range(256)) * 64, [], ["binary", "NUL"], None),
    "UTF-16 text": ("r.json", lambda: jsonl([GOOD]).decode().encode("utf-16"), [],
                    ["UTF-16"], None),
    "empty file": ("r.json", lambda: b"", [], ["no valid review", "0 line(s)"], None),
    "only blank lines": ("r.json", lambda: b"\n  \n\t\n", [], ["no valid review", "3 blank"],
                         None),
    "corrupt Parquet": ("r.parquet", _parquet_garbage, ["--columns", CSV_MAP],
                        ["not a readable Parquet file"], None),
    "CSV without a mapped column": (
        "r.csv", lambda: (CSV_HEADER + "c1,s1,5,2021-03-04,ok\n").encode(),
        ["--columns", CSV_MAP.replace("body", "review")], ["review", "columns found"], None),
    "CSV with nothing but a header": ("r.csv", lambda: CSV_HEADER.encode(),
                                      ["--columns", CSV_MAP], ["no valid review"], None),
    "unknown --columns key": ("r.csv", lambda: CSV_HEADER.encode(),
                              ["--columns", "who=customer"], ["who=customer", "KEY=COLUMN"],
                              None),
    # ambiguous inputs: an error that says how to disambiguate, never a guess
    "CSV with a duplicated column name": (
        "r.csv", lambda: b"customer,product,stars,stars,date\nc1,s1,5,1,2021-03-04\n",
        ["--columns", "user=customer,item=product,rating=stars,time=date,text=none"],
        ["'stars'", "appear twice", "line 1"], 1),
    "Parquet with duplicated field names": (
        "r.parquet", _parquet_duplicate_fields,
        ["--columns", "user=customer,item=product,rating=stars,time=date,text=none"],
        ["'stars'", "appear twice"], None),
    "rating neither given nor found": (
        "r.csv", lambda: b"customer,sku,when,body\nc1,s1,2021-03-04,ok\n",
        ["--columns", "user=customer,item=sku,time=when,text=body"],
        ["no rating column", "--columns rating=none"], None),
    "text neither given nor found": (
        "r.csv", lambda: b"customer,sku,stars,when\nc1,s1,5,2021-03-04\n",
        ["--columns", "user=customer,item=sku,rating=stars,time=when"],
        ["no text column", "--columns text=none"], None),
    "a NUL byte after the first 64 KiB": ("r.json", _nul_after_the_sniffed_start, [],
                                          ["binary", "NUL"], 2001),
}

# kind -> (file name, lines, extra CLI args, reason, words the message must hold); the bad
# line is always line 3, between two good ones.
LINE_KINDS: dict[str, tuple[str, list, list[str], str, list[str]]] = {
    "malformed JSON": ("r.json", ['{"reviewerID": "U9", "asin": '], [], "malformed_json",
                       ["not valid JSON"]),
    "a JSON array": ("r.json", ["[1, 2, 3]"], [], "malformed_json", ["a JSON list"]),
    "missing field": ("r.json", [review(asin=...)], [], "missing_field", ["asin"]),
    "rating 0": ("r.json", [review(overall=0)], [], "bad_rating", ["[1, 5]"]),
    "rating NaN": ("r.json", ['{"reviewerID": "U1", "asin": "I3", "overall": NaN, '
                              '"unixReviewTime": 1}'], [], "bad_rating", ["nan"]),
    "bad time": ("r.json", [review(unixReviewTime="yesterday")], [], "bad_time", ["yesterday"]),
    "huge time (milliseconds)": ("r.json", [review(unixReviewTime=1393545600000)], [],
                                 "bad_time", ["1393545600000"]),
    "whitespace in an id": ("r.json", [review(reviewerID="U 9")], [], "bad_id", ["'U 9'"]),
    "text that is not a string": ("r.json", [review(reviewText=["a"])], [], "bad_text",
                                  ["list"]),
    "a line that is not UTF-8": ("r.json", [b'{"reviewerID": "U1", "asin": "I3", "overall": 4,'
                                            b' "unixReviewTime": 1, "reviewText": "caf\xe9"}'],
                                 [], "bad_encoding", ["not UTF-8", "0xe9"]),
    "a line over --max-line-bytes": ("r.json", [review(reviewText="x" * 5000)],
                                     ["--max-line-bytes", "2000"], "line_too_long",
                                     ["over the limit of 2,000"]),
    "CSV row with too many fields": ("r.csv", ["c9,s9,5,2021-03-04,ok,extra"],
                                     ["--columns", CSV_MAP], "malformed_row", ["6 fields"]),
    "CSV with an unterminated quote": ("r.csv", ['c9,s9,5,2021-03-04,"never closed'],
                                       ["--columns", CSV_MAP, "--max-line-bytes", "100"],
                                       "malformed_row", ["unterminated quote"]),
    "CSV date that is no date": ("r.csv", ["c9,s9,5,the 4th of March,ok"],
                                 ["--columns", CSV_MAP], "bad_time", ["the 4th of March"]),
    "CSV rating that is no number": ("r.csv", ["c9,s9,five,2021-03-04,ok"],
                                     ["--columns", CSV_MAP], "bad_rating", ["five"]),
    "CSV with an empty user": ("r.csv", [",s9,5,2021-03-04,ok"], ["--columns", CSV_MAP],
                               "missing_field", ["user"]),
    "a date written as a number": ("r.csv", ["c9,s9,5,20150304,ok"], ["--columns", CSV_MAP],
                                   "bad_time", ["ambiguous", "2015-03-04", "1970-08-22",
                                                "--time-format %Y%m%d", "--time-format unix"]),
    # numbers that are not Unix seconds of a review: refused with the --time-format that reads them
    **{f"a time {label}": ("r.csv", [f"c9,s9,5,{value},ok"], ["--columns", CSV_MAP], "bad_time",
                           [f"'{value}'", "column 'when'", f"--time-format {fmt}"])
       for label, value, fmt in [
           ("written as a float YYYYMMDD", "20150304.0", "%Y%m%d"),
           ("shaped YYYYMMDD but no date", "20150230", "%Y%m%d"),
           ("written as YYYYMM", "201503", "%Y%m"),
           ("written as YYMMDD", "150304", "%y%m%d"),
           ("as an Excel serial day", "42067", "excel"),
           ("as an Excel serial with a fraction", "42067.5", "excel"),
           ("as days since 1970", "16436", "unix_days"),
           ("as a bare year", "2015", "%Y"),
           ("in seconds of 1970", "12345678", "unix"),
       ]},
    "a time in milliseconds among seconds": (
        "r.csv", ["c9,s9,5,1614902400000,ok"], ["--columns", CSV_MAP.replace("when", "t")],
        "bad_time", ["milliseconds", "earlier numbers are Unix seconds"]),
    "a JSON lines text under another key": (
        "r.jsonl", ['{"user_id": "u9", "item_id": "i9", "rating": 4, "timestamp": 1614816000, '
                    '"review_text": "Where did it go?"}'], ["--columns", "text=text"], "bad_text",
        ["'review_text'", "text key is 'text'", "one key for the whole file"]),
    "a date in the year 3000": ("r.csv", ["c9,s9,5,3000-01-01,ok"], ["--columns", CSV_MAP],
                                "bad_time", ["3000-01-01", "2100-01-01"]),
    "an Amazon time in the year 3000": ("r.json", [review(unixReviewTime=32503680000)], [],
                                        "bad_time", ["32503680000"]),
    "a user id RecBole reads as missing": ("r.csv", ["NA,s9,5,2021-03-04,ok"],
                                           ["--columns", CSV_MAP], "bad_id",
                                           ["'NA'", "missing", "RecBole"]),
    "an Amazon asin RecBole reads as missing": ("r.json", [review(asin="null")], [], "bad_id",
                                                ["'null'", "missing"]),
    "a JSON key given twice": ("r.json", ['{"reviewerID": "U1", "asin": "I3", "overall": 4, '
                                          '"overall": 1, "unixReviewTime": 1393545600}'], [],
                               "malformed_json", ["'overall' appears twice"]),
    "a JSON lines key given twice": ("r.jsonl", ['{"user_id": "u9", "item_id": "i9", '
                                                 '"rating": 4, "rating": 1, '
                                                 '"timestamp": 1614816000, "text": ""}'],
                                     ["--columns", "text=text"], "malformed_json",
                                     ["'rating' appears twice"]),
}


def _own_json(i: int) -> str:
    return json.dumps({"user_id": f"u{i}", "item_id": f"i{i}", "rating": 4,
                       "timestamp": 1614816000 + i, "text": "ok"})


def _line_file(name: str, bad_lines: list) -> bytes:
    if name.endswith(".jsonl"):
        return "\n".join([_own_json(1), _own_json(2), *bad_lines, _own_json(3)]).encode() + b"\n"
    if name.endswith(".csv"):
        good = ["c1,s1,5,2021-03-04,ok", "c2,s2,4,2021-03-05,fine"]
        head = CSV_HEADER.encode()
        if any("1614902400000" in str(b) for b in bad_lines):  # a time column of Unix seconds
            good = ["c1,s1,5,1614816000,ok", "c2,s2,4,1614902400,fine"]
            head = CSV_HEADER.replace("when", "t").encode()
        bad = [b if isinstance(b, bytes) else b.encode() for b in bad_lines]
        # header is line 1, first good row line 2, bad row line 3
        return head + good[0].encode() + b"\n" + b"\n".join(bad) + b"\n" + good[1].encode() + b"\n"
    bad = [b if isinstance(b, bytes) else jsonl([b]).rstrip(b"\n") for b in bad_lines]
    # good review on lines 1 and 2, bad line 3, good line 4
    return (jsonl([review(asin="I0"), review(asin="I1")]) + b"\n".join(bad) + b"\n"
            + jsonl([review(asin="I2")]))


def run_cli(tmp_path: Path, name: str, data: bytes, extra: list[str],
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, Path]:
    raw = tmp_path / name
    raw.write_bytes(data)
    out = tmp_path / "out"
    dataset = "MyShop" if "--columns" in extra else "Instrument"
    code = cli.main([dataset, "--raw-file", str(raw), "--out-dir", str(out), "--no-topics",
                     *extra])
    captured = capsys.readouterr()
    return code, captured.err, captured.out, out


@pytest.mark.parametrize("kind", list(FILE_KINDS))
def test_bad_file_is_one_clear_error(kind: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    name, make, extra, words, _ = FILE_KINDS[kind]
    code, err, out, out_dir = run_cli(tmp_path, name, make(), extra, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(tmp_path / name) in err or "--columns" in err
    if FILE_KINDS[kind][4] is not None:
        assert f"{tmp_path / name}, line {FILE_KINDS[kind][4]}:" in err, err
    for word in words:
        assert word in err, (word, err)
    assert "Traceback" not in err and out == ""
    assert not out_dir.exists()


@pytest.mark.parametrize("kind", list(LINE_KINDS))
def test_bad_line_is_one_clear_error_naming_the_line(kind: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    name, lines, extra, reason, words = LINE_KINDS[kind]
    code, err, _, out_dir = run_cli(tmp_path, name, _line_file(name, lines), extra, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{tmp_path / name}, line 3:" in err and f"[{reason}]" in err
    for word in words:
        assert word in err, (word, err)
    assert not out_dir.exists()


@pytest.mark.parametrize("kind", list(LINE_KINDS))
def test_bad_line_is_skipped_and_counted(kind: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    name, lines, extra, reason, _ = LINE_KINDS[kind]
    code, err, _, out_dir = run_cli(tmp_path, name, _line_file(name, lines),
                                    [*extra, "--on-bad-line", "skip"], capsys)
    assert code == 0, err
    dataset = "MyShop" if "--columns" in extra else "Instrument"
    summary = json.loads((out_dir / dataset / f"{dataset}.summary.json").read_text())
    assert summary["skipped"] == {reason: 1}
    assert summary["reviews"] == (2 if name.endswith(".csv") else 3)


def test_truncated_gzip_through_the_real_command(tmp_path: Path) -> None:
    """The issue's case: `python -m dataset_preprocess` on a truncated .json.gz, no traceback."""
    raw = tmp_path / "Gift_Cards_5.json.gz"
    raw.write_bytes(_truncated_gzip_large())
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "dataset_preprocess", "Gift_Cards", "--raw-file", str(raw),
         "--out-dir", str(tmp_path / "out"), "--no-topics"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "EOFError" not in result.stderr
    assert f"error: {raw}: the gzip stream ends early" in result.stderr
    assert not (tmp_path / "out").exists()


def test_odd_but_valid_input_is_accepted(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """BOM + CRLF, blank lines, null text and control characters: kept, as the policy says."""
    lines = [json.dumps(review(asin="I1", reviewText="bell\x07 ring")),
             "", json.dumps(review(asin="I2", reviewText=None)), "   "]
    data = b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n"
    code, err, _, out_dir = run_cli(tmp_path, "r.json", data, [], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "Instrument" / "Instrument.summary.json").read_text())
    assert (summary["reviews"], summary["blank_lines"], summary["empty_text"]) == (2, 2, 1)
    assert summary["texts_normalised"] == 1


def test_csv_bom_crlf_and_quoted_newlines(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = ("\ufeff" + CSV_HEADER.rstrip("\n") + "\r\n"
            + 'c1,s1,5,2021-03-04,"two\r\nlines, one review"\r\n'
            + "\r\n"
            + "c2,s1,4,2021-03-05,\r\n").encode()
    code, err, _, out_dir = run_cli(tmp_path, "r.csv", data, ["--columns", CSV_MAP], capsys)
    assert code == 0, err
    inter = pd.read_csv(out_dir / "MyShop" / "MyShop.inter", sep="\t")
    assert inter["user_id:token"].tolist() == ["c1", "c2"]
    summary = json.loads((out_dir / "MyShop" / "MyShop.summary.json").read_text())
    assert summary["blank_lines"] == 1 and summary["empty_text"] == 1


# -- the output side and the OS: one paragraph, exit 2, nothing written -------------------------

GOOD_CSV = (CSV_HEADER + "c1,s1,5,2021-03-04,ok\nc2,s2,4,2021-03-05,fine\n").encode()
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _out_is_a_file(tmp: Path) -> tuple[Path, Path]:
    (tmp / "out").write_text("not a folder")
    return tmp / "out", tmp / "out"


def _name_is_a_file(tmp: Path) -> tuple[Path, Path]:
    (tmp / "out").mkdir()
    (tmp / "out" / "MyShop").write_text("not a folder")
    return tmp / "out", tmp / "out" / "MyShop"


def _inter_is_a_folder(tmp: Path) -> tuple[Path, Path]:
    (tmp / "out" / "MyShop" / "MyShop.inter").mkdir(parents=True)
    return tmp / "out", tmp / "out" / "MyShop" / "MyShop.inter"


def _unwritable_out(tmp: Path) -> tuple[Path, Path]:
    if AS_ROOT:  # root writes through any mode bits; sysfs refuses new folders even to root
        return Path("/sys/kernel"), Path("/sys/kernel/MyShop")
    (tmp / "out").mkdir()
    (tmp / "out").chmod(0o555)
    return tmp / "out", tmp / "out"


# kind -> set-up returning (--out-dir, the path the message must name)
OUTPUT_KINDS: dict[str, Callable[[Path], tuple[Path, Path]]] = {
    "--out-dir is a file": _out_is_a_file,
    "the <Name> folder is a file": _name_is_a_file,
    "<Name>.inter is a folder": _inter_is_a_folder,
    "an unwritable --out-dir": _unwritable_out,
}


def _tree(root: Path) -> list[tuple[str, bool]]:
    if not root.exists():
        return []
    return sorted((str(p), p.is_dir()) for p in [root, *root.rglob("*")])


@pytest.mark.parametrize("kind", list(OUTPUT_KINDS))
def test_output_error_is_one_clear_error(kind: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "r.csv"
    raw.write_bytes(GOOD_CSV)
    out, named = OUTPUT_KINDS[kind](tmp_path)
    before = _tree(out / "MyShop") if out.is_dir() else []
    try:
        code = cli.main(["MyShop", "--raw-file", str(raw), "--out-dir", str(out),
                         "--no-topics", "--columns", CSV_MAP])
    finally:
        if not AS_ROOT and out.is_dir():
            out.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(named) in err and "nothing was written" in err, err
    assert (_tree(out / "MyShop") if out.is_dir() else []) == before


def test_a_full_disk_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC while the .inter is written (injected: a real full disk cannot be made here)."""
    import errno

    from dataset_preprocess.readers import amazon

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(amazon, "atomic_write_text", full)
    raw = tmp_path / "r.csv"
    raw.write_bytes(GOOD_CSV)
    code = cli.main(["MyShop", "--raw-file", str(raw), "--out-dir", str(tmp_path / "out"),
                     "--no-topics", "--columns", CSV_MAP])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: cannot write {tmp_path / 'out' / 'MyShop' / 'MyShop.inter'}: No space left " \
           "on device; nothing was written" in err
    assert not (tmp_path / "out").exists()


def _a_folder(tmp: Path) -> tuple[Path, list[str]]:
    (tmp / "reviews.csv").mkdir()
    return tmp / "reviews.csv", ["is a folder"]


def _a_fifo(tmp: Path) -> tuple[Path, list[str]]:
    os.mkfifo(tmp / "reviews.csv")  # opening it for reading would block forever
    return tmp / "reviews.csv", ["not a regular file", "FIFO"]


def _unreadable(tmp: Path) -> tuple[Path, list[str]]:
    if AS_ROOT:  # root reads through any mode bits; this file fails to read with EIO
        return Path("/proc/self/mem"), ["cannot be read", "Input/output error"]
    (tmp / "reviews.csv").write_bytes(GOOD_CSV)
    (tmp / "reviews.csv").chmod(0)
    return tmp / "reviews.csv", ["cannot be read", "Permission denied"]


RAW_PATH_KINDS: dict[str, Callable[[Path], tuple[Path, list[str]]]] = {
    "a folder as --raw-file": _a_folder,
    "a FIFO as --raw-file": _a_fifo,
    "an unreadable --raw-file": _unreadable,
}


@pytest.mark.parametrize("kind", list(RAW_PATH_KINDS))
@pytest.mark.parametrize("dataset", ["MyShop", "Instrument"])
def test_raw_path_error_is_one_clear_error(kind: str, dataset: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """They used to be "does not exist" (folder, FIFO) or a PermissionError traceback."""
    raw, words = RAW_PATH_KINDS[kind](tmp_path)
    extra = ["--columns", CSV_MAP] if dataset == "MyShop" else []
    code = cli.main([dataset, "--raw-file", str(raw), "--out-dir", str(tmp_path / "out"),
                     "--no-topics", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {raw}: ") and err.count("\n") == 1, err
    assert "does not exist" not in err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "out").exists()


# -- what RecBole loads is what was converted ---------------------------------------------------

def _recbole_counts(data_dir: Path, name: str) -> tuple[int, int, int]:
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.model.general_recommender import BPR

    config = Config(model=BPR, dataset=name, config_dict={
        "data_path": str(data_dir), "normalize_all": False, "show_progress": False,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]}})
    dataset = create_dataset(config)
    return dataset.inter_num, dataset.user_num - 1, dataset.item_num - 1  # - padding id


def test_recbole_loads_exactly_the_summary_counts_with_odd_ids(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ids pandas reads as missing (NA, nan, null, None, ...) used to be written, and RecBole
    dropped their rows; now they are refused (here skipped and counted), and ids that merely
    look odd (quotes, '#', numbers that pandas could coerce) load as they are."""
    missing = ["NA", "nan", "null", "None", "N/A", "NaN", "<NA>", "#N/A"]
    odd = ['say"what', "'quoted'", "#1", "1", "1.0", "01", "NA1", "nullable"]
    rows = [f"{u},s{i % 3},4,2021-03-{1 + i:02d},ok" for i, u in enumerate(missing + odd)]
    rows += [f"c9,{item},5,2021-04-{1 + i:02d},ok" for i, item in enumerate(missing + odd)]
    raw = tmp_path / "r.csv"
    raw.write_text(CSV_HEADER + "\n".join(rows) + "\n")
    code = cli.main(["Odd", "--raw-file", str(raw), "--out-dir", str(tmp_path / "out"),
                     "--no-topics", "--columns", CSV_MAP, "--on-bad-line", "skip"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out/Odd/Odd.summary.json").read_text())
    assert summary["skipped"] == {"bad_id": 2 * len(missing)}
    assert (summary["reviews"], summary["users"], summary["items"]) == (16, 9, 11)
    assert _recbole_counts(tmp_path / "out", "Odd") == (16, 9, 11)


def test_the_read_back_refuses_what_recbole_would_drop(tmp_path: Path) -> None:
    """The last line of defence, whatever the parsers let through: an .inter text with an id
    RecBole reads as missing is refused before anything is written."""
    import pandas as pd

    from dataset_preprocess.readers.amazon import inter_text
    from dataset_preprocess.loadcheck import LoadMismatch, check_loadable

    frame = pd.DataFrame({"user_id": ["u1", "NA"], "item_id": ["i1", "i2"], "rating": [4.0, 5.0],
                          "timestamp": [18690.0, 18691.0], "review_text": ["", ""]})
    with pytest.raises(LoadMismatch, match="1 interactions, 1 users and 1 items, but the "
                                           "conversion has 2, 2 and 2"):
        check_loadable(inter_text(frame), frame, tmp_path / "X.inter")
    check_loadable(inter_text(frame.iloc[:1]), frame.iloc[:1], tmp_path / "X.inter")


def test_second_resolution_times_are_stored_as_recbole_holds_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two reviews a second apart in 2014 fall into one float32 step (84 s): the .inter holds
    the float32 value (what RecBole loads), keeps their raw order, and the summary warns."""
    rows = ["c1,zz,5,2014-06-01 10:00:00,ok", "c1,aa,4,2014-06-01 10:00:01,ok",
            "c1,mm,3,2014-06-02 10:00:00,ok"]
    raw = tmp_path / "r.csv"
    raw.write_text(CSV_HEADER + "\n".join(rows) + "\n")
    assert cli.main(["Secs", "--raw-file", str(raw), "--out-dir", str(tmp_path / "out"),
                     "--no-topics", "--columns", CSV_MAP]) == 0
    printed = capsys.readouterr().out
    assert "warning: 2 reviews share their stored time" in printed
    import numpy as np
    import pandas as pd

    inter = pd.read_csv(tmp_path / "out/Secs/Secs.inter", sep="\t", float_precision="round_trip")
    times = inter["timestamp:float"].to_numpy()
    assert inter["item_id:token"].tolist() == ["zz", "aa", "mm"]  # raw order, not item id
    assert np.array_equal(times.astype(np.float32).astype(np.float64), times)
    assert times[0] == times[1] < times[2]
    summary = json.loads((tmp_path / "out/Secs/Secs.summary.json").read_text())
    assert (summary["times_merged"], summary["times_rounded"]) == (2, 3)
    assert summary["timestamps_exact_in_float32"] is False
    assert "rounded to float32" in summary["timestamp_unit"]


# -- reuse and concurrency ----------------------------------------------------------------------

def test_another_max_line_bytes_converts_again(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A rerun with another --max-line-bytes used to report "up to date" and keep the result
    of the first, which had skipped the long line."""
    data = _line_file("r.json", [review(asin="I9", reviewText="x" * 5000)])
    args = ["--on-bad-line", "skip"]
    run_cli(tmp_path, "r.json", data, [*args, "--max-line-bytes", "2000"], capsys)
    summary_file = tmp_path / "out" / "Instrument" / "Instrument.summary.json"
    assert json.loads(summary_file.read_text())["reviews"] == 3
    code, err, _, _ = run_cli(tmp_path, "r.json", data, args, capsys)
    assert code == 0, err
    summary = json.loads(summary_file.read_text())
    assert summary["reviews"] == 4 and summary["skipped"] == {}
    assert "max_line_bytes" not in summary["options"]
    run_cli(tmp_path, "r.json", data, [*args, "--max-line-bytes", "2000"], capsys)
    assert json.loads(summary_file.read_text())["options"] == {"max_line_bytes": 2000}


def _convert_in_child(raw: str, out: str, started, slow: bool) -> None:
    """Child process: convert ``raw``; ``slow`` waits 1 s just before writing the summary."""
    import time

    from dataset_preprocess.readers import amazon

    if slow:
        write_json = amazon.atomic_write_json

        def slow_write(*args, **kwargs):
            started.set()
            time.sleep(1.0)
            write_json(*args, **kwargs)

        amazon.atomic_write_json = slow_write
    else:
        started.wait(30)
    code = cli.main(["Instrument", "--raw-file", raw, "--out-dir", out, "--no-topics"])
    os._exit(code)


def test_two_concurrent_conversions_end_consistent(tmp_path: Path) -> None:
    """The first writer is slow between its .inter and its summary; the second writes both in
    that gap. Without a lock the first's summary (its counts, and a hash of the file read back,
    which is now the second's) ended up beside the second's .inter."""
    import hashlib
    import multiprocessing

    big, small = tmp_path / "big.json", tmp_path / "small.json"
    big.write_bytes(jsonl([review(asin=f"I{i}") for i in range(7)]))
    small.write_bytes(jsonl([review(asin=f"I{i}") for i in range(3)]))
    context = multiprocessing.get_context("fork")
    started = context.Event()
    out = str(tmp_path / "out")
    first = context.Process(target=_convert_in_child, args=(str(big), out, started, True))
    second = context.Process(target=_convert_in_child, args=(str(small), out, started, False))
    first.start()
    second.start()
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 0)
    folder = tmp_path / "out" / "Instrument"
    summary = json.loads((folder / "Instrument.summary.json").read_text())
    inter = (folder / "Instrument.inter").read_bytes()
    assert summary["inter_sha256"] == hashlib.sha256(inter).hexdigest()
    assert summary["reviews"] == inter.count(b"\n") - 1
    assert sorted(p.name for p in folder.iterdir()) == [
        ".Instrument.lock", "Instrument.inter", "Instrument.summary.json"]


def test_the_suite_covers_at_least_58_kinds() -> None:
    assert len(FILE_KINDS) + len(LINE_KINDS) + len(OUTPUT_KINDS) + len(RAW_PATH_KINDS) >= 58
