"""Why SD-MTMP recommends what it does: a user's top 10, each with the review topics that tie
the user to the item (the paper's "interpretability" future work).

    python -m recbole_sdmtmp.explain --dataset Instrument --user A2EZWZ8MBEDOLN \\
        --checkpoint saved/SDMTMP-<date>.pth

The ranking is the model's own: the user's evaluation case of the test split (under the
configured protocol, ``paper`` by default: the user's training history as input), scored by
``full_sort_predict`` with the same items excluded as in evaluation (padding, and the items the
user already interacted with in the input). For each recommended item the explanation lists the
topics shared by the user's *training* reviews and the item's *training* reviews, i.e. exactly
the user-topic and item-topic hyperedges the model was trained with
(``SDMTMPDataset.topic_incidence`` on the training split), each with its top words (from
``<Name>.topics.json``) and how many of the user's and the item's review sentences fall in it.
A shared topic says what the user and the item's reviewers both talk about; it is a reading aid,
not a causal account of the score.

Without ``--checkpoint`` a model is trained first with the defaults of ``properties/`` (the run
script's settings) and saved under ``saved/``; the command says so. Loading a checkpoint
unpickles it (RecBole stores its Config there): load only checkpoints you made.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from dataset_preprocess.registry import lookup
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.runner import load_trained, run
from recbole_sdmtmp.settings import check_command_line, check_settings

TOP_K = 10
SHOWN_TOPICS = 3


@dataclass
class TopicLink:
    topic_id: int
    words: list[str]
    user_sentences: int
    item_sentences: int


@dataclass
class Recommendation:
    rank: int
    item: str
    score: float
    held_out: bool
    shared: list[TopicLink] = field(default_factory=list)
    item_topics: list[TopicLink] = field(default_factory=list)  # the item's own, if none shared


@dataclass
class Explanation:
    dataset: str
    user: str
    protocol: str
    history: list[str]
    held_out: list[str]
    user_topics: list[TopicLink]
    recommendations: list[Recommendation]
    checkpoint: str
    trained_now: bool = False


def topic_sentence_counts(dataset: SDMTMPDataset, side: str) -> sp.csr_matrix:
    """Review sentences per (row, topic), from the same reviews as the model's incidence."""
    return dataset.topic_incidence(side, sentences=True).astype(np.float64)


def load_model(checkpoint: str, dataset_name: str | None = None, device: str = "cpu"):
    """(config, full dataset, train dataset, test loader, model) of an SD-MTMP checkpoint,
    rebuilt with the checkpoint's own Config by the runner (``runner.load_trained``); the model
    and dataset are checked first, before any data is built."""
    config = torch.load(checkpoint, map_location="cpu", weights_only=False)["config"]
    if config["model"] != "SDMTMP":
        raise ValueError(f"{checkpoint} is a {config['model']} checkpoint; explain needs SD-MTMP "
                         "(the model with review topics)")
    if dataset_name is not None and config["dataset"] != dataset_name:
        raise ValueError(f"{checkpoint} was trained on {config['dataset']}, not {dataset_name}")
    config, dataset, (train_data, _, test_data), model = load_trained(checkpoint, device)
    return config, dataset, train_data._dataset, test_data, model


def _links(counts_row: np.ndarray, other_row: np.ndarray | None, topics: list[dict],
           limit: int) -> list[TopicLink]:
    """Topics of ``counts_row`` (shared with ``other_row`` when given), the strongest first."""
    if other_row is None:
        ids = np.flatnonzero(counts_row)
        strength = counts_row[ids]
        other = np.zeros_like(counts_row)
    else:
        ids = np.flatnonzero((counts_row > 0) & (other_row > 0))
        strength = np.minimum(counts_row[ids], other_row[ids])
        other = other_row
    order = ids[np.lexsort((ids, -counts_row[ids], -strength))][:limit]
    return [TopicLink(int(t), list(topics[t]["words"]), int(counts_row[t]), int(other[t]))
            for t in order]


@torch.no_grad()
def explain(checkpoint: str, user: str, dataset_name: str | None = None, k: int = TOP_K,
            shown_topics: int = SHOWN_TOPICS) -> Explanation:
    config, dataset, train_dataset, test_data, model = load_model(checkpoint, dataset_name)
    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    uid = dataset.field2token_id[uid_field].get(user)
    if uid is None:
        examples = ", ".join(dataset.field2id_token[uid_field][1:4])
        raise ValueError(f"user {user!r} is not in {config['dataset']} (user ids look like "
                         f"{examples})")
    case = None
    for interaction, (history_u, history_i), positive_u, positive_i in test_data:
        rows = torch.nonzero(interaction[uid_field] == uid).flatten()
        if len(rows):
            row = int(rows[-1])  # next_item: the newest case; paper: the only one
            case = (interaction[torch.tensor([row])], history_i[history_u == row],
                    positive_i[positive_u == row])
    if case is None:
        raise ValueError(f"user {user!r} has no test case in {config['dataset']}")
    interaction, excluded, positives = case
    scores = model.full_sort_predict(interaction.to(config["device"])).view(-1).cpu()
    scores[0] = -torch.inf  # padding item
    scores[excluded] = -torch.inf  # as in evaluation: the items of the input history
    top_scores, top_items = torch.topk(scores, k)

    meta_topics = train_dataset.topic_files.meta["topics"]
    user_counts = topic_sentence_counts(train_dataset, "user")[uid].toarray().ravel()
    item_counts = topic_sentence_counts(train_dataset, "item")
    tokens = dataset.field2id_token[iid_field]
    held_out = set(positives.tolist())
    recommendations = []
    for rank, (item, score) in enumerate(zip(top_items.tolist(), top_scores.tolist()), start=1):
        item_row = item_counts[item].toarray().ravel()
        shared = _links(user_counts, item_row, meta_topics, shown_topics)
        recommendations.append(Recommendation(
            rank, str(tokens[item]), float(score), item in held_out, shared,
            [] if shared else _links(item_row, None, meta_topics, shown_topics)))
    history_ids = interaction[dataset.item_id_list_field][0]
    history = [str(tokens[i]) for i in history_ids.tolist() if i]
    return Explanation(config["dataset"], user, config["protocol"] or "next_item", history,
                       [str(tokens[i]) for i in sorted(held_out)],
                       _links(user_counts, None, meta_topics, 5), recommendations, checkpoint)


