"""Every figure of the README's two result tables agrees with the committed tables: the verdict
table against ``results/<D>_<protocol>.csv`` (mean, std, rank among the models, best baseline,
paired p values from the Markdown table; a row names its protocol when it is not ``paper``), the paper-claim table against ``results/paper_claim_<D>.csv``
(rank, SD-MTMP's and the best other row's NDCG@10)."""

import re

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DATASETS = ("Gift_Cards", "Magazine_Subscriptions", "Instrument")
ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)")


def readme_rows(header_start: str) -> list[list[str]]:
    """The cells of the Markdown table whose header line starts with ``header_start``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def ranked(dataset: str, protocol: str = "paper") -> pd.DataFrame:
    table = pd.read_csv(REPO_ROOT / "results" / f"{dataset}_{protocol}.csv")
    return table.sort_values("NDCG@10_mean", ascending=False, kind="stable").reset_index(drop=True)


def paired_p(dataset: str, section: str, row_start: str, protocol: str = "paper") -> float:
    """A Wilcoxon p from the committed Markdown table's section."""
    text = (REPO_ROOT / "results" / f"{dataset}_{protocol}.md").read_text(encoding="utf-8")
    body = text.split(section, 1)[1]
    line = next(line for line in body.splitlines() if line.startswith(row_start))
    return float([cell.strip() for cell in line.strip("|").split("|")][-3 if row_start == "| NDCG@10" else -2])


def dataset_and_protocol(row: list[str]) -> tuple[str, str]:
    """'Gift_Cards (stand-in ...)' is protocol paper; 'Gift_Cards, `global_time`' names its own."""
    named = re.search(r"`(\w+)`", row[0])
    return re.match(r"\w+", row[0]).group(0), named.group(1) if named else "paper"


def test_the_two_tables_are_found_with_every_finished_global_time_table():
    rows = {dataset_and_protocol(row) for row in readme_rows("| dataset | budget |")}
    finished = {(dataset, "global_time") for dataset in DATASETS
                if (REPO_ROOT / "results" / f"{dataset}_global_time.csv").is_file()}
    assert rows == {(dataset, "paper") for dataset in DATASETS} | finished
    assert len(readme_rows("| step | Gift_Cards |")) == 5


@pytest.mark.parametrize("row", readme_rows("| dataset | budget |"), ids=lambda row: "-".join(dataset_and_protocol(row)))
def test_the_verdict_row_matches_the_committed_table(row):
    dataset, protocol = dataset_and_protocol(row)
    assert dataset in DATASETS
    table = ranked(dataset, protocol)
    sdmtmp = table[table.model == "SD-MTMP"].iloc[0]
    mean, std = (float(x) for x in row[2].split(" ± "))
    assert mean == pytest.approx(sdmtmp["NDCG@10_mean"], abs=5e-5)
    assert std == pytest.approx(sdmtmp["NDCG@10_std"], abs=5e-5)
    rank, of = re.fullmatch(r"(\d+)(?:st|nd|rd|th) of (\d+)", row[3]).groups()
    assert int(rank) == table.index[table.model == "SD-MTMP"][0] + 1 and int(of) == len(table)
    best = table[table.model != "SD-MTMP"].iloc[0]
    name, value = row[4].split()
    assert name == best.model and float(value) == pytest.approx(best["NDCG@10_mean"], abs=5e-5)
    p_best = float(re.search(r"p ([0-9.e-]+)", row[5]).group(1))
    assert p_best == pytest.approx(paired_p(dataset, "## Paired significance", "| NDCG@10", protocol), rel=0.5)
    difference, p_pop = re.search(r"([+-][0-9.]+), p ([0-9.e-]+)", row[6]).groups()
    pop = table[table.model == "Pop"].iloc[0]
    assert float(difference) == pytest.approx(sdmtmp["NDCG@10_mean"] - pop["NDCG@10_mean"], abs=1e-4)
    assert float(p_pop) == pytest.approx(paired_p(dataset, "## SD-MTMP against the floors", "| Pop | NDCG@10", protocol),
                                         rel=0.5)


@pytest.mark.parametrize("row", readme_rows("| step | Gift_Cards |"), ids=lambda row: row[0][:1])
def test_the_paper_claim_row_matches_the_committed_tables(row):
    step = int(row[0].split()[0])
    for dataset, cell in zip(DATASETS, row[1:]):
        table = pd.read_csv(REPO_ROOT / "results" / f"paper_claim_{dataset}.csv")
        table = table[table.step == step]
        is_sdmtmp = table.model.str.startswith("SD-MTMP")  # later steps name what they add
        sdmtmp = table[is_sdmtmp].iloc[0]
        assert int(ORDINAL.search(cell).group(1)) == sdmtmp["rank"]
        numbers = re.findall(r"(?<![\w.])(0\.\d{4})", cell)
        assert float(numbers[0]) == pytest.approx(sdmtmp["NDCG@10_mean"], abs=5e-5)
        best = table[~is_sdmtmp].sort_values("NDCG@10_mean", ascending=False).iloc[0]
        name = re.search(r"vs (\w+) (0\.\d{4})", cell)
        assert name.group(1) == best.model and float(name.group(2)) == pytest.approx(best["NDCG@10_mean"], abs=5e-5)
