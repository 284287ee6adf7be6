"""Inputs that used to convert with exit 0 into something else than the file says: number-shaped
times, quotes that swallow rows, a JSON lines text under two keys, ids RecBole cannot read back,
paths the OS refuses. Each is now read exactly, or refused with one paragraph (exit 2, nothing
written), or skipped and counted; the summary accounts for every physical line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from dataset_preprocess import cli

HEADER = "customer,sku,stars,when,body\n"
MAPPING = "user=customer,item=sku,rating=stars,time=when,text=body"
DAY_2015_03_04 = 16_498  # (date(2015, 3, 4) - date(1970, 1, 1)).days


def convert(tmp_path: Path, name: str, data: bytes, *extra: str,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    raw = tmp_path / name
    raw.write_bytes(data)
    out = tmp_path / "out"
    code = cli.main(["Shop", "--raw-file", str(raw), "--out-dir", str(out), "--no-topics",
                     *extra])
    return code, capsys.readouterr().err, out / "Shop"


def rows_csv(n: int, sep: str = ",") -> list[str]:
    """n rows: user c<i> reviews item s<i % 7> on day i after 2021-03-04, in Unix seconds."""
    return [sep.join([f"c{i}", f"s{i % 7}", "4", str(1614816000 + 86400 * i), f"text {i}"])
            for i in range(n)]


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "Shop.summary.json").read_text())


def assert_accounted(summary: dict) -> None:
    parts = summary["line_accounting"]
    assert parts["lines"] == summary["lines"]
    assert sum(v for k, v in parts.items() if k != "lines") == summary["lines"]


# -- times ------------------------------------------------------------------------------------

def test_no_number_becomes_a_day_of_1970_unless_a_format_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every shape the converter used to store as a day of January-August 1970."""
    for value in ("20150304", "20150304.0", "20150230", "201503", "150304", "42067", "42067.5",
                  "16436", "2015", "0", "86400"):
        data = (HEADER + f"c1,s1,5,{value},ok\n").encode()
        code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING,
                                    capsys=capsys)
        assert code == 2 and err.count("\n") == 1 and "--time-format" in err, (value, err)
        assert not folder.exists()
    code, err, folder = convert(tmp_path, "r.csv", (HEADER + "c1,s1,5,86400,ok\n").encode(),
                                "--columns", MAPPING, "--time-format", "unix", capsys=capsys)
    assert code == 0, err  # said explicitly: day 1 of 1970
    assert pd.read_csv(folder / "Shop.inter", sep="\t")["timestamp:float"].tolist() == [1.0]


