"""What each model input sees of the future, counted on the objects the runs use.

    python -m recbole_sdmtmp.leak_audit --datasets Instrument --protocols paper next_item global_time paper_as_printed

For every test case the audit takes its user's test interactions (the case's ground truth) and
its test time (the earliest of them under the per-user protocols, the second cut under
``global_time``), and for each input counts the cases where that input holds

- ``direct``: one of the case's own test interactions (or its review), and
- ``timeline``: any interaction or review, of any user, dated at or after the case's test time.

Inputs, read from what the runner builds (``runner.load_data``) and the side-files the topic fit
wrote: ``training interactions`` (every target and history entry of SD-MTMP's training rows and
every row a general model trains on), ``case
input`` (the history a test case reads; SD-MTMP's short-term window is its newest part), ``topic
fit`` (the reviews whose sentences the fit the training split reads clustered, as its record
names them: ``fitted_on``, or every review of the dataset where it says ``n_reviews``), ``topic
links`` (the reviews that tie users and items to topics in the training split) and ``review
vectors`` (the reviews RGCL, RRPU and MISSRec read in the training split). Under
``paper_as_printed`` the audit runs the procedure as printed: the short-term window from the
complete record, topics fitted on every review and topic links from every review. Writes ``leak_audit.md`` and ``.csv`` into
``--results``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.data.protocol import global_cut_times, user_sequences
from recbole_sdmtmp.registry import resolve_model
from recbole_sdmtmp.runner import load_data

PROTOCOLS = ("paper", "next_item", "global_time", "paper_as_printed")
AS_PRINTED = {"short_term_source": "complete_record", "topic_reviews": "leaky_all"}
INPUTS = ("training interactions", "case input", "topic fit", "topic links", "review vectors")
COLUMNS = ("dataset", "protocol", "input", "cases", "direct", "timeline")


@dataclass
class AuditedCases:
    """The test cases of a run: user, own test (user, item) pairs, test time, input entries."""

    users: list  # RecBole user id per case
    own: list  # set of (user, item) per case: its ground truth
    test_time: np.ndarray  # float [cases]
    inputs: list  # (items, times) arrays per case: the history it reads


def interaction_times(dataset) -> dict:
    """(user, item) -> time of every interaction of the (augmented) dataset."""
    seqs = user_sequences(dataset)
    times = {}
    for user, items, stamps in zip(seqs.users, seqs.items, seqs.times):
        for item, stamp in zip(items.tolist(), stamps.tolist()):
            times.setdefault((int(user), int(item)), float(stamp))
    return times


def rows_entries(feat, uid: str, iid: str, time: str, suffix: str) -> list:
    """Per row of an Interaction: its (user, items, times), the target and the history entries."""
    users = feat[uid].tolist()
    targets, stamps = feat[iid].numpy(), feat[time].numpy()
    lengths = feat["item_length"].numpy() if "item_length" in feat.columns else np.zeros(len(users), int)
    lists, list_times = feat[iid + suffix].numpy(), feat[time + suffix].numpy()
    return [(users[r], np.r_[targets[r], lists[r, :lengths[r]]], np.r_[stamps[r], list_times[r, :lengths[r]]])
            for r in range(len(users))]


def audited_cases(config, dataset, test_data, times: dict) -> AuditedCases:
    feat = test_data._dataset.inter_feat
    uid, iid, time = dataset.uid_field, dataset.iid_field, dataset.time_field
    suffix = config["LIST_SUFFIX"]
    users = feat[uid].tolist()
    own = [{(users[r], int(item)) for item in test_data.positives[r].tolist()} for r in range(len(users))]
    if config["protocol"] == "global_time":
        second_cut = global_cut_times(user_sequences(dataset), config["global_time_cuts"] or (0.8, 0.9))[1]
        test_time = np.full(len(users), second_cut)
    else:
        test_time = np.array([min(times[pair] for pair in pairs) for pairs in own])
    lengths = feat["item_length"].numpy()
    histories, stamps = feat[iid + suffix].numpy(), feat[time + suffix].numpy()
    inputs = [(histories[r, :lengths[r]], stamps[r, :lengths[r]]) for r in range(len(users))]
    return AuditedCases(users, own, test_time, inputs)


def count(cases: AuditedCases, entries_of_user, all_times: np.ndarray) -> tuple[int, int]:
    """(direct, timeline) over the cases. ``entries_of_user(case) -> set of (user, item)`` the
    input holds that could be the case's own; ``all_times``: the dated entries the input holds."""
    latest = float(np.max(all_times)) if len(all_times) else -np.inf
    direct = sum(1 for c in range(len(cases.users)) if cases.own[c] & entries_of_user(c))
    timeline = int(np.sum(latest >= cases.test_time))
    return direct, timeline


