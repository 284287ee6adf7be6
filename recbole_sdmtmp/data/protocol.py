"""The evaluation protocols of docs/DESIGN.md §4, one switch (``protocol: paper | next_item``), and
the paper's own procedure as a diagnostic (``paper_as_printed``).

Both start from RecBole's augmented ``SequentialDataset`` (one row per interaction after a
user's first: the target with everything before it) and differ in what is held out and how a
held-out case is scored:

- ``paper`` (the paper's section 3.1): each user's *interactions* are split by time with
  ``eval_args.split.RS`` (70/10/20): the newest 20% are the user's test items, the 10% before
  them validation, the rest training. One evaluation case per user: its input is the user's
  training history, its ground truth all of the user's held-out items of that phase; training
  items (and, at test, validation items) are never recommended.
- ``next_item``: each user's *cases* are split 70/10/20 exactly as RecBole's ``RS`` split does;
  every held-out case is scored on its own, with its history as input and one positive; the
  items of its history are never recommended.
- ``global_time``: the paper's protocol on one timeline for all users. Two global cuts
  (``global_time_cuts``: quantiles of all interaction times, by default the 80th and 90th): the
  model trains on the interactions before the first cut; a validation case is a user with
  interactions between the cuts (input: its history before the first cut; ground truth: those
  interactions); a test case is a user with interactions at or after the second cut (input: its
  history before the second cut; ground truth: all of them). History items are never
  recommended. A user with no history before a cut is no case of that phase; items first seen
  after a cut stay candidates. No case reads, and no training row holds, anything dated at or
  after its phase's cut: other users' futures included, which the per-user splits let in.
- ``paper_as_printed`` (a diagnostic, never the verdict): section 3.1 as printed, each user's
  first 80% for training and the rest for testing, no validation split; early stopping (and any
  configuration choice) reads the test split, so every result of it says "selection on the test
  split".

Two readings of the paper's text are data-side switches (section 3.3, last paragraph, and
sections 1 and 2.3):

- ``training_cases``: ``sequential`` (a case per training interaction after the user's first,
  its history the items before it) or ``per_user`` (every training interaction is a BPR
  positive, and each row's history is its user's whole training record: one e_short per user,
  from the newest 20% of it).
- ``short_term_source``: ``training_history`` (what a case reads is its own history) or
  ``complete_record`` (an evaluation case, and a ``per_user`` training row, reads the user's
  complete record, whose newest 20% is the held-out period under an 80/20 split: it leaks the
  test items into the input, so ``paper`` and ``next_item`` refuse it unless
  ``allow_test_leak: True`` names the leak).

Every model, sequential or general, runs through these loaders and RecBole's own evaluator.
Training negatives are items the user never interacted with in training (paper section 2.3;
``recbole_sdmtmp/data/negatives.py``).
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.data.interaction import cat_interactions
from recbole.data.utils import get_dataloader

from recbole_sdmtmp.data.dataset import prepared_fit_reads_held_out
from recbole_sdmtmp.data.negatives import CaseNegativesDataLoader, TrainingItemSampler
from recbole_sdmtmp.distributed import case_shard

PROTOCOLS = ("paper", "next_item", "global_time", "paper_as_printed")
PER_USER_PROTOCOLS = ("paper", "paper_as_printed")  # one evaluation case per user
AS_PRINTED_RATIOS = (0.8, 0.0, 0.2)  # section 3.1: the first 80% for training, the rest for testing
TRAINING_CASES = ("sequential", "per_user")
SHORT_TERM_SOURCES = ("training_history", "complete_record")


def protocol_ratios(protocol: str, ratios):
    """The split ratios a protocol uses: ``paper_as_printed`` has its own, without validation."""
    return AS_PRINTED_RATIOS if protocol == "paper_as_printed" else ratios


def split_counts(total: int, ratios) -> list[int]:
    """Sizes of the chronological parts of ``total`` records, RecBole's rule (``_calcu_split_ids``):
    every part but the first rounded down, then each non-empty-by-ratio part given at least one
    record while the first keeps more than one."""
    ratios = [r / sum(ratios) for r in ratios]
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


@dataclass
class UserSequences:
    """Each user's chronological item sequence, recovered from the augmented cases."""

    first_case: np.ndarray  # [U] index of the user's first case row
    n_cases: np.ndarray  # [U] number of case rows (= interactions - 1)
    items: list  # U arrays: the user's items in time order (first item included)
    users: np.ndarray  # [U] RecBole user id
    times: list | None = None  # U arrays: the times of ``items`` (None without a time field)


