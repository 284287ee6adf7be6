"""The paper's three Amazon 5-core datasets: where their raw files come from, how to find one.

The raw files cannot be shipped with the code and often cannot be downloaded (offline machines),
so each dataset records its official 2014 and 2018 sources and the published 2014 5-core sizes;
:func:`find_raw_file` looks in the usual places, tries the download, and otherwise raises
:class:`RawDataMissing` with one paragraph that tells the user exactly what to fetch and where
to put it.
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


class RawDataMissing(FileNotFoundError):
    """The raw review file is nowhere to be found and could not be downloaded."""


@dataclass(frozen=True)
class AmazonDataset:
    """One Amazon 5-core review dataset and its published 2014 5-core size."""

    name: str
    category: str
    aliases: tuple[str, ...]
    reviews: int
    users: int
    items: int

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

    @property
    def raw_file_names(self) -> tuple[str, ...]:
        """Accepted raw file names, in order of preference."""
        return (self.file_2014, self.file_2014.removesuffix(".gz"),
                self.file_2018, self.file_2018.removesuffix(".gz"))

    @property
    def published_counts(self) -> dict[str, int]:
        return {"reviews": self.reviews, "users": self.users, "items": self.items}


INSTRUMENT = AmazonDataset("Instrument", "Musical_Instruments",
                           ("musical_instruments", "musical_instrument", "instruments"),
                           reviews=10_261, users=1_429, items=900)
DIGITAL_MUSIC = AmazonDataset("DigitalMusic", "Digital_Music", ("digital_music", "music"),
                              reviews=64_706, users=5_541, items=3_568)
OFFICE = AmazonDataset("Office", "Office_Products",
                       ("office_products", "office_product", "officeproducts"),
                       reviews=53_258, users=4_905, items=2_420)
DATASETS: dict[str, AmazonDataset] = {d.name: d for d in (INSTRUMENT, DIGITAL_MUSIC, OFFICE)}


def _alias_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


_BY_ALIAS: dict[str, AmazonDataset] = {
    _alias_key(alias): d for d in DATASETS.values() for alias in (d.name, d.category, *d.aliases)
}


def resolve(name: str | AmazonDataset) -> AmazonDataset:
    """The dataset called ``name``; case, ``_``, ``-`` and spaces do not matter."""
    if isinstance(name, AmazonDataset):
        return name
    try:
        return _BY_ALIAS[_alias_key(name)]
    except KeyError:
        valid = ", ".join(f"{d.name} ({d.category})" for d in DATASETS.values())
        raise ValueError(f"unknown dataset {name!r}; valid names: {valid} "
                         "(case-insensitive, '_', '-' and spaces ignored)") from None


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
    :func:`search_dirs` is used; failing that, the 2014 file is downloaded into ``dataset/raw``
    unless ``download`` is false.
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
    url = dataset.url_2014
    target = DEFAULT_RAW_DIR / dataset.file_2014
    try:
        return download_file(url, target)
    except (OSError, HTTPException, ValueError) as exc:
        raise RawDataMissing(missing_message(
            dataset, f"{searched}, and downloading {url} failed ({exc}).")) from exc


def missing_message(dataset: AmazonDataset, what_happened: str) -> str:
    """One paragraph: what went wrong, what to fetch, from where, and where to put it."""
    return (f"Raw reviews for {dataset.name} not found. {what_happened} "
            f"Fetch the Amazon 2014 5-core file {dataset.file_2014} from {dataset.url_2014} "
            f"({dataset.reviews:,} reviews), or the 2018 release {dataset.file_2018} from "
            f"{dataset.url_2018}, and put it in {DEFAULT_RAW_DIR}/ (relative to the working "
            f"directory), in a directory given with --raw-dir or ${RAW_DIR_ENV}, or pass its "
            "path with --raw-file.")


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