def pair_input(cases: AuditedCases, pairs: set, times: dict) -> tuple[int, int]:
    """Counts for an input that is a set of (user, item) interactions or reviews."""
    stamps = np.array([times[pair] for pair in pairs if pair in times], dtype=float)
    return count(cases, lambda c: pairs, stamps)


def fit_reviews(dataset, times: dict) -> set:
    """The reviews the topic fit read, from its record: every review of the dataset unless the
    record names what it was restricted to (``fitted_on``: the (user, item) pairs it read)."""
    files = dataset.topic_files
    record = files.meta
    tokens = dataset.field2token_id
    if "fitted_on" in record:
        pairs = (entry.split("\t") for entry in record["fitted_on"])
        return {(tokens[dataset.uid_field][u], tokens[dataset.iid_field][i]) for u, i in pairs}
    if "n_reviews" in record:  # the fit read every review of the .inter it was built from
        if record["n_reviews"] != len(times):
            raise ValueError(f"{dataset.dataset_name}: the topic fit's record counts {record['n_reviews']} reviews, "
                             f"the dataset {len(times)}: prepare the dataset again")
        return set(times)
    users = dataset._token_ids(dataset.uid_field, files.review_topic["user_id"])  # at least what it lists
    items = dataset._token_ids(dataset.iid_field, files.review_topic["item_id"])
    return {(int(u), int(i)) for u, i in zip(users, items) if u >= 0 and i >= 0}


def audit(dataset_name: str, protocol: str, data_path: str) -> list[dict]:
    """One row per input for ``dataset_name`` under ``protocol``."""
    settings = {"protocol": protocol, "data_path": data_path, "show_progress": False}
    if protocol == "paper_as_printed":
        settings.update(AS_PRINTED)
    config = build_config("SDMTMP", dataset_name, config_dict=settings)
    dataset, (train, _, test) = load_data(config, resolve_model("SDMTMP")[1])
    times = interaction_times(dataset)
    cases = audited_cases(config, dataset, test, times)
    uid, iid, time, suffix = dataset.uid_field, dataset.iid_field, dataset.time_field, config["LIST_SUFFIX"]
    rows = {}

    # the sequential training rows (targets and histories) and a general model's (every
    # training interaction once, each user's first included)
    _, (general_train, _, _) = load_data(build_config("BPR", dataset_name, config_dict=settings))
    training = (rows_entries(train._dataset.inter_feat, uid, iid, time, suffix)
                + rows_entries(general_train._dataset.inter_feat, uid, iid, time, suffix))
    train_pairs = {(user, int(item)) for user, items, _ in training for item in items.tolist()}
    train_times = np.concatenate([stamps for _, _, stamps in training]) if training else np.array([])
    rows["training interactions"] = count(cases, lambda c: train_pairs, train_times)

    def history_pairs(c):
        return {(cases.users[c], int(item)) for item in cases.inputs[c][0].tolist()}

    direct = sum(1 for c in range(len(cases.users)) if cases.own[c] & history_pairs(c))
    timeline = sum(1 for c in range(len(cases.users))
                   if len(cases.inputs[c][1]) and cases.inputs[c][1].max() >= cases.test_time[c])
    rows["case input"] = (direct, timeline)

    rows["topic fit"] = pair_input(cases, fit_reviews(train._dataset, times), times)
    reviews = train._dataset.topic_files.review_topic
    linked = train._dataset.linked_review_rows()
    link_users = train._dataset._token_ids(uid, reviews["user_id"])[linked]
    link_items = train._dataset._token_ids(iid, reviews["item_id"])[linked]
    rows["topic links"] = pair_input(cases, set(zip(link_users.tolist(), link_items.tolist())), times)

    review_config = build_config("RGCL", dataset_name, config_dict=settings)
    _, (review_train, _, _) = load_data(review_config, resolve_model("RGCL")[1])
    users, items, _ = review_train._dataset.review_vectors()
    rows["review vectors"] = pair_input(cases, set(zip(users.tolist(), items.tolist())), times)
    return [{"dataset": dataset_name, "protocol": protocol, "input": name, "cases": len(cases.users),
             "direct": counts[0], "timeline": counts[1]} for name, counts in rows.items()]


