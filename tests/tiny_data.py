"""A hand-made dataset small enough to check the model by eye: atomic files + topic side-files."""

import json
from pathlib import Path

import numpy as np

from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.data import SDMTMPDataset

N_USERS, N_ITEMS, PER_USER, N_TOPICS, TOPIC_DIM = 5, 24, 10, 3, 6


def interactions():
    """(user, item, rating, day): user u rates items 3u + j (j < 10) on days 100 + 3j + u.

    22 distinct items, so top-20 lists exist; no repeated (user, item) pair.
    """
    rows = []
    for u in range(N_USERS):
        for j in range(PER_USER):
            item = 3 * u + j
            rows.append((f"u{u}", f"i{item}", float(1 + (u + j) % 5), float(100 + 3 * j + u)))
    return rows


def review_topics():
    """(user, item, topic, sentences): u0-u3 talk about topics; u4's reviews are all outliers.

    u0's topic-2 review is of its LAST interaction (a test case): only ``leaky_all`` sees it.
    """
    inter = {u: [(i, d) for (uu, i, r, d) in interactions() if uu == u] for u in ("u0", "u1", "u2", "u3")}
    return [
        ("u0", inter["u0"][0][0], 0, 2.0),
        ("u0", inter["u0"][1][0], 1, 1.0),
        ("u0", inter["u0"][-1][0], 2, 1.0),
        ("u1", inter["u1"][0][0], 0, 1.0),
        ("u2", inter["u2"][2][0], 1, 3.0),
        ("u3", inter["u3"][3][0], 1, 1.0),
        ("u3", inter["u3"][3][0], 2, 1.0),
    ]


def write_tiny_dataset(root: Path, name: str = "tiny") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{d}" for (u, i, r, d) in interactions()]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    lines = ["user_id:token\titem_id:token\ttopic_id:token\tsentences:float"]
    lines += [f"{u}\t{i}\t{t}\t{s}" for (u, i, t, s) in review_topics()]
    (folder / f"{name}.review_topic").write_text("\n".join(lines) + "\n")
    vectors = np.random.default_rng(0).normal(size=(N_TOPICS, TOPIC_DIM)).astype(np.float32)
    np.save(folder / f"{name}.topic_vec.npy", vectors)
    meta = {"format_version": 1, "n_topics": N_TOPICS, "embedding_dim": TOPIC_DIM, "topics": []}
    (folder / f"{name}.topics.json").write_text(json.dumps(meta))
    return root


def write_tiny_review_vectors(folder: Path, name: str = "tiny") -> None:
    """One text vector per review of the ``.inter`` (as ``dataset_preprocess.topics.review_vectors``
    writes them), except u4's reviews, which have no text."""
    inter = [line.split("\t") for line in (folder / f"{name}.inter").read_text().splitlines()[1:]]
    pairs = sorted((user, item) for user, item, *_ in inter if user != "u4")
    lines = ["user_id:token\titem_id:token\tsentences:float"] + [f"{u}\t{i}\t1.0" for u, i in pairs]
    (folder / f"{name}.review_vec.tsv").write_text("\n".join(lines) + "\n")
    np.save(folder / f"{name}.review_vec.npy", np.ones((len(pairs), TOPIC_DIM), dtype=np.float32))
    (folder / f"{name}.review_vec.json").write_text(json.dumps(
        {"format_version": 1, "n_rows": len(pairs), "embedding_dim": TOPIC_DIM}))


def tiny_config(root: Path, **overrides):
    settings = {
        "data_path": str(root),
        "embedding_size": 4,
        "n_layers": 2,
        "dropout_rate": 0.0,
        "show_progress": False,
        "train_batch_size": 16,
        "eval_batch_size": 64,
        "epochs": 2,
        "checkpoint_dir": str(root / "saved"),
        "device": "cpu",
        "use_gpu": False,
        "topic_fit": "prepared",  # the hand-made side-files (the training fit needs review text)
    }
    settings.update(overrides)
    return build_config("SDMTMP", "tiny", config_dict=settings)


def tiny_dataset(root: Path, **overrides):
    config = tiny_config(root, **overrides)
    return config, SDMTMPDataset(config)


def hand_made_training_fits(monkeypatch) -> None:
    """The training fit of the hand-made dataset, made by the real code path
    (``dataset_preprocess.topics.training_fit.ensure_training_fit``) with the clustering replaced:
    a fit of some reviews keeps the hand-made topic rows of exactly those reviews."""
    import pandas as pd

    from dataset_preprocess.topics import fit
    from dataset_preprocess import pipeline

    def reviews(name, out_dir):
        inter = pd.read_csv(Path(out_dir) / name / f"{name}.inter", sep="\t", dtype=str)
        return pd.DataFrame({"user_id": inter["user_id:token"], "item_id": inter["item_id:token"]})

    def clustered(chosen, out_dir, name, config=None, fitted_on=None):
        source = Path(out_dir).parents[1]  # <dataset>/fits/<scope>-<digest>
        rows = pd.read_csv(source / f"{name}.review_topic", sep="\t", dtype=str)
        keep = set(zip(chosen["user_id"], chosen["item_id"]))
        rows = rows[[pair in keep for pair in zip(rows["user_id:token"], rows["item_id:token"])]]
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        rows.to_csv(Path(out_dir) / f"{name}.review_topic", sep="\t", index=False)
        np.save(Path(out_dir) / f"{name}.topic_vec.npy", np.load(source / f"{name}.topic_vec.npy"))
        meta = {"format_version": 1, "n_topics": N_TOPICS, "embedding_dim": TOPIC_DIM, "topics": [],
                **fit.fitted_on_record(chosen, fitted_on)}
        (Path(out_dir) / f"{name}.topics.json").write_text(json.dumps(meta))
        return meta

    monkeypatch.setattr(pipeline, "prepared_reviews", reviews)
    monkeypatch.setattr(fit, "build_topics", clustered)