@pytest.mark.parametrize(("value", "fmt", "day"), [
    ("20150304.0", "%Y%m%d", DAY_2015_03_04), ("150304", "%y%m%d", DAY_2015_03_04),
    ("42067", "excel", DAY_2015_03_04), ("42067.5", "excel", DAY_2015_03_04 + 0.5),
    ("16436", "unix_days", 16_436), ("2015", "%Y", 16_436), ("201503", "%Y%m", 16_495),
    ("1425427200000", "unix_ms", DAY_2015_03_04),
])
def test_the_format_named_in_the_refusal_reads_the_value(
        value: str, fmt: str, day: float, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, err, folder = convert(tmp_path, "r.csv", (HEADER + f"c1,s1,5,{value},ok\n").encode(),
                                "--columns", MAPPING, "--time-format", fmt, capsys=capsys)
    assert code == 0, err
    assert pd.read_csv(folder / "Shop.inter", sep="\t")["timestamp:float"].tolist() == [day]


def test_parquet_serial_days_and_float_digit_dates_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for times, fmt in (([42067.5, 42068.0], "excel"), ([20150304.0, 20150305.0], "%Y%m%d"),
                       ([42067, 42068], "excel")):
        frame = pd.DataFrame({"customer": ["c1", "c2"], "sku": ["s1", "s1"],
                              "stars": [5.0, 4.0], "when": times, "body": ["a", "b"]})
        frame.to_parquet(tmp_path / "r.parquet", index=False)
        code, err, folder = convert(tmp_path, "r.parquet", (tmp_path / "r.parquet").read_bytes(),
                                    "--columns", MAPPING, capsys=capsys)
        assert code == 2 and f"--time-format {fmt}" in err and "line 1" in err, err
        assert not folder.exists()


def test_milliseconds_are_detected_and_said(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = (HEADER + "c1,s1,5,1425427200000,ok\nc2,s1,4,1425513600000,ok\n").encode()
    code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING, capsys=capsys)
    assert code == 0, err
    inter = pd.read_csv(folder / "Shop.inter", sep="\t")
    assert inter["timestamp:float"].tolist() == [DAY_2015_03_04, DAY_2015_03_04 + 1]
    assert summary_of(folder)["time_unit"].startswith("Unix milliseconds (detected")
    code = cli.main(["Shop", "--raw-file", str(tmp_path / "r.csv"), "--out-dir",
                     str(tmp_path / "o2"), "--no-topics", "--columns", MAPPING])
    assert "warning: times read as Unix milliseconds" in capsys.readouterr().out


def test_a_parquet_decimal_rating_is_a_number(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"customer": ["c1", "c2"], "sku": ["s1", "s1"],
                      "stars": pa.array([decimal.Decimal("4.5"), decimal.Decimal("3.0")],
                                        pa.decimal128(2, 1)),
                      "when": ["2021-03-04", "2021-03-05"], "body": ["a", "b"]})
    pq.write_table(table, tmp_path / "r.parquet")
    code, err, folder = convert(tmp_path, "r.parquet", (tmp_path / "r.parquet").read_bytes(),
                                "--columns", MAPPING, capsys=capsys)
    assert code == 0, err
    assert pd.read_csv(folder / "Shop.inter", sep="\t")["rating:float"].tolist() == [4.5, 3.0]


# -- quotes and delimiters --------------------------------------------------------------------

def _swallowing_csv() -> bytes:
    """200 rows; row 50's text opens a quote that the text of row 53 closes: rows 51-53 (lines
    53-55) lie inside the quoted text, each shaped like a row of the file."""
    rows = rows_csv(200)
    rows[50] = rows[50].replace("text 50", '"text 50 opens a quote')
    rows[53] = rows[53].replace("text 53", 'text 53 closes it"')
    return (HEADER + "\n".join(rows) + "\n").encode()