def _topic(link: TopicLink, n_words: int = 5) -> str:
    return f"#{link.topic_id} \"{', '.join(link.words[:n_words])}\""


def format_explanation(e: Explanation) -> str:
    lines = [f"SD-MTMP top {len(e.recommendations)} for user {e.user} on {e.dataset} "
             f"(checkpoint {e.checkpoint}{', trained just now with the defaults' if e.trained_now else ''})",
             f"Input: the {len(e.history)} interaction(s) the model reads for the user's test "
             f"case (protocol {e.protocol}); items the user already has are not ranked; "
             f"{len(e.held_out)} held-out test item(s), marked * if recommended."]
    if e.user_topics:
        lines.append("The user's training reviews talk about: " + "; ".join(
            f"{_topic(t)} ({t.user_sentences} sentence{'s' * (t.user_sentences != 1)})"
            for t in e.user_topics) + ".")
    else:
        lines.append("None of the user's training review sentences is in a topic (all outliers "
                     "or no text): no topic can link the user to an item.")
    lines.append("")
    for r in e.recommendations:
        mark = "*" if r.held_out else " "
        lines.append(f"{r.rank:>2}.{mark} item {r.item}  (score {r.score:.3f})")
        if r.shared:
            for t in r.shared:
                lines.append(f"      shared topic {_topic(t)}: {t.user_sentences} of the user's "
                             f"sentences, {t.item_sentences} of the item's")
        elif r.item_topics:
            lines.append("      no topic shared with the user; the item's reviews talk about "
                         + "; ".join(_topic(t, 4) for t in r.item_topics))
        else:
            lines.append("      no topic shared; the item has no training review in a topic")
    return "\n".join(lines)


def train_default(dataset: str) -> str:
    """Train SD-MTMP with the defaults (as ``run_recbole_sdmtmp.py --dataset NAME``); returns
    the checkpoint path."""
    config = build_config("SDMTMP", dataset)
    check_settings(config)  # the command line's --key=value: known keys, numbers in range
    ensure_prepared(config)
    result = run(config, evaluate_test=False)
    if not result.checkpoint:
        raise RuntimeError("training saved no checkpoint")
    return result.checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_sdmtmp.explain",
        description="A trained SD-MTMP model's top 10 for one user, each item with the review "
                    "topics that link the user to it.")
    parser.add_argument("--dataset", "-d", required=True, help="prepared dataset (Instrument...)")
    parser.add_argument("--user", "-u", required=True, help="the user's raw id (reviewerID)")
    parser.add_argument("--checkpoint", help="an SD-MTMP checkpoint (saved/SDMTMP-*.pth); "
                                             "without it a model is trained with the defaults")
    parser.add_argument("-k", type=int, default=TOP_K, help="how many items (default 10)")
    parser.add_argument("--topics", type=int, default=SHOWN_TOPICS,
                        help="shared topics shown per item (default 3)")
    args, overrides = parser.parse_known_args(argv)
    # RecBole 1.2.1's chained fillna: harmless on pandas < 3 (docs/DESIGN.md §6), noise in a report
    warnings.filterwarnings("ignore", "A value is trying to be set on a copy", FutureWarning)
    sys.argv = sys.argv[:1] + overrides  # RecBole's Config reads --key=value from sys.argv
    try:
        check_command_line(overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    amazon = lookup(args.dataset)
    dataset = amazon.name if amazon is not None else args.dataset
    trained_now = args.checkpoint is None
    checkpoint = args.checkpoint
    if trained_now:
        print(f"No --checkpoint: training SD-MTMP on {dataset} with the defaults first "
              "(as run_recbole_sdmtmp.py does; the checkpoint is saved under saved/).",
              file=sys.stderr)
        try:
            checkpoint = train_default(dataset)
        except ValueError as exc:  # a bad setting, a dataset that cannot be prepared
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif not Path(checkpoint).is_file():
        print(f"error: checkpoint {checkpoint} does not exist", file=sys.stderr)
        return 2
    try:
        explanation = explain(checkpoint, args.user, dataset, args.k, args.topics)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    explanation.trained_now = trained_now
    if trained_now:
        print()
    print(format_explanation(explanation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