def user_sequences(dataset) -> UserSequences:
    """Rows of an augmented SequentialDataset are sorted by user, then time; a user's first case
    has a one-item history (its first interaction) and the targets follow one per row."""
    uid = dataset.inter_feat[dataset.uid_field].numpy()
    targets = dataset.inter_feat[dataset.iid_field].numpy()
    first_items = dataset.inter_feat[dataset.item_id_list_field][:, 0].numpy()
    if len(uid) and np.any(np.diff(uid) < 0):
        raise ValueError("cases must be sorted by user (RecBole's augmentation does this)")
    starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]]) if len(uid) else np.array([], int)
    counts = np.diff(np.r_[starts, len(uid)])
    items = [np.r_[first_items[s], targets[s:s + c]] for s, c in zip(starts, counts)]
    times = None
    time_field = dataset.time_field
    if time_field and time_field in dataset.inter_feat.columns:
        stamps = dataset.inter_feat[time_field].numpy()
        first_stamps = dataset.inter_feat[time_field + dataset.config["LIST_SUFFIX"]][:, 0].numpy()
        times = [np.r_[first_stamps[s], stamps[s:s + c]] for s, c in zip(starts, counts)]
    return UserSequences(starts, counts, items, uid[starts], times)


def global_cut_times(seqs: UserSequences, quantiles) -> tuple[float, float]:
    """The two cut times of ``global_time``: ``quantiles`` of every interaction's time."""
    quantiles = [float(q) for q in quantiles]
    if len(quantiles) != 2 or not 0 < quantiles[0] < quantiles[1] < 1:
        raise ValueError(f"global_time_cuts={quantiles!r} is not valid: two increasing quantiles of the "
                         "interaction times, each between 0 and 1 (e.g. [0.8, 0.9])")
    if seqs.times is None:
        raise ValueError("protocol global_time needs the interaction times: add the time field to load_col")
    first, second = np.quantile(np.concatenate(seqs.times), quantiles)
    return float(first), float(second)


class HeldOutDataLoader(FullSortEvalDataLoader):
    """Full-sort evaluation with any number of positives per case and a per-case exclusion list.

    ``dataset`` holds one row per case (what the model reads: user id, history); ``positives[r]``
    and ``excluded[r]`` are the item ids of case r. Batches have RecBole's evaluation format
    ``(interaction, (history_u, history_i), positive_u, positive_i)``, so RecBole's trainer masks
    the excluded items and its evaluator computes HR and NDCG with several positives.

    Under torch.distributed each process scores a contiguous share of the cases, unpadded
    (``self.cases``; RecBole's padded ``DistributedSampler`` would count some cases twice), and
    ``recbole_sdmtmp.distributed`` gathers the per-case rows before the metrics are computed.
    """

    def __init__(self, config, dataset, positives, excluded):
        if len(positives) != len(dataset) or len(excluded) != len(dataset):
            raise ValueError("one positive list and one exclusion list per case are needed")
        self.positives = [torch.as_tensor(p, dtype=torch.int64) for p in positives]
        self.excluded = [torch.as_tensor(e, dtype=torch.int64) for e in excluded]
        distributed = not config["single_spec"]
        self.cases = case_shard(len(dataset)) if distributed else np.arange(len(dataset))
        config["single_spec"] = True  # no DistributedSampler: the share is taken above
        try:
            super().__init__(config, dataset, sampler=None, shuffle=False)
        finally:
            config["single_spec"] = not distributed
        self.is_sequential = True

    def _init_batch_size_and_step(self):
        self.sample_size = len(self.cases)  # what the index sampler runs over
        self.step = self.config["eval_batch_size"]
        self.set_batch_size(self.step)

    def collate_fn(self, index):
        index = self.cases[np.array(index, dtype=np.int64)]
        interaction = self.transform(self._dataset, self._dataset[index])
        positives = [self.positives[i] for i in index]
        excluded = [self.excluded[i] for i in index]
        positive_u = torch.cat([torch.full_like(p, row) for row, p in enumerate(positives)])
        history_u = torch.cat([torch.full_like(e, row) for row, e in enumerate(excluded)])
        return interaction, (history_u, torch.cat(excluded)), positive_u, torch.cat(positives)