def test_a_quote_that_swallows_rows_is_refused_naming_the_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err, folder = convert(tmp_path, "r.csv", _swallowing_csv(), "--columns", MAPPING,
                                capsys=capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "r.csv, line 52:" in err and "runs to line 55" in err, err  # header is line 1
    assert "line(s) 53-55" in err and "shaped like rows" in err
    assert not folder.exists()


def test_under_skip_only_the_row_with_the_stray_quote_is_lost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The converter used to write 197 of 200 rows and report nothing; now the row whose
    quote never closes where it should is skipped and counted, the rows after it are read."""
    code, err, folder = convert(tmp_path, "r.csv", _swallowing_csv(), "--columns", MAPPING,
                                "--on-bad-line", "skip", capsys=capsys)
    assert code == 0, err
    summary = summary_of(folder)
    assert summary["skipped"] == {"malformed_row": 1}
    assert summary["reviews"] == 199 and summary["lines"] == 201
    assert_accounted(summary)
    users = set(pd.read_csv(folder / "Shop.inter", sep="\t")["user_id:token"])
    assert users == {f"c{i}" for i in range(200)} - {"c50"}


def test_an_unterminated_quote_skips_one_row_not_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = rows_csv(200)
    rows[1] = rows[1].replace("text 1", '"never closed')
    data = (HEADER + "\n".join(rows) + "\n").encode()
    code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING, capsys=capsys)
    assert code == 2 and "r.csv, line 3:" in err and "unterminated quote" in err, err
    code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING,
                                "--on-bad-line", "skip", capsys=capsys)
    assert code == 0, err
    summary = summary_of(folder)
    assert (summary["reviews"], summary["skipped"]) == (199, {"malformed_row": 1})
    assert_accounted(summary)


def test_a_real_multiline_text_is_kept_and_its_lines_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = rows_csv(5)
    rows[2] = rows[2].replace("text 2", '"first line,\nsecond, line\nthird"')
    data = (HEADER + "\n".join(rows) + "\n").encode()
    code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING, capsys=capsys)
    assert code == 0, err
    summary = summary_of(folder)
    assert summary["reviews"] == 5 and summary["lines"] == 8
    assert summary["line_accounting"]["inside_multiline_texts"] == 2
    assert_accounted(summary)


def test_tsv_quotes_are_characters_unless_asked(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A TSV text that starts with a quote used to be refused, and a quote in the middle of a
    TSV text swallowed the rows up to the next quote."""
    rows = rows_csv(6, sep="\t")
    rows[1] = rows[1].replace("text 1", '"Best" pen I ever had')
    rows[3] = rows[3].replace("text 3", 'a 12" ruler')
    data = (HEADER.replace(",", "\t") + "\n".join(rows) + "\n").encode()
    code, err, folder = convert(tmp_path, "r.tsv", data, "--columns", MAPPING, capsys=capsys)
    assert code == 0, err
    summary = summary_of(folder)
    assert summary["reviews"] == 6 and not summary["skipped"]
    assert "quotes" not in summary["options"]
    # asked for: the quote of row 3 opens a field that takes in the rows after it
    code, err, folder = convert(tmp_path, "r.tsv", data, "--columns", MAPPING, "--quotes", "on",
                                capsys=capsys)
    assert code == 2 and "r.tsv, line 3:" in err, err


# -- JSON lines -------------------------------------------------------------------------------

def test_a_jsonl_text_under_two_keys_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Lines with the text under 'text' among lines with 'reviewText' lost their text."""
    lines = [{"user_id": f"u{i}", "item_id": "i1", "rating": 4, "timestamp": 1614816000,
              ("text" if i == 2 else "reviewText"): f"Review {i}."} for i in range(4)]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    code, err, folder = convert(tmp_path, "r.jsonl", data, capsys=capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "'reviewText' on 3 line(s)" in err and "'text' on 1 line(s) (first: line 3)" in err
    assert not folder.exists()
    code, err, folder = convert(tmp_path, "r.jsonl", data, "--columns", "text=reviewText",
                                capsys=capsys)
    assert code == 2 and "line 3:" in err and "'text'" in err and "[bad_text]" in err, err


# -- what RecBole reads back; paths the OS refuses --------------------------------------------

def test_an_id_longer_than_recbole_reads_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """It converted (exit 0) because the converter had raised csv.field_size_limit for itself,
    and RecBole's loader then failed with 'field larger than field limit'."""
    data = (HEADER + f"{'u' * 200_000},s1,5,2021-03-04,ok\nc2,s1,4,2021-03-05,ok\n").encode()
    code, err, folder = convert(tmp_path, "r.csv", data, "--columns", MAPPING, capsys=capsys)
    assert code == 2 and "200,000 characters" in err and "131,072" in err, err
    assert not folder.exists()


def test_the_read_back_uses_recbole_s_field_limit(tmp_path: Path) -> None:
    from dataset_preprocess.loadcheck import LoadMismatch, check_loadable
    from dataset_preprocess.readers.amazon import inter_text

    frame = pd.DataFrame({"user_id": ["u" * 140_000], "item_id": ["i1"], "rating": [4.0],
                          "timestamp": [18690.0], "review_text": [""]})
    before = csv.field_size_limit(10 ** 7)  # as a reader of long texts leaves it
    try:
        with pytest.raises(LoadMismatch, match="cannot read"):
            check_loadable(inter_text(frame), frame, tmp_path / "X.inter")
        assert csv.field_size_limit() == 10 ** 7
    finally:
        csv.field_size_limit(before)


def test_a_raw_file_name_too_long_is_one_paragraph(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / ("r" * 300 + ".csv")
    code = cli.main(["Shop", "--raw-file", str(raw), "--out-dir", str(tmp_path / "out"),
                     "--no-topics", "--columns", MAPPING])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "too long" in err and "Traceback" not in err
    (tmp_path / "x.csv").write_text(HEADER + "c1,s1,5,2021-03-04,ok\n")
    code = cli.main(["Shop", "--raw-file", str(tmp_path / "x.csv"), "--out-dir",
                     str(tmp_path / ("o" * 300)), "--no-topics", "--columns", MAPPING])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
