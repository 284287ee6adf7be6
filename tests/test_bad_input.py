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

REPO_ROOT = Path(__file__).resolve().parents[1]


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
}


def _line_file(name: str, bad_lines: list) -> bytes:
    if name.endswith(".csv"):
        good = ["c1,s1,5,2021-03-04,ok", "c2,s2,4,2021-03-05,fine"]
        head = CSV_HEADER.encode()
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
    if kind == "CSV with an unterminated quote":
        pytest.skip("an unterminated quote swallows the lines after it: nothing to keep")
    code, err, _, out_dir = run_cli(tmp_path, name, _line_file(name, lines),
                                    [*extra, "--on-bad-line", "skip"], capsys)
    assert code == 0, err
    dataset = "MyShop" if name.endswith(".csv") else "Instrument"
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


def test_the_suite_covers_at_least_15_kinds() -> None:
    assert len(FILE_KINDS) + len(LINE_KINDS) >= 15