@dataclass
class ProtocolData:
    """What a run trains and evaluates on."""

    train_data: object  # its ._dataset holds the training cases
    valid_data: HeldOutDataLoader
    test_data: HeldOutDataLoader


def _rows(dataset, index) -> object:
    return dataset.copy(dataset.inter_feat[torch.as_tensor(np.asarray(index, dtype=np.int64))])


def split_cases(dataset, protocol: str, ratios, cuts=(0.8, 0.9)):
    """Row indices of the training cases and, per phase, the evaluation cases with their
    positives and exclusions (see the module docstring). ``cuts``: ``global_time``'s quantiles."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not valid; choose 'paper' (per-user 80/20 by "
                         "time, one case per user, the paper's section 3.1), 'next_item', 'global_time' "
                         "(the paper's protocol cut on one timeline for all users), or the diagnostic "
                         "'paper_as_printed' (no validation split: selection on the test split)")
    ratios = protocol_ratios(protocol, ratios)
    seqs = user_sequences(dataset)
    if protocol == "global_time":
        first_cut, second_cut = global_cut_times(seqs, cuts)
    train_rows, train_items = [], {}
    phases = {"valid": ([], [], []), "test": ([], [], [])}  # rows, positives, exclusions
    for index, (start, n_cases, items, user) in enumerate(zip(seqs.first_case, seqs.n_cases, seqs.items, seqs.users)):
        if protocol == "global_time":  # a user's times ascend (RecBole's order TO)
            before = np.searchsorted(seqs.times[index], [first_cut, second_cut], side="left")
            n_train, n_history = int(before[0]), int(before[1])
            train_rows.extend(range(start, start + max(n_train - 1, 0)))  # targets at 1..n_train-1
            train_items[user] = items[:n_train]
            cases = {"valid": (n_train, items[n_train:n_history]), "test": (n_history, items[n_history:])}
            for phase, (rows, positives, excluded) in phases.items():
                n_input, held_out = cases[phase]
                if n_input and len(held_out):  # a history before the cut and something after it
                    rows.append(start + n_input - 1)  # the case whose history is items[:n_input]
                    positives.append(held_out)
                    excluded.append(items[:n_input])
        elif protocol in PER_USER_PROTOCOLS:
            n_train, n_valid, _ = split_counts(n_cases + 1, ratios)
            train_rows.extend(range(start, start + n_train - 1))  # targets at positions 1..n_train-1
            train_items[user] = items[:n_train]
            held_out = {"valid": items[n_train:n_train + n_valid], "test": items[n_train + n_valid:]}
            seen = {"valid": items[:n_train], "test": items[:n_train + n_valid]}
            for phase, (rows, positives, excluded) in phases.items():
                if len(held_out[phase]):
                    rows.append(start + n_train - 1)  # the case whose history is the training part
                    positives.append(held_out[phase])
                    excluded.append(seen[phase])
        else:
            n_train, n_valid, _ = split_counts(n_cases, ratios)
            train_rows.extend(range(start, start + n_train))
            train_items[user] = items[:n_train + 1]
            bounds = {"valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n_cases)}
            for phase, (rows, positives, excluded) in phases.items():
                for case in range(*bounds[phase]):  # case j: history items[:j+1], target items[j+1]
                    rows.append(start + case)
                    positives.append(items[case + 1:case + 2])
                    excluded.append(np.setdiff1d(items[:case + 1], items[case + 1:case + 2]))
    return train_rows, train_items, phases


def longest_input(interactions_per_user, protocol: str, ratios, short_term_source: str = "training_history") -> int:
    """The longest history any case of the protocol reads: a user's training part (``paper``),
    all but its last interaction (``next_item``), or its complete record (``complete_record``)."""
    if short_term_source == "complete_record":
        return max((int(n) for n in interactions_per_user), default=1)
    if protocol in PER_USER_PROTOCOLS:
        ratios = protocol_ratios(protocol, ratios)
        return max((split_counts(int(n), ratios)[0] for n in interactions_per_user), default=1)
    return max((int(n) - 1 for n in interactions_per_user), default=1)  # next_item; global_time at most


def fit_history_length(config, dataset, protocol: str, ratios, short_term_source: str = "training_history") -> int:
    """Shorten MAX_ITEM_LIST_LENGTH to the longest history a case reads, before augmentation.

    RecBole pads every history to MAX_ITEM_LIST_LENGTH and sequential models compute over the
    padding; cutting it to what the data needs (Instrument under ``paper``: 50 -> 30) changes no
    case's input (nothing is truncated that a case reads) and saves SASRec and GRU4Rec that work.
    """
    counts = dataset.inter_feat[dataset.uid_field].value_counts().to_numpy()
    length = max(1, min(config["MAX_ITEM_LIST_LENGTH"], longest_input(counts, protocol, ratios, short_term_source)))
    config["MAX_ITEM_LIST_LENGTH"] = length
    dataset.max_item_list_len = length
    return length


def training_pairs(dataset, train_items: dict) -> set:
    """The (user, item) raw tokens of every training interaction of a split."""
    users, items = dataset.field2id_token[dataset.uid_field], dataset.field2id_token[dataset.iid_field]
    return {(users[int(user)], items[int(item)]) for user, held in train_items.items() for item in held.tolist()}


def every_interaction(dataset, train_rows, train_items: dict | None = None) -> object:
    """A general model's training rows: every training interaction once, each user's first one
    included (a sequential case needs a history, so the first interaction is no case's target).

    The first interaction is read from the user's first case (whose history is that one item);
    every history is emptied (length 0), since a general model reads none and RecBole's
    ``SequentialDataset.inter_matrix`` would add the first item of a length-1 history again.
    The ``inter_matrix`` of the result is the training split exactly, as before. ``train_items``
    (user -> training items): a user without any (``global_time``: all after the first cut)
    has no first interaction in training either."""
    feat = dataset.inter_feat
    seqs = user_sequences(dataset)
    first_case = seqs.first_case
    if train_items is not None:
        first_case = first_case[[len(train_items[user]) > 0 for user in seqs.users]]
    firsts = feat[torch.as_tensor(first_case, dtype=torch.int64)]
    suffix = dataset.config["LIST_SUFFIX"]
    for name in list(firsts.columns):
        if name + suffix in firsts.columns:  # item_id, rating, timestamp <- the history's first entry
            firsts.interaction[name] = firsts[name + suffix][:, 0].clone()
    rows = cat_interactions([firsts, feat[torch.as_tensor(np.asarray(train_rows, dtype=np.int64))]])
    for name in rows.columns:
        if name.endswith(suffix) or name == dataset.item_list_length_field:
            rows.interaction[name] = torch.zeros_like(rows[name])
    return dataset.copy(rows)


def user_records(dataset, seqs: UserSequences) -> dict[str, list]:
    """Each user's complete record, oldest first, for every list field (item_id_list,
    rating_list, timestamp_list): its first case's one-item history, then every case's target
    (untruncated, as ``user_sequences`` recovers the items)."""
    feat, suffix = dataset.inter_feat, dataset.config["LIST_SUFFIX"]
    records = {}
    for name in feat.columns:
        if name + suffix in feat.columns:
            lists, targets = feat[name + suffix], feat[name]
            records[name + suffix] = [torch.cat([lists[start, :1], targets[start:start + count]])
                                      for start, count in zip(seqs.first_case, seqs.n_cases)]
    return records


def with_histories(rows, uid_field: str, users: np.ndarray, histories: dict[str, list], length_field: str,
                   width: int):
    """Replace the list fields of ``rows`` (an Interaction), row by row, by its user's history
    (``histories[field][u]`` for the user at position u of ``users``), newest ``width`` entries,
    left-aligned and zero-padded as RecBole's are."""
    position = {int(user): index for index, user in enumerate(users)}
    index = [position[int(user)] for user in rows[uid_field].tolist()]
    for name, per_user in histories.items():
        column = torch.zeros((len(rows), width), dtype=rows[name].dtype)
        for row, u in enumerate(index):
            values = per_user[u][-width:]
            column[row, :len(values)] = values
        rows.interaction[name] = column
    first = next(iter(histories.values()))
    rows.interaction[length_field] = torch.tensor([min(len(first[u]), width) for u in index],
                                                  dtype=rows[length_field].dtype)
    return rows


