"""Every Amazon 5-core review dataset: where its raw file comes from and how to find it.

The raw files cannot be shipped with the code and often cannot be downloaded (offline machines),
so each category records its official 2014 and/or 2018 source and the published 5-core sizes;
:func:`find_raw_file` looks in the usual places, tries the download, and otherwise raises
:class:`RawDataMissing` with one paragraph that tells the user exactly what to fetch and where
to put it.

Releases and names:

- **2014** (McAuley et al., SIGIR 2015 / WWW 2016), ``reviews_<Category>_5.json.gz`` from
  ``http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/``; 24 categories, the
  published 5-core review counts are those of the release page.
- **2018** (Ni, Li, McAuley, EMNLP 2019), ``<Category>_5.json.gz`` from
  ``https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall/``;
  29 categories, the published 5-core counts are review lines (repeated user-item pairs
  included: the 2018 files are not strictly 5-core).
- A dataset's RecBole name is its category as in the file name (``Gift_Cards``,
  ``Magazine_Subscriptions``, ``Books``...), except the paper's three, which keep their short
  names ``Instrument``, ``DigitalMusic`` and ``Office``. Lookup ignores case, ``_``, ``-``,
  ``,``, ``&`` and spaces, so "Gift Cards", "gift-cards" and "Musical_Instruments" all work.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from dataset_preprocess.atomic_io import atomic_write

logger = logging.getLogger(__name__)

URL_2014 = ("http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
            "reviews_{category}_5.json.gz")
URL_2018 = ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall/"
            "{category}_5.json.gz")
RAW_DIR_ENV = "SDMTMP_RAW_DIR"
DEFAULT_RAW_DIR = Path("dataset") / "raw"
SHARED_RAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon"
DOWNLOAD_TIMEOUT_S = 15.0
GZIP_MAGIC = b"\x1f\x8b"
RELEASES = ("2014", "2018")


class RawDataMissing(FileNotFoundError):
    """The raw review file is nowhere to be found and could not be downloaded."""


@dataclass(frozen=True)
class AmazonDataset:
    """One Amazon 5-core review category and its published 5-core sizes per release.

    ``counts_2014`` / ``counts_2018`` are ``{"reviews": n, ...}`` (``users`` and ``items`` where
    known), or None when the category is not part of that release.
    """

    name: str
    category: str
    aliases: tuple[str, ...] = ()
    counts_2014: dict[str, int] | None = None
    counts_2018: dict[str, int] | None = None

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def releases(self) -> tuple[str, ...]:
        return tuple(r for r in RELEASES if self.counts(r) is not None)

    def counts(self, release: str) -> dict[str, int] | None:
        """Published 5-core counts of ``release`` ("2014" or "2018"), None if not released."""
        return {"2014": self.counts_2014, "2018": self.counts_2018}[release]

    @property
    def reviews(self) -> int:
        """Published 5-core review count of the preferred (first) release."""
        return self.published_counts["reviews"]

    @property
    def published_counts(self) -> dict[str, int]:
        """Counts of the preferred release: 2014 where it exists, else 2018."""
        return dict(self.counts(self.releases[0]) or {})

    @property
    def file_2014(self) -> str:
        return f"reviews_{self.category}_5.json.gz"

    @property
    def url_2014(self) -> str:
        return URL_2014.format(category=self.category)

    @property
    def file_2018(self) -> str:
        return f"{self.category}_5.json.gz"

    @property
    def url_2018(self) -> str:
        return URL_2018.format(category=self.category)

    def file(self, release: str) -> str:
        return self.file_2014 if release == "2014" else self.file_2018

    def url(self, release: str) -> str:
        return self.url_2014 if release == "2014" else self.url_2018

    @property
    def raw_file_names(self) -> tuple[str, ...]:
        """Accepted raw file names, in order of preference (2014 first)."""
        names: list[str] = []
        for release in self.releases:
            names += [self.file(release), self.file(release).removesuffix(".gz")]
        if "2014" in self.releases and "2018" not in self.releases:
            # the 2014 file is often passed around under the 2018-style name
            names += [self.file_2018, self.file_2018.removesuffix(".gz")]
        return tuple(names)

    def describe_sources(self) -> str:
        """'the Amazon 2014 5-core file X from URL (n reviews), or the 2018 release ...'"""
        parts = []
        for release in self.releases:
            counts = self.counts(release) or {}
            parts.append(f"the Amazon {release} 5-core file {self.file(release)} from "
                         f"{self.url(release)} ({counts['reviews']:,} reviews)")
        return ", or ".join(parts)


def _c(reviews: int, users: int | None = None, items: int | None = None) -> dict[str, int]:
    counts = {"reviews": reviews}
    if users is not None and items is not None:
        counts.update(users=users, items=items)
    return counts


# The paper's three datasets keep their short names; their 2014 user and item counts are those
# of the published 5-core files (checked on Instrument: SOURCES.md of the shared data).
INSTRUMENT = AmazonDataset("Instrument", "Musical_Instruments",
                           ("musical_instrument", "instruments"),
                           counts_2014=_c(10_261, 1_429, 900), counts_2018=_c(231_392))
DIGITAL_MUSIC = AmazonDataset("DigitalMusic", "Digital_Music", ("music",),
                              counts_2014=_c(64_706, 5_541, 3_568), counts_2018=_c(169_781))
OFFICE = AmazonDataset("Office", "Office_Products", ("office_product", "officeproducts"),
                       counts_2014=_c(53_258, 4_905, 2_420), counts_2018=_c(800_357))

# category -> (published 2014 5-core reviews, published 2018 5-core reviews); None: not released.
_CATEGORIES: dict[str, tuple[int | None, int | None]] = {
    "AMAZON_FASHION": (None, 3_176),
    "All_Beauty": (None, 5_269),
    "Amazon_Instant_Video": (37_126, None),
    "Appliances": (None, 2_277),
    "Apps_for_Android": (752_937, None),
    "Arts_Crafts_and_Sewing": (None, 494_485),
    "Automotive": (20_473, 1_711_519),
    "Baby": (160_792, None),
    "Beauty": (198_502, None),
    "Books": (8_898_041, 27_164_983),
    "CDs_and_Vinyl": (1_097_592, 1_443_755),
    "Cell_Phones_and_Accessories": (194_439, 1_128_437),
    "Clothing_Shoes_and_Jewelry": (278_677, 11_285_464),
    "Electronics": (1_689_188, 6_739_590),
    "Gift_Cards": (None, 2_972),
    "Grocery_and_Gourmet_Food": (151_254, 1_143_860),
    "Health_and_Personal_Care": (346_355, None),
    "Home_and_Kitchen": (551_682, 6_898_955),
    "Industrial_and_Scientific": (None, 77_071),
    "Kindle_Store": (982_619, 2_222_983),
    "Luxury_Beauty": (None, 34_278),
    "Magazine_Subscriptions": (None, 2_375),
    "Movies_and_TV": (1_697_533, 3_410_019),
    "Patio_Lawn_and_Garden": (13_272, 798_415),
    "Pet_Supplies": (157_836, 2_098_325),
    "Prime_Pantry": (None, 137_788),
    "Software": (None, 12_805),
    "Sports_and_Outdoors": (296_337, 2_839_940),
    "Tools_and_Home_Improvement": (134_476, 2_070_831),
    "Toys_and_Games": (167_597, 1_828_971),
    "Video_Games": (231_780, 497_577),
}

_EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "AMAZON_FASHION": ("Fashion", "Amazon_Fashion"),
    "Gift_Cards": ("Gift_Card",),
    "Magazine_Subscriptions": ("Magazines", "Magazine_Subscription"),
}

DATASETS: dict[str, AmazonDataset] = {d.name: d for d in (INSTRUMENT, DIGITAL_MUSIC, OFFICE)}
for _category, (_n2014, _n2018) in _CATEGORIES.items():
    DATASETS[_category] = AmazonDataset(
        _category, _category, _EXTRA_ALIASES.get(_category, ()),
        counts_2014=None if _n2014 is None else _c(_n2014),
        counts_2018=None if _n2018 is None else _c(_n2018))
PAPER_DATASETS = ("Instrument", "DigitalMusic", "Office")


def _alias_key(name: str) -> str:
    return re.sub(r"[\s_\-,&]+", "", name).lower()


_BY_ALIAS: dict[str, AmazonDataset] = {
    _alias_key(alias): d for d in DATASETS.values() for alias in (d.name, d.category, *d.aliases)
}


def lookup(name: str) -> AmazonDataset | None:
    """The Amazon dataset called ``name`` (any alias), or None."""
    return _BY_ALIAS.get(_alias_key(name))


def resolve(name: str | AmazonDataset) -> AmazonDataset:
    """The dataset called ``name``; case, ``_``, ``-``, ``,``, ``&`` and spaces do not matter."""
    if isinstance(name, AmazonDataset):
        return name
    dataset = lookup(name)
    if dataset is None:
        paper = ", ".join(f"{DATASETS[n].name} ({DATASETS[n].category})" for n in PAPER_DATASETS)
        others = ", ".join(n for n in DATASETS if n not in PAPER_DATASETS)
        raise ValueError(f"unknown dataset {name!r}; valid names: {paper}, and every Amazon "
                         f"5-core category: {others} (case-insensitive, '_', '-' and spaces "
                         "ignored). For a review file of your own, pass it with --raw-file "
                         "(and --columns if its column names differ).")
    return dataset


def search_dirs(raw_dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Directories searched for a raw file, in order: ``raw_dirs``, ``$SDMTMP_RAW_DIR``
    (``os.pathsep``-separated), ``dataset/raw`` and the project's shared data folder."""
    dirs = [Path(d) for d in raw_dirs]
    dirs += [Path(d) for d in os.environ.get(RAW_DIR_ENV, "").split(os.pathsep) if d]
    dirs += [DEFAULT_RAW_DIR, SHARED_RAW_DIR]
    return dirs


