"""Where SD-MTMP's score comes from, measured on a trained model: the split, the size of each
loss term, the fusion gates, the long- and short-term parts of the score, where the top-10 slots
go, and how much beta moves the attention.

    python benchmarks/sdmtmp_diagnostics.py --dataset Instrument [--checkpoint saved/SDMTMP-....pth] [--key=value ...]

Without ``--checkpoint`` it first trains SD-MTMP with the defaults (seed 2024). Extra
``--key=value`` settings (e.g. ``--protocol=next_item``) go to RecBole's Config, as in the run
script; give the same ones that trained the checkpoint.
"""

import argparse
import ast
import sys

import numpy as np
import torch

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.model.sdmtmp.attention import dual_aware_weights, short_term_mask
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run


def settings_from(overrides: list[str]) -> dict:
    settings = {"show_progress": False}
    for item in overrides:
        key, _, value = item.lstrip("-").partition("=")
        try:
            settings[key] = ast.literal_eval(value)  # numbers, True/False, lists, dicts
        except (ValueError, SyntaxError):  # a plain string such as 'sum'
            settings[key] = value
    return settings


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--checkpoint", default=None)
    args, overrides = parser.parse_known_args()
    sys.argv = sys.argv[:1]
    settings = settings_from(overrides)
    checkpoint = args.checkpoint or run(build_config("SDMTMP", args.dataset, config_dict=settings)).checkpoint

    config = build_config("SDMTMP", args.dataset, config_dict=settings)
    _, (train, valid, test) = load_data(config, SDMTMPDataset)
    print(f"protocol {config['protocol']}: {len(train._dataset.inter_feat)} training cases, "
          f"{len(valid.positives)} validation and {len(test.positives)} test cases, "
          f"{np.mean([len(p) for p in test.positives]):.2f} test items per case")
    model = SDMTMP(config, train._dataset)
    model.load_state_dict(torch.load(checkpoint, weights_only=False)["state_dict"])
    model.load_other_parameter(torch.load(checkpoint, weights_only=False).get("other_parameter"))
    model.eval()

    batch = next(iter(train))
    ranking, distillation, regularization = (term.item() for term in model.calculate_loss(batch))
    output = model.forward()
    print(f"loss terms on a training batch of {len(batch)} cases x {model.negatives(batch).shape[1]} negatives: "
          f"ranking {ranking:.4f}, gamma2 * Loss_SD {distillation:.5f}, lambda * L2 {regularization:.4f}")

    interaction = next(iter(test))[0]
    long_term = output.user_long[interaction["user_id"]]  # [B, d]
    short = model.short_term(interaction)  # [B, d]
    alpha1 = torch.sigmoid(model.long_gate(long_term)).squeeze(1)
    alpha2 = torch.sigmoid(model.short_gate(short)).squeeze(1)
    print(f"fusion gates over {len(alpha1)} test cases: alpha1 (long) mean {alpha1.mean():.3f} "
          f"[{alpha1.min():.3f}, {alpha1.max():.3f}], alpha2 (short) mean {alpha2.mean():.3f} "
          f"[{alpha2.min():.3f}, {alpha2.max():.3f}]")
    print(f"vector norms: e_long {long_term.norm(dim=1).mean():.3f}, e_short {short.norm(dim=1).mean():.3f}, "
          f"e_i^inter {output.item_inter.norm(dim=1).mean():.3f}, e_i^topic "
          f"{output.item_topic.norm(dim=1).mean() if output.item_topic is not None else 0:.3f}")

    long_part = (alpha1.unsqueeze(1) * long_term) @ output.item_final.T  # [B, n]
    short_part = (alpha2.unsqueeze(1) * short) @ output.item_final.T
    scores = long_part + short_part
    scores[:, 0] = -np.inf
    history_u, history_i = next(iter(test))[1]
    scores[history_u, history_i] = -np.inf
    top = torch.topk(scores, 10, dim=1).indices  # [B, 10]
    rows = torch.arange(len(top)).unsqueeze(1)
    print(f"score of a top-10 item: long-term part {long_part[rows, top].mean():.3f}, short-term part "
          f"{short_part[rows, top].mean():.3f} (std over all items: long {long_part[:, 1:].std():.3f}, "
          f"short {short_part[:, 1:].std():.3f})")
    counts = np.bincount(train._dataset.inter_feat["item_id"].numpy(), minlength=model.n_items)
    popular = set(np.argsort(-counts)[: max(1, model.n_items // 10)].tolist())
    in_popular = np.isin(top.numpy(), list(popular)).mean()
    print(f"top-10 slots: {100 * in_popular:.1f}% go to the 10% most popular training items; "
          f"{len(np.unique(top.numpy()))} distinct items across {len(top)} cases")

    lengths = interaction["item_length"]
    window = short_term_mask(lengths, interaction["item_id_list"].shape[1], config["short_term_ratio"])
    several = window.sum(dim=1) > 1
    print(f"test cases with a one-item short-term window: {int((~several).sum())} of {len(lengths)}")
    ratings, times = interaction["rating_list"][several], interaction["timestamp_list"][several]
    for norm in ("softmax", "sum"):
        reference = dual_aware_weights(ratings, times, window[several], config["gamma1"], 0.0, norm)
        changes = []
        for beta in (0.1, 0.3, 0.5):
            weights = dual_aware_weights(ratings, times, window[several], config["gamma1"], beta, norm)
            changes.append(f"beta {beta}: {(weights - reference).abs().sum(dim=1).mean().item():.3f}")
        print(f"attention_norm {norm}: mean L1 change of the weights from beta 0 -- " + ", ".join(changes))


if __name__ == "__main__":
    main()
