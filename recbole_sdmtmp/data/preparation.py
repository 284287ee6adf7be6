"""Make sure a run's atomic files (and topic or review-vector files, for models that read them) exist."""

import logging
from pathlib import Path

from dataset_preprocess.amazon import side_files_current
from dataset_preprocess.review_vectors import review_vectors_current
from recbole_sdmtmp.model.sdmtmp import parse_ablation
from recbole_sdmtmp.topic_files import topic_file_paths


def needs_topics(config) -> bool:
    """SD-MTMP reads the review topics unless the w/o-H ablation drops them."""
    return config["model"] == "SDMTMP" and parse_ablation(config["ablation"]) != "w/o-H"


def needs_review_vectors(config) -> bool:
    """Models on ReviewDataset (RGCL, MISSRec, RRPU) read one text vector per review."""
    from recbole_sdmtmp.data.reviews import ReviewDataset
    from recbole_sdmtmp.runner import resolve_model

    dataset_class = resolve_model(config["model"])[1]
    return dataset_class is not None and issubclass(dataset_class, ReviewDataset)


def ensure_prepared(config, raw_file=None) -> Path:
    """Run ``python -m dataset_preprocess`` for what is missing; return the dataset folder."""
    dataset_dir = Path(config["data_path"])
    name = config["dataset"]
    missing_inter = not (dataset_dir / f"{name}.inter").is_file()
    topics = needs_topics(config)
    missing_topics = topics and not side_files_current(  # missing, or older than the last conversion
        [path for key, path in topic_file_paths(dataset_dir, name).items() if key != "summary"], dataset_dir, name)
    if missing_inter or missing_topics:
        from dataset_preprocess.cli import prepare_dataset

        logging.getLogger(__name__).info("preparing %s in %s", name, dataset_dir.parent)
        prepare_dataset(name, out_dir=dataset_dir.parent, raw_file=raw_file, topics=missing_topics)
    if needs_review_vectors(config) and not review_vectors_current(dataset_dir, name):
        from dataset_preprocess.review_vectors import build_for_prepared

        logging.getLogger(__name__).info("writing the review vectors of %s (missing or stale)", name)
        build_for_prepared(name, out_dir=dataset_dir.parent)
    return dataset_dir