def log_global_time(dataset, cuts, train_items: dict, phases: dict) -> None:
    """Say where the cuts fall and what they leave out: users with held-out interactions but no
    history before the cut (no case), test items never seen in training (candidates all the same)."""
    seqs = user_sequences(dataset)
    first_cut, second_cut = global_cut_times(seqs, cuts)
    last = {int(user): times[-1] for user, times in zip(seqs.users, seqs.times)}
    first = {int(user): times[0] for user, times in zip(seqs.users, seqs.times)}
    no_history = sum(1 for user in last if last[user] >= second_cut and first[user] >= second_cut)
    seen = set(np.concatenate([items for items in train_items.values()] or [np.array([], int)]).tolist())
    positives = np.concatenate(phases["test"][1]) if phases["test"][1] else np.array([], int)
    unseen = int(sum(1 for item in positives.tolist() if item not in seen))
    logging.getLogger(__name__).info(
        f"global_time: cuts at time {first_cut:g} and {second_cut:g} (quantiles {cuts[0]:g}, {cuts[1]:g}); "
        f"{len(phases['valid'][0])} validation and {len(phases['test'][0])} test cases; {no_history} users "
        f"active only after the second cut are no case; {unseen} of {len(positives)} test positives are "
        "items no training interaction holds (they stay candidates)")