def find_raw_file(name: str | AmazonDataset, raw_file: str | os.PathLike[str] | None = None,
                  raw_dirs: Sequence[str | os.PathLike[str]] = (), download: bool = True) -> Path:
    """Path of the raw review file of ``name``.

    ``raw_file`` wins if given. Otherwise the first accepted file name found in
    :func:`search_dirs` is used; failing that, the file of the preferred release (2014 where
    the category has one, else 2018) is downloaded into ``dataset/raw`` unless ``download``
    is false.
    Raises :class:`RawDataMissing` when all of this fails.
    """
    dataset = resolve(name)
    if raw_file is not None:
        path = Path(raw_file)
        if path.is_file():
            return path
        raise RawDataMissing(
            missing_message(dataset, f"The raw file given, {path}, does not exist."))
    dirs = search_dirs(raw_dirs)
    for directory in dirs:
        for file_name in dataset.raw_file_names:
            if (directory / file_name).is_file():
                logger.info("using raw file %s", directory / file_name)
                return directory / file_name
    searched = (f"None of {', '.join(dataset.raw_file_names)} is in "
                f"{', '.join(str(d) for d in dirs)}")
    if not download:
        raise RawDataMissing(missing_message(dataset, f"{searched}, and downloading is off."))
    release = dataset.releases[0]
    url = dataset.url(release)
    target = DEFAULT_RAW_DIR / dataset.file(release)
    try:
        return download_file(url, target)
    except (OSError, HTTPException, ValueError) as exc:
        raise RawDataMissing(missing_message(
            dataset, f"{searched}, and downloading {url} failed ({exc}).")) from exc


def missing_message(dataset: AmazonDataset, what_happened: str) -> str:
    """One paragraph: what went wrong, what to fetch, from where, and where to put it."""
    return (f"Raw reviews for {dataset.name} not found. {what_happened} "
            f"Fetch {dataset.describe_sources()}, and put it in {DEFAULT_RAW_DIR}/ (relative "
            f"to the working directory), in a directory given with --raw-dir or "
            f"${RAW_DIR_ENV}, or pass its path with --raw-file.")


def download_file(url: str, target: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download a gzip file to ``target`` atomically, with a progress bar; returns ``target``.

    Nothing is created (not even the directory) unless the server answers.
    """
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with atomic_write(target, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True,
                                                    desc=target.name) as bar:
            while chunk := response.read(1 << 20):
                if written == 0 and not chunk.startswith(GZIP_MAGIC):
                    raise ValueError(f"{url} did not return a gzip file")
                fh.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
            if written == 0 or (total is not None and written != total):
                raise ValueError(f"download incomplete: {written} of {total or '?'} bytes")
    logger.info("saved %s (%d bytes)", target, written)
    return target
