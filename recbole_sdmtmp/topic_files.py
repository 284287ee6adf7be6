"""The topic side-files' format, writer paths and validating reader: re-exported from
:mod:`dataset_preprocess.topic_files`, where they live.

Imports go one way only: ``recbole_sdmtmp`` may import ``dataset_preprocess``, never the
reverse (tested in ``tests/test_import_direction.py``). This module keeps the model's import
path ``from recbole_sdmtmp.topic_files import TopicFiles, load_topic_files`` working.
"""

from dataset_preprocess.topic_files import (  # noqa: F401
    FORMAT_VERSION,
    META_SUFFIX,
    REVIEW_TOPIC_HEADER,
    REVIEW_TOPIC_SUFFIX,
    SUMMARY_SUFFIX,
    TOPIC_VEC_SUFFIX,
    TopicFiles,
    load_topic_files,
    topic_file_paths,
)

__all__ = [
    "FORMAT_VERSION", "META_SUFFIX", "REVIEW_TOPIC_HEADER", "REVIEW_TOPIC_SUFFIX",
    "SUMMARY_SUFFIX", "TOPIC_VEC_SUFFIX", "TopicFiles", "load_topic_files", "topic_file_paths",
]