def reading_settings(config, protocol: str) -> tuple[str, str]:
    """(training_cases, short_term_source), checked: the leaking reading only where named."""
    cases = config["training_cases"] or "sequential"
    source = config["short_term_source"] or "training_history"
    if cases not in TRAINING_CASES:
        raise ValueError(f"training_cases={cases!r} is not valid; choose one of: {', '.join(TRAINING_CASES)}")
    if source not in SHORT_TERM_SOURCES:
        raise ValueError(f"short_term_source={source!r} is not valid; choose one of: {', '.join(SHORT_TERM_SOURCES)}")
    if source == "complete_record" and protocol != "paper_as_printed" and not config["allow_test_leak"]:
        raise ValueError(f"short_term_source=complete_record reads each user's complete record, whose newest "
                         f"20% is the held-out period: under protocol {protocol!r} it leaks the test items into "
                         "the input. Set allow_test_leak=True to run it as a labelled leaking diagnostic, or use "
                         "protocol=paper_as_printed")
    if (config["topic_fit"] or "train") == "prepared" and protocol != "paper_as_printed" \
            and not config["allow_test_leak"] and prepared_fit_reads_held_out(config["data_path"], config["dataset"]):
        raise ValueError(f"topic_fit=prepared reads the topics the preparation fitted on every review of the file, "
                         f"the held-out ones included: under protocol {protocol!r} the clusters and topic vectors "
                         "have read validation and test reviews. Set allow_test_leak=True to run it as a labelled "
                         "leaking diagnostic, use protocol=paper_as_printed, or topic_fit=train (the default)")
    if (config["topic_reviews"] or "train") == "leaky_all" and protocol != "paper_as_printed" \
            and not config["allow_test_leak"]:
        raise ValueError(f"topic_reviews=leaky_all links users and items to topics through every review, the "
                         f"held-out ones included: under protocol {protocol!r} it leaks validation and test "
                         "reviews into the model. Set allow_test_leak=True to run it as a labelled leaking "
                         "diagnostic, or use protocol=paper_as_printed")
    return cases, source


