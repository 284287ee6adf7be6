"""Topic fits of the training reviews only: one per training split, cached and pinned.

The side-files ``python -m dataset_preprocess`` writes beside the atomic files are fitted on
every review of the file (what the paper's section 1 does), so their clusters and topic vectors
have read the reviews a run holds out. A run fits its topics on the reviews of the interactions
it may train on instead: the caller (the protocol, which this package does not know) passes
those (user, item) pairs and a scope name, and the fit lands in ``<dataset>/fits/<scope>-<digest>/``
as the same four side-files (``dataset_preprocess.topics.files``), its record naming the pairs
(``fitted_on``) and their digest. The fit is a function of the training data: other pairs (other
split ratios, other cuts, a new conversion) are another folder, and nothing overwrites a fit
another split reads. The sentence embeddings come from the preparation's cache, so a fit is UMAP
and HDBSCAN on a subset, not a new encoding.

Pinned fits (:mod:`dataset_preprocess.topics.pinned`) work per scope as well: ``<pins>/<name>/<scope>/``
holds a fit and its ``pin.json``, installed where the pin was made from the same raw file, the
same ``.inter``, the same pairs and the same fit settings.
"""

from __future__ import annotations

import fcntl
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from dataset_preprocess.topics.files import topic_file_paths
from dataset_preprocess.topics.fit import TopicConfig, pairs_digest

logger = logging.getLogger(__name__)

FITS_DIR = "fits"


def fit_folder(dataset_dir: Path, scope: str, digest: str) -> Path:
    """Where the fit of the pairs with ``digest`` (:func:`pairs_digest`), made for ``scope`` (a
    protocol's name), lives."""
    return Path(dataset_dir) / FITS_DIR / f"{scope}-{digest[:12]}"


def recorded_digest(folder: Path, name: str) -> str | None:
    """The ``fitted_on_sha256`` of the fit in ``folder``, or None where there is no whole fit."""
    paths = topic_file_paths(folder, name)
    if not all(paths[key].is_file() for key in ("review_topic", "topic_vec", "meta")):
        return None
    try:
        return json.loads(paths["meta"].read_text(encoding="utf-8")).get("fitted_on_sha256")
    except (OSError, ValueError):
        return None


def preparation_config(dataset_dir: Path, name: str) -> TopicConfig:
    """The fit settings of the dataset's preparation (encoder, precision, clustering, caches), from
    its topics.json where there is one, so the training fit reads the same embedding cache."""
    meta_path = topic_file_paths(Path(dataset_dir), name)["meta"]
    recorded = json.loads(meta_path.read_text(encoding="utf-8")).get("config", {}) if meta_path.is_file() else {}
    known = TopicConfig.__dataclass_fields__
    config = TopicConfig(**{key: value for key, value in recorded.items() if key in known})
    config.show_progress = False
    return config


@contextmanager
def _locked(folder: Path):
    """One process fits a scope at a time (two tuning workers start together); the others wait
    and then find the fit made."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_training_fit(dataset_dir: Path, name: str, pairs, scope: str,
                        pinned_fits: str | Path | None = None, config: TopicConfig | None = None) -> Path:
    """The folder holding the topic fit of exactly the reviews of ``pairs`` ((user, item) tokens):
    the cached one, else the pinned one, else a new fit of those reviews. Raises ValueError where
    the training reviews hold too few sentences for topics."""
    dataset_dir = Path(dataset_dir)
    pairs = {(str(user), str(item)) for user, item in pairs}
    digest = pairs_digest(pairs)
    folder = fit_folder(dataset_dir, scope, digest)
    if recorded_digest(folder, name) == digest:
        return folder
    with _locked(folder):
        if recorded_digest(folder, name) == digest:  # made while this process waited
            return folder
        config = config or preparation_config(dataset_dir, name)
        if pinned_fits is not None and install_pinned_training_fit(dataset_dir, name, scope, digest, config,
                                                                    Path(pinned_fits), folder):
            return folder
        from dataset_preprocess.pipeline import prepared_reviews
        from dataset_preprocess.topics.fit import build_topics

        reviews = prepared_reviews(name, dataset_dir.parent)
        keys = list(zip(reviews["user_id"].astype(str), reviews["item_id"].astype(str)))
        chosen = reviews[[key in pairs for key in keys]]
        if len(chosen) != len(pairs):
            raise ValueError(f"{name}: {len(pairs) - len(chosen)} of the {len(pairs)} training interactions "
                             f"have no review in the raw file; prepare the dataset again")
        logger.info("%s: fitting topics on the %d reviews of the %s training split (every held-out "
                    "review left out); cached in %s", name, len(chosen), scope, folder)
        try:
            build_topics(chosen, out_dir=folder, name=name, config=config, fitted_on=scope)
        except ValueError as error:  # too little text in the training split for these settings
            raise ValueError(f"{error}. These are the topics of the {scope} training split's reviews, with "
                             f"the preparation's settings: prepare {name} again with smaller ones (python -m "
                             f"dataset_preprocess {name} --min-cluster-size N --min-samples M --refit-topics), "
                             "or run SD-MTMP without topics (--ablation=w/o-H)") from None
    return folder


def pin_training_fits(dataset_dir: Path, name: str, root: Path, scopes=None) -> list[Path]:
    """Pin the training fit of each of ``scopes`` (by default every scope with a fit) under
    ``root/<name>/<scope>/``; a scope must have exactly one fit in the dataset folder (the one its
    runs read)."""
    from dataset_preprocess.topics.pinned import pin_fit

    if scopes is None:
        scopes = sorted({folder.name.rsplit("-", 1)[0] for folder in (Path(dataset_dir) / FITS_DIR).glob("*-*")
                         if folder.is_dir()})
    pinned = []
    for scope in scopes:
        folders = [folder for folder in sorted((Path(dataset_dir) / FITS_DIR).glob(f"{scope}-*"))
                   if recorded_digest(folder, name) is not None]
        if len(folders) != 1:
            raise ValueError(f"{name}: {len(folders)} training fits of {scope} in {Path(dataset_dir) / FITS_DIR} "
                             f"({', '.join(f.name for f in folders) or 'none'}); pinning needs exactly one")
        pinned.append(pin_fit(folders[0], name, preparation_config(dataset_dir, name), Path(root) / name,
                              folder_name=scope, inputs_from=Path(dataset_dir)))
    return pinned


def install_pinned_training_fit(dataset_dir: Path, name: str, scope: str, digest: str, config: TopicConfig,
                                root: Path, target: Path) -> bool:
    """Install the pin of ``scope`` into ``target`` where it was fitted on the same pairs; whether it was."""
    from dataset_preprocess.topics.pinned import install_pinned_fit, read_pin

    pin = read_pin(scope, Path(root) / name)
    if pin is None:
        return False
    if pin.get("fitted_on_sha256") != digest:
        logger.warning("not using the pinned %s topic fit of %s: it was fitted on other training "
                       "interactions (another split or another conversion); fitting afresh", scope, name)
        return False
    return install_pinned_fit(Path(dataset_dir), name, config, Path(root) / name, folder_name=scope,
                              target=target) is not None
