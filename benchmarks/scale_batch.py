"""One training batch of SD-MTMP's rating-aware graph on its sampled sub-graph, at 10^5..10^7
interactions: does a batch cost the same at any size? (results/scale.md)

    python benchmarks/scale_batch.py                     # 1e5 1e6 1e7, d 128, fanout 10
    python benchmarks/scale_batch.py --sizes 100000 1000000 --dim 256

benchmarks/scale.py times whole models through RecBole, whose padded sequence data do not fit
this machine at 10^7. Here only the part that grew with the graph is built: the power-law
user-item graph of benchmarks/scale.py (same generator rules, no texts or topics), the rating
Laplacian, sparse P(0) and Q(0), ``--layers`` NGCF layers and LazyAdam. Each timed batch: 1,024
training pairs and 1,024 random negatives, ``propagate_rows`` with ``--fanout`` sampled neighbours
per node and layer, BPR on the mean of the layers, backward, optimiser step (the topic side and
the attention are left out). CPU seconds of this process, one thread; the set sizes show the
bound: at most B(1 + f) nodes at layer 1 and B(1 + f)^2 at layer 0 for B batch nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import power_law_counts  # noqa: E402
from recbole_sdmtmp.model.layers.graph import NGCFLayer, rating_normalized_adjacency  # noqa: E402
from recbole_sdmtmp.model.layers.optim import LazyAdam  # noqa: E402
from recbole_sdmtmp.model.layers.sparse import to_torch_sparse  # noqa: E402
from recbole_sdmtmp.model.sdmtmp.subgraph import CSR, gather_rows, propagate_rows  # noqa: E402


def graph(n_interactions: int, seed: int = 2024):
    """Users, items and ratings with benchmarks/scale.py's rules (repeated pairs dropped)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = round(n_interactions / 7.2), round(n_interactions / 11.4)
    per_user = np.minimum(power_law_counts(n_interactions, n_users, 5, 2.5, rng), n_items // 2)
    popularity = (np.arange(n_items) + 10.0) ** -0.9
    users = np.repeat(np.arange(n_users), per_user)
    items = np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(len(users)))
    items = np.minimum(items, n_items - 1)
    keys = np.unique(users.astype(np.int64) * n_items + items)
    users, items = keys // n_items, keys % n_items
    ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=len(users), p=[0.021, 0.024, 0.075, 0.203, 0.677])
    return n_users, n_items, users, items, ratings


def measure(n_interactions: int, dim: int, layers: int, fanout: int, batches: int, batch_size: int) -> dict:
    start = time.process_time()
    n_users, n_items, users, items, ratings = graph(n_interactions)
    matrix = sp.csr_matrix((ratings, (users, items)), shape=(n_users, n_items))
    adjacency = CSR.of(to_torch_sparse(rating_normalized_adjacency(matrix)))
    user_table = torch.nn.Embedding(n_users, dim, sparse=True)
    item_table = torch.nn.Embedding(n_items, dim, sparse=True)
    gcn = torch.nn.ModuleList(NGCFLayer(dim, dim) for _ in range(layers))
    optimizer = LazyAdam([user_table.weight, item_table.weight], list(gcn.parameters()), lr=1e-3)
    build_s = time.process_time() - start

    def layer0(ids):
        is_user = ids < n_users
        out = torch.empty(len(ids), dim)
        out[is_user] = user_table(ids[is_user])
        out[~is_user] = item_table(ids[~is_user] - n_users)
        return out

    steps = [lambda n, e, layer=layer: layer.combine(n, e) for layer in gcn]
    rng = np.random.default_rng(0)
    seconds, sizes = [], []
    for step in range(batches + 1):
        cpu = time.process_time()
        pick = rng.integers(0, len(users), batch_size)
        batch_users, pos = torch.from_numpy(users[pick]), torch.from_numpy(items[pick])
        neg = torch.from_numpy(rng.integers(0, n_items, batch_size))
        targets_u, user_rows = torch.unique(batch_users, return_inverse=True)
        targets_i, item_rows = torch.unique(torch.cat([pos, neg]), return_inverse=True)
        targets = torch.cat([targets_u, targets_i + n_users])
        rows = torch.stack(propagate_rows(adjacency, targets, layer0, steps, fanout=fanout)).mean(dim=0)
        user, item = rows[:len(targets_u)], rows[len(targets_u):]
        pos_rows, neg_rows = item_rows.split(batch_size)
        score = (user[user_rows] * (item[pos_rows] - item[neg_rows])).sum(dim=-1)
        loss = -torch.nn.functional.logsigmoid(score).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first batch warms up
            seconds.append(time.process_time() - cpu)
            layer1 = torch.unique(torch.cat([targets, gather_rows(adjacency, targets, fanout)[1]]))
            sizes.append((len(targets), len(layer1)))
    return {"interactions": len(users), "nodes": n_users + n_items, "build_cpu_s": build_s,
            "seconds_per_batch": float(np.mean(seconds)), "batch_nodes": float(np.mean([s[0] for s in sizes])),
            "layer1_nodes": float(np.mean([s[1] for s in sizes]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--fanout", type=int, default=10)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--out", default=str(REPO / "results" / "scale_batch.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python benchmarks/scale_batch.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.dim, args.layers, args.fanout, args.batches, args.batch_size))
        row = rows[-1]
        print(f"{command}\n  {row['interactions']:,} interactions ({row['nodes']:,} nodes): {row['seconds_per_batch']:.3f} "
              f"CPU s/batch, {row['batch_nodes']:.0f} batch nodes, {row['layer1_nodes']:.0f} layer-1 nodes", flush=True)
    Path(args.out).write_text(json.dumps({"command": command, "dim": args.dim, "layers": args.layers,
                                          "fanout": args.fanout, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