def prepare(config, dataset, negatives_per_case: bool = False, every_training_interaction: bool = False) -> ProtocolData:
    """Split ``dataset`` under ``config['protocol']`` and build RecBole dataloaders.

    ``negatives_per_case``: a training batch holds ``train_batch_size`` cases, each with its k
    negatives as a [B, k] field (``recbole_sdmtmp.data.negatives``), instead of RecBole's layout
    (each case repeated k times inside the batch). ``every_training_interaction`` (general
    models): the training rows are every training interaction (``every_interaction``), not the
    sequential cases, whose targets leave out each user's first interaction."""
    ratios = config["eval_args"]["split"]["RS"]
    protocol = config["protocol"] or "next_item"
    cases, source = reading_settings(config, protocol)
    fit_history_length(config, dataset, protocol, ratios, source)
    dataset._change_feat_format()  # to Interaction, then RecBole's augmentation (what build() does first)
    cuts = config["global_time_cuts"] or (0.8, 0.9)
    train_rows, train_items, phases = split_cases(dataset, protocol, ratios, cuts)
    # the interactions a run may train on, whatever rows a model makes of them: the reviews the
    # topic fit reads (recbole_sdmtmp.data.dataset), the same for every split made from here
    dataset.training_pairs = training_pairs(dataset, train_items)
    if protocol == "global_time":
        log_global_time(dataset, cuts, train_items, phases)
    dataset._drop_unused_col()
    seqs = user_sequences(dataset)
    records = user_records(dataset, seqs) if cases == "per_user" or source == "complete_record" else None
    width, length_field = dataset.max_item_list_len, dataset.item_list_length_field
    if cases == "per_user":  # every training interaction, each row reading its user's whole record
        if every_training_interaction:
            raise ValueError("training_cases=per_user is a reading of SD-MTMP's input; a general model "
                             "already trains on every training interaction")
        train_dataset = every_interaction(dataset, train_rows, train_items)
        n_train = {int(user): len(train_items[user]) for user in seqs.users}
        histories = records if source == "complete_record" else {
            name: [values[:n_train[int(user)]] for user, values in zip(seqs.users, per_user)]
            for name, per_user in records.items()}
        with_histories(train_dataset.inter_feat, dataset.uid_field, seqs.users, histories, length_field, width)
        train_dataset.holds_every_interaction = True  # inter_matrix: the rows, nothing added
    elif every_training_interaction:
        train_dataset = every_interaction(dataset, train_rows, train_items)
    else:
        train_dataset = _rows(dataset, train_rows)

    neg_args = config["train_neg_sample_args"]
    sampler = None
    if neg_args and neg_args.get("distribution", "none") != "none" and neg_args.get("sample_num", "none") != "none":
        popularity = np.bincount(train_dataset.inter_feat[dataset.iid_field].numpy(), minlength=dataset.item_num)
        sampler = TrainingItemSampler(dataset.item_num, train_items, neg_args["distribution"], popularity,
                                      config["train_neg_exclude"] or "interacted")
    loader = CaseNegativesDataLoader if negatives_per_case and sampler is not None else get_dataloader(config, "train")
    train_data = loader(config, train_dataset, sampler, shuffle=config["shuffle"])
    loaders = {}
    for phase, (rows, positives, excluded) in phases.items():
        if phase == "valid" and protocol == "paper_as_printed":  # no validation split
            continue
        cases_dataset = _rows(dataset, rows)
        if source == "complete_record":
            with_histories(cases_dataset.inter_feat, dataset.uid_field, seqs.users, records, length_field, width)
        loaders[phase] = HeldOutDataLoader(config, cases_dataset, positives, excluded)
    if protocol == "paper_as_printed":  # early stopping reads the test split, as the paper's must have
        loaders["valid"] = loaders["test"]
    return ProtocolData(train_data, loaders["valid"], loaders["test"])

