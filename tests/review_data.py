"""The real Gift_Cards data with its review vectors, for short runs of the review-aware baselines."""

import shutil
from pathlib import Path

from tests.conftest import REPO_ROOT, SHARED_DIR

GIFT_CARDS_RAW = SHARED_DIR / "data" / "amazon" / "Gift_Cards_5.json.gz"
FILES = ("Gift_Cards.inter", "Gift_Cards.review_vec.npy", "Gift_Cards.review_vec.tsv", "Gift_Cards.review_vec.json")


def gift_cards_root(root: Path) -> Path:
    """A data root holding Gift_Cards: copied from the repository's prepared ``dataset/`` when it
    has the review vectors, otherwise converted from the raw file (sentence embeddings from the
    repository's embedding cache, computed where missing)."""
    from dataset_preprocess.cli import prepare_dataset
    from dataset_preprocess.review_vectors import build_for_prepared

    prepared = REPO_ROOT / "dataset" / "Gift_Cards"
    target = root / "Gift_Cards"
    target.mkdir(parents=True, exist_ok=True)
    if all((prepared / name).is_file() for name in FILES):
        for name in FILES:
            shutil.copy(prepared / name, target / name)
        return root
    prepare_dataset("Gift_Cards", out_dir=root, raw_file=GIFT_CARDS_RAW, download=False, topics=False)
    build_for_prepared("Gift_Cards", out_dir=root, cache_dir=REPO_ROOT / "cache" / "embeddings")
    return root
