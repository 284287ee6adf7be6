"""Make sure a run's atomic files (and topic files, for models that read them) exist."""

import logging
from pathlib import Path

from recbole_sdmtmp.model.sdmtmp import parse_ablation
from recbole_sdmtmp.topic_files import topic_file_paths


def needs_topics(config) -> bool:
    """SD-MTMP reads the review topics unless the w/o-H ablation drops them."""
    return config["model"] == "SDMTMP" and parse_ablation(config["ablation"]) != "w/o-H"


def ensure_prepared(config, raw_file=None) -> Path:
    """Run ``python -m dataset_preprocess`` for what is missing; return the dataset folder."""
    dataset_dir = Path(config["data_path"])
    name = config["dataset"]
    missing_inter = not (dataset_dir / f"{name}.inter").is_file()
    topics = needs_topics(config)
    missing_topics = topics and not all(
        path.is_file() for key, path in topic_file_paths(dataset_dir, name).items() if key != "summary"
    )
    if missing_inter or missing_topics:
        from dataset_preprocess.cli import prepare_dataset

        logging.getLogger(__name__).info("preparing %s in %s", name, dataset_dir.parent)
        prepare_dataset(name, out_dir=dataset_dir.parent, raw_file=raw_file, topics=missing_topics)
    return dataset_dir