def render(rows: list[dict], command: str) -> tuple[str, str]:
    """(Markdown, CSV) of the audit."""
    csv = ",".join(COLUMNS) + "\n" + "".join(",".join(str(row[c]) for c in COLUMNS) + "\n" for row in rows)
    lines = ["# What each model input sees of the future (paper_as_printed: the test split is read)", "",
             f"Produced by `{command}`. Per test case: `direct` counts the cases whose input holds one of "
             "their own test interactions or its review; `timeline` those whose input holds any interaction or "
             "review, of any user, dated at or after the case's test time (its first test interaction; the "
             "second cut under `global_time`). `paper_as_printed` runs the procedure as printed (short-term "
             "window from the complete record, topics fitted on and linked through every review). Times are days: under the "
             "per-user splits a history entry of the same day as the case's first test interaction counts as "
             "`timeline` (a same-day order is by item id), which `global_time`'s strict cut never has. The "
             "topic fit reads the reviews its record names (`fitted_on`: the training split's, fitted per "
             "protocol); under `paper_as_printed` it is the preparation's fit of every review (its record's "
             "`n_reviews`).", "",
             "| dataset | protocol | input | test cases | direct | timeline |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['protocol']} | {r['input']} | {r['cases']} | {r['direct']} | {r['timeline']} |"
              for r in rows]
    return "\n".join(lines) + "\n", csv


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--data-path", default="dataset")
    parser.add_argument("--results", default="results")
    return parser.parse_args(argv)


def refuse_other_settings(path: Path, command: str) -> None:
    """An audit table is replaced only by the command that made it (other datasets or protocols
    go to another ``--results`` folder)."""
    if not path.is_file():
        return
    made_by = re.search(r"Produced by `([^`]*)`", path.read_text(encoding="utf-8"))
    if made_by and made_by.group(1) != command:
        raise SystemExit(f"{path} was produced by `{made_by.group(1)}`; this command would replace it with "
                         f"other settings. Run that command, or write elsewhere with --results.")


def main(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    command = ("python -m recbole_sdmtmp.leak_audit --datasets " + " ".join(args.datasets)
               + " --protocols " + " ".join(args.protocols))
    results = Path(args.results)
    refuse_other_settings(results / "leak_audit.md", command)
    rows = []
    for dataset in args.datasets:
        for model in ("SDMTMP", "RGCL"):  # the topics, and the review vectors RGCL, RRPU and MISSRec read
            ensure_prepared(build_config(model, dataset, config_dict={"data_path": args.data_path}))
        for protocol in args.protocols:
            print(f"auditing {dataset} under {protocol}", file=sys.stderr, flush=True)
            rows += audit(dataset, protocol, args.data_path)
    markdown, csv = render(rows, command)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / "leak_audit.csv", csv)
    atomic_write_text(results / "leak_audit.md", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
