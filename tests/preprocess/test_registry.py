"""Every Amazon 5-core category by its official name: sources, counts, RecBole names, aliases,
and the two real 2018 files of the shared folder converted end to end (no topics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataset_preprocess import registry
from dataset_preprocess.pipeline import prepare_dataset
from dataset_preprocess.registry import RawDataMissing, find_raw_file, resolve

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon"


def test_release_catalogues_are_complete() -> None:
    in_2014 = sorted(d.category for d in registry.DATASETS.values() if "2014" in d.releases)
    in_2018 = sorted(d.category for d in registry.DATASETS.values() if "2018" in d.releases)
    assert len(in_2014) == 24 and len(in_2018) == 29
    assert {"Amazon_Instant_Video", "Apps_for_Android", "Baby", "Beauty",
            "Health_and_Personal_Care"} <= set(in_2014) - set(in_2018)
    assert {"AMAZON_FASHION", "All_Beauty", "Appliances", "Arts_Crafts_and_Sewing", "Gift_Cards",
            "Industrial_and_Scientific", "Luxury_Beauty", "Magazine_Subscriptions",
            "Prime_Pantry", "Software"} == set(in_2018) - set(in_2014)
    # the published 5-core review counts of both release pages, spot-checked
    assert registry.DATASETS["Books"].counts("2014") == {"reviews": 8_898_041}
    assert registry.DATASETS["Books"].counts("2018") == {"reviews": 27_164_983}
    assert registry.DATASETS["Gift_Cards"].counts("2018") == {"reviews": 2_972}
    assert registry.DATASETS["Magazine_Subscriptions"].counts("2018") == {"reviews": 2_375}
    assert registry.INSTRUMENT.counts("2018") == {"reviews": 231_392}


@pytest.mark.parametrize(("alias", "name"), [
    ("Gift_Cards", "Gift_Cards"), ("gift cards", "Gift_Cards"), ("GIFT-CARDS", "Gift_Cards"),
    ("Magazine_Subscriptions", "Magazine_Subscriptions"), ("magazines", "Magazine_Subscriptions"),
    ("Clothing, Shoes and Jewelry", "Clothing_Shoes_and_Jewelry"),
    ("Tools and Home Improvement", "Tools_and_Home_Improvement"),
    ("amazon fashion", "AMAZON_FASHION"), ("Musical_Instruments", "Instrument"),
    ("Office Products", "Office"), ("Digital-Music", "DigitalMusic"),
])
def test_recbole_name_from_the_category(alias: str, name: str) -> None:
    assert resolve(alias).name == name


def test_2018_only_category_sources() -> None:
    gift = resolve("Gift_Cards")
    assert gift.releases == ("2018",)
    assert gift.raw_file_names == ("Gift_Cards_5.json.gz", "Gift_Cards_5.json")
    assert gift.url("2018") == ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
                                "categoryFilesSmall/Gift_Cards_5.json.gz")
    assert gift.published_counts == {"reviews": 2_972}


def test_2014_only_category_accepts_both_file_names() -> None:
    baby = resolve("Baby")
    assert baby.releases == ("2014",)
    assert baby.raw_file_names == ("reviews_Baby_5.json.gz", "reviews_Baby_5.json",
                                   "Baby_5.json.gz", "Baby_5.json")


def test_missing_2018_only_file_names_only_2018(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(registry.RAW_DIR_ENV, raising=False)
    monkeypatch.setattr(registry, "SHARED_RAW_DIR", tmp_path / "nowhere")
    with pytest.raises(RawDataMissing) as err:
        find_raw_file("Software", download=False)
    message = str(err.value)
    assert "Software_5.json.gz" in message and "12,805 reviews" in message
    assert "reviews_Software_5" not in message and "2014" not in message


@pytest.mark.parametrize(("name", "counts", "duplicates", "empty_text"), [
    ("Gift_Cards", (2_965, 458, 148), 7, 6),
    ("Magazine_Subscriptions", (2_302, 348, 157), 73, 1),
])
def test_real_2018_files_convert(tmp_path: Path, name: str, counts: tuple[int, int, int],
                                 duplicates: int, empty_text: int) -> None:
    raw = SHARED / f"{name}_5.json.gz"
    assert find_raw_file(name, download=False).resolve() == raw.resolve()
    out = prepare_dataset(name, out_dir=tmp_path, raw_file=raw, topics=False)
    assert out == tmp_path / name
    summary = json.loads((out / f"{name}.summary.json").read_text())
    assert (summary["reviews"], summary["users"], summary["items"]) == counts
    assert summary["duplicates_dropped"] == duplicates
    assert summary["empty_text"] == empty_text
    assert summary["source_format"] == "2018"
    assert summary["published_counts"]["release"] == "2018"
    # 2018 counts are lines, repeated pairs included: 2,965 + 7 = 2,972, 2,302 + 73 = 2,375
    assert summary["matches_published_counts"] is True
    header = (out / f"{name}.inter").read_text().splitlines()[0]
    assert header == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
