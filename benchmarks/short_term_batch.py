"""SD-MTMP's training step on real batches: the short-term part encoded once per distinct history
over its window's columns (the model's code) against every row over every column (the formula as
written, the code before that change), timed in the same run.

    python benchmarks/short_term_batch.py --dataset Instrument --protocol next_item \
        --embedding-size 512 --n-layers 3 --negatives 16
    python benchmarks/short_term_batch.py --dataset Gift_Cards --encoder gru --short-term-ratio 1.0

Why it matters: the window is about 20% of a history padded to the longest one; and a batch in
RecBole's own layout (each case repeated once per negative) holds each history k times. SD-MTMP's
batches now hold each case once (``recbole_sdmtmp/data/negatives.py``), so that second factor is
gone from its training; the distinct-rows path still covers any caller in RecBole's layout.
Each timed step: ``calculate_loss``, backward and an Adam step on one training batch, both ways
alternating, ``--repeats`` times; medians and their ratio. One torch thread, CPU seconds of
wall clock (shared machines: read the ratio, both sides see the same load). Both ways give the
same loss (checked, printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recbole_sdmtmp.model.sdmtmp.attention import dual_aware_attention, short_term_mask  # noqa: E402


def full_width_short_term(model, interaction):
    """The reference: section 2.2 over every row and every column of the padded history."""
    item_seq = interaction[model.ITEM_SEQ]
    window = short_term_mask(interaction[model.ITEM_SEQ_LEN], item_seq.shape[1], model.short_term_ratio)
    if model.short_term_encoder == "gru":
        return model.ordered_short_term(item_seq, window)
    return dual_aware_attention(model.item_embedding(item_seq), interaction[model.RATING_LIST].float(),
                                interaction[model.TIME_LIST].float(), window, model.gamma1, model.beta,
                                model.attention_norm)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--protocol", choices=("paper", "next_item"), default="next_item")
    parser.add_argument("--embedding-size", type=int, default=512)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--negatives", type=int, default=16)
    parser.add_argument("--encoder", choices=("attention", "gru"), default="attention")
    parser.add_argument("--short-term-ratio", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this script's flags
    torch.set_num_threads(1)

    from recbole.utils import init_seed

    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.registry import resolve_model
    from recbole_sdmtmp.runner import load_data

    settings = {"seed": 2024, "protocol": args.protocol, "data_path": args.data_path, "show_progress": False,
                "embedding_size": args.embedding_size, "n_layers": args.n_layers,
                "short_term_encoder": args.encoder, "short_term_ratio": args.short_term_ratio,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": args.negatives}}
    config = build_config("SDMTMP", args.dataset, config_dict=settings)
    init_seed(2024, True)
    model_class, dataset_class = resolve_model("SDMTMP")
    _, (train, _, _) = load_data(config, dataset_class)
    model = model_class(config, train._dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(train)
    batch = next(batches)
    model.train()
    model.dropout_rate = 0.0  # the same graph both ways, so the losses can be compared

    def step(short_term) -> tuple[float, float]:
        model.short_term = short_term
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = sum(model.calculate_loss(batch))
        loss.backward()
        seconds = time.perf_counter() - start  # the optimiser step is the same both ways
        return seconds, loss.item()

    distinct = type(model).short_term.__get__(model)
    reference = lambda interaction: full_width_short_term(model, interaction)  # noqa: E731
    ways = {"distinct histories, window columns": distinct, "every row, every column": reference}
    times = {name: [] for name in ways}
    losses = {name: step(way)[1] for name, way in ways.items()}  # warm-up, and the same loss
    for _ in range(args.repeats):
        for name, way in ways.items():
            times[name].append(step(way)[0])
    cases = len(torch.unique(batch[model.ITEM_SEQ], dim=0))
    print(f"{args.dataset}, {args.protocol}, d {args.embedding_size}, L {args.n_layers}, "
          f"{args.negatives} negatives, short term: {args.encoder} (ratio {args.short_term_ratio}); "
          f"batch of {len(batch)} rows, {cases} distinct histories, padded to {batch[model.ITEM_SEQ].shape[1]}")
    for name in ways:
        print(f"  {name:36s} median {statistics.median(times[name]):.3f} s / step (loss {losses[name]:.6f})")
    ratio = statistics.median(times["every row, every column"]) / statistics.median(times["distinct histories, window columns"])
    print(f"  speed-up of a training step (loss + backward): {ratio:.2f}x, median of {args.repeats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
