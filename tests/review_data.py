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
    from dataset_preprocess.pipeline import prepare_dataset
    from dataset_preprocess.pipeline import build_review_vectors_for_prepared

    prepared = REPO_ROOT / "dataset" / "Gift_Cards"
    target = root / "Gift_Cards"
    target.mkdir(parents=True, exist_ok=True)
    if all((prepared / name).is_file() for name in FILES):
        for name in FILES:
            shutil.copy(prepared / name, target / name)
        return root
    prepare_dataset("Gift_Cards", out_dir=root, raw_file=GIFT_CARDS_RAW, download=False, topics=False)
    build_review_vectors_for_prepared("Gift_Cards", out_dir=root, cache_dir=REPO_ROOT / "cache" / "embeddings")
    return root


def assert_trains_and_beats_pop(tmp_path: Path, model: str, epochs: int, **overrides) -> None:
    """A short real Gift_Cards run of ``model`` through the runner: finite, falling training loss
    and test NDCG@10 and HR@10 above Pop's (a floor that can fail)."""
    import math

    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    root = gift_cards_root(tmp_path / "data")
    common = {"data_path": str(root), "show_progress": False, "checkpoint_dir": str(tmp_path / "saved"),
              "device": "cpu", "use_gpu": False}
    pop = run(build_config("Pop", "Gift_Cards", config_dict=common), saved=False)
    result = run(build_config(model, "Gift_Cards", config_dict={**common, "epochs": epochs, **overrides}), saved=False)
    assert result.epochs == epochs and all(math.isfinite(loss) for loss in result.train_losses)
    assert result.train_losses[-1] < result.train_losses[0]
    assert result.test_result["ndcg@10"] > pop.test_result["ndcg@10"]
    assert result.test_result["hit@10"] > pop.test_result["hit@10"]
