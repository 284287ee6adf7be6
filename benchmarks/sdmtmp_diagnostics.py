"""The realised split, and why beta and gamma2 barely move SD-MTMP's metrics: print the size of the distillation loss
against the total loss, and how much the dual-aware weights depend on beta.

    python benchmarks/sdmtmp_diagnostics.py --dataset Instrument [--checkpoint saved/SDMTMP-....pth]

Without ``--checkpoint`` it first trains SD-MTMP with the defaults (seed 2024).
"""

import argparse
import sys

import torch

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.model.attention import dual_aware_weights, short_term_mask
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.runner import build_config, load_data, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]
    settings = {"show_progress": False}
    checkpoint = args.checkpoint or run("SDMTMP", args.dataset, config_dict=settings).checkpoint

    config = build_config("SDMTMP", args.dataset, config_dict=settings)
    _, (train, valid, test) = load_data(config, SDMTMPDataset)
    sizes = [len(part._dataset.inter_feat) for part in (train, valid, test)]
    shares = "/".join(f"{100 * size / sum(sizes):.1f}" for size in sizes)
    print(f"cases train/valid/test: {sizes[0]}/{sizes[1]}/{sizes[2]} ({shares}%)")
    model = SDMTMP(config, train._dataset)
    model.load_state_dict(torch.load(checkpoint, weights_only=False)["state_dict"])
    model.eval()
    with torch.no_grad():
        batch = next(iter(train))
        distillation = model.auxiliary_loss(model.forward(), batch).item()
        total = model.calculate_loss(batch).item()
        print(f"first training batch: Loss_SD {distillation:.4f}, total loss {total:.4f} "
              f"(gamma2 * Loss_SD = {config['gamma2'] * distillation:.4f})")

        cases = test._dataset.inter_feat
        lengths = cases["item_length"]
        window = short_term_mask(lengths, cases["item_id_list"].shape[1], config["short_term_ratio"])
        several = window.sum(dim=1) > 1
        print(f"test cases: {len(lengths)}, with a one-item short-term window: {int((~several).sum())}")
        ratings, times = cases["rating_list"][several], cases["timestamp_list"][several]
        reference = dual_aware_weights(ratings, times, window[several], config["gamma1"], 0.0)
        for beta in (0.1, 0.2, 0.3, 0.4, 0.5):
            weights = dual_aware_weights(ratings, times, window[several], config["gamma1"], beta)
            change = (weights - reference).abs().sum(dim=1).mean().item()
            print(f"beta {beta}: mean L1 change of the attention weights from beta 0: {change:.4f}")


if __name__ == "__main__":
    main()
