"""Every user's top-k items, with scores, from a trained model: RecBole's ``full_sort_topk`` for
the project's protocols.

    python -m recbole_sdmtmp.recommend --checkpoint saved/SDMTMP-....pth --top-k 10 --out recs.csv
    python -m recbole_sdmtmp.recommend --checkpoint saved/BPR-....pth --out recs.parquet --users u1 u2

Works for every model the runner trains (RecBole's and the plugin's): the checkpoint holds the
Config, and the model scores each user's test case of the protocol (``paper``: the user's one
case; ``next_item``: the user's newest held-out case) with its own ``full_sort_predict``. Items
are excluded as the protocol's evaluation excludes them: the case's input history, that is the
user's training and validation items (``paper``) or the items before the case (``next_item``).
One row per (user, rank): ``user_id``, ``rank`` (1 = best), ``item_id``, ``score``; a user with
fewer than k items left gets fewer rows. Users without a test case have no row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from recbole_sdmtmp.runner import load_trained

COLUMNS = ("user_id", "rank", "item_id", "score")


@torch.no_grad()
def top_k(model, test_data, k: int, uid_field: str, users: set[int] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids [U], item ids [U, k], scores [U, k]) of each user's last test case; excluded
    items and the padding item score -inf (and are dropped by :func:`recommendations`)."""
    device = next(model.parameters(), torch.empty(0)).device
    found = {}
    for interaction, (history_u, history_i), _, _ in test_data:
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
                    data_path: str | None = None) -> pd.DataFrame:
    """The top-k table of ``checkpoint``'s model; ``users``: raw user ids (default: everyone)."""
    config, dataset, (_, _, test_data), model = load_trained(checkpoint, device, data_path)
    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    wanted = None
    if users is not None:
        tokens = dataset.field2token_id[uid_field]
        unknown = [user for user in users if user not in tokens]
        if unknown:
            raise ValueError(f"users not in {config['dataset']}: {', '.join(map(str, unknown[:5]))}")
        wanted = {tokens[user] for user in users}
    user_ids, item_ids, scores = top_k(model, test_data, k, uid_field, wanted)
    if wanted is not None and len(user_ids) < len(wanted):
        missing = sorted(set(wanted) - set(user_ids.tolist()))
        names = [dataset.field2id_token[uid_field][u] for u in missing[:5]]
        raise ValueError(f"users without a test case in {config['dataset']}: {', '.join(names)}")
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
        table = recommendations(args.checkpoint, args.top_k, args.users, args.device, args.data_path)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write(table, Path(args.out))
    print(f"{args.out}: {table['user_id'].nunique()} users, {len(table)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
