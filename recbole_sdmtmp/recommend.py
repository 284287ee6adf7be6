"""Every user's top-k items, with scores, from a trained model.

    python -m recbole_sdmtmp.recommend --checkpoint saved/SDMTMP-....pth --top-k 10 --out recs.csv
    python -m recbole_sdmtmp.recommend --checkpoint saved/BPR-....pth --out recs.parquet --users u1 u2
    python -m recbole_sdmtmp.recommend --checkpoint saved/SDMTMP-....pth --case test --out test.csv

Works for every model the runner trains (RecBole's and the plugin's): the checkpoint holds the
Config, and the model scores with its own ``full_sort_predict``. Two cases per user:

- ``record`` (default), what to show a user next: the input is the user's whole record in the
  atomic file (its newest ``MAX_ITEM_LIST_LENGTH`` items for a sequential model), and every item
  the user ever interacted with is excluded.
- ``test``, what the evaluation scored: the user's test case of the protocol (``paper``: its one
  case; ``next_item``: its newest held-out case), with the protocol's exclusions (the case's
  input history). The test items themselves can be recommended, as the metrics require.

One row per (user, rank): ``user_id``, ``rank`` (1 = best), ``item_id``, ``score``; a user with
fewer than k items left gets fewer rows. Under ``test``, users without a test case have no row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from recbole_sdmtmp.data.protocol import HeldOutDataLoader, user_records, user_sequences, with_histories
from recbole_sdmtmp.runner import load_trained

COLUMNS = ("user_id", "rank", "item_id", "score")
CASES = ("record", "test")


def record_cases(config, dataset) -> HeldOutDataLoader:
    """One case per user: its whole record as the input, every item of it excluded.

    ``dataset`` is the protocol's augmented dataset (one row per interaction after a user's
    first), from which ``user_sequences`` recovers each complete record."""
    seqs = user_sequences(dataset)
    records = user_records(dataset, seqs)
    rows = dataset.copy(dataset.inter_feat[torch.as_tensor(seqs.first_case, dtype=torch.int64)])
    with_histories(rows.inter_feat, dataset.uid_field, seqs.users, records, dataset.item_list_length_field,
                   dataset.max_item_list_len)
    excluded = [np.unique(items) for items in seqs.items]
    return HeldOutDataLoader(config, rows, [np.zeros(0, dtype=np.int64)] * len(excluded), excluded)


@torch.no_grad()
def top_k(model, cases, k: int, uid_field: str, users: set[int] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids [U], item ids [U, k], scores [U, k]) of each user's last case in ``cases``; excluded
    items and the padding item score -inf (and are dropped by :func:`recommendations`)."""
    device = next(model.parameters(), torch.empty(0)).device
    found = {}
    for interaction, (history_u, history_i), _, _ in cases:
        case_users = interaction[uid_field]
        rows = torch.arange(len(case_users)) if users is None else torch.nonzero(
            torch.isin(case_users, torch.tensor(sorted(users), dtype=case_users.dtype))).flatten()
        if len(rows) == 0:
            continue
        scores = model.full_sort_predict(interaction.to(device)).view(len(case_users), -1).cpu()
        scores[:, 0] = -torch.inf  # padding item
        scores[history_u, history_i] = -torch.inf  # as the evaluation does
        best_scores, best_items = torch.topk(scores[rows], min(k, scores.shape[1]), dim=1)
        for row, items, values in zip(rows.tolist(), best_items, best_scores):
            found[int(case_users[row])] = (items.numpy(), values.numpy())  # a later case replaces
    order = sorted(found)
    if not order:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k), dtype=np.int64), np.zeros((0, k))
    return (np.array(order), np.stack([found[u][0] for u in order]), np.stack([found[u][1] for u in order]))


def recommendations(checkpoint: str, k: int = 10, users=None, device: str = "cpu",
                    data_path: str | None = None, case: str = "record") -> pd.DataFrame:
    """The top-k table of ``checkpoint``'s model; ``users``: raw user ids (default: everyone);
    ``case``: ``record`` (after each user's whole record) or ``test`` (the protocol's test case)."""
    if case not in CASES:
        raise ValueError(f"case={case!r} is not valid; choose one of: {', '.join(CASES)}")
    config, dataset, (_, _, test_data), model = load_trained(checkpoint, device, data_path)
    cases = test_data if case == "test" else record_cases(config, dataset)
    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    wanted = None
    if users is not None:
        tokens = dataset.field2token_id[uid_field]
        unknown = [user for user in users if user not in tokens]
        if unknown:
            raise ValueError(f"users not in {config['dataset']}: {', '.join(map(str, unknown[:5]))}")
        wanted = {tokens[user] for user in users}
    user_ids, item_ids, scores = top_k(model, cases, k, uid_field, wanted)
    if wanted is not None and len(user_ids) < len(wanted):
        missing = sorted(set(wanted) - set(user_ids.tolist()))
        names = [dataset.field2id_token[uid_field][u] for u in missing[:5]]
        raise ValueError(f"users without a {case} case in {config['dataset']}: {', '.join(names)}")
    kept = np.isfinite(scores)
    ranks = np.broadcast_to(np.arange(1, item_ids.shape[1] + 1), item_ids.shape)
    return pd.DataFrame({
        "user_id": dataset.field2id_token[uid_field][np.broadcast_to(user_ids[:, None], item_ids.shape)[kept]],
        "rank": ranks[kept],
        "item_id": dataset.field2id_token[iid_field][item_ids[kept]],
        "score": scores[kept].astype(np.float64),
    }, columns=list(COLUMNS))


def write(table: pd.DataFrame, out: Path) -> None:
    """CSV, or Parquet for a ``.parquet`` name."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recbole_sdmtmp.recommend", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a saved model (saved/<Model>-....pth)")
    parser.add_argument("--top-k", type=int, default=10, help="items per user (default 10)")
    parser.add_argument("--out", required=True, help="output file: .csv, or .parquet")
    parser.add_argument("--users", nargs="+", help="raw user ids (default: every user)")
    parser.add_argument("--case", choices=CASES, default="record",
                        help="record (default): after each user's whole record, every item of it excluded; "
                             "test: the protocol's test case, as the evaluation scored it")
    parser.add_argument("--data-path", help="dataset root, when it is not where the model was trained")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args, overrides = parser.parse_known_args(argv)
    sys.argv = sys.argv[:1] + overrides  # RecBole's Config must not read this command's flags
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if overrides:  # the checkpoint's own settings are used: a --key=value would be ignored
        print(f"error: {' '.join(overrides)}: not an option of recommend, which scores with the "
              "settings the checkpoint was trained with", file=sys.stderr)
        return 2
    if not Path(args.checkpoint).is_file():
        print(f"error: checkpoint {args.checkpoint} does not exist", file=sys.stderr)
        return 2
    try:
        table = recommendations(args.checkpoint, args.top_k, args.users, args.device, args.data_path, args.case)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write(table, Path(args.out))
    print(f"{args.out}: {table['user_id'].nunique()} users, {len(table)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
