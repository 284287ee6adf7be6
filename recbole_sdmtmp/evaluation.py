"""Per-case ranking metrics, identical to RecBole's aggregated ones, for paired significance tests.

RecBole's evaluator only returns means. Here each held-out case keeps the position of its target
in the model's top-k, found with the trainer's own scoring (``_full_sort_batch_eval``: padding
item excluded) and the same ``torch.topk`` RecBole's collector uses, so ties break the same way
and the means equal RecBole's numbers exactly.
"""

import numpy as np
import torch


@torch.no_grad()
def target_positions(trainer, eval_data, k: int) -> np.ndarray:
    """0-based position of each case's target in the top-``k`` list; ``k`` when it is absent."""
    trainer.model.eval()
    positions = []
    for batch in eval_data:
        _, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batch)  # [B, n_items]
        _, top_items = torch.topk(scores, k, dim=-1)  # [B, k]
        targets = torch.full((scores.shape[0],), -1, dtype=torch.long, device=scores.device)
        targets[positive_u.to(scores.device)] = positive_i.to(scores.device)  # one target a case
        hits = top_items == targets.unsqueeze(1)  # [B, k]
        positions.append(torch.where(hits.any(dim=1), hits.float().argmax(dim=1), k).cpu())
    return torch.cat(positions).numpy()


def case_metrics(positions: np.ndarray, topk=(10, 20)) -> dict[str, np.ndarray]:
    """Per-case hit@k and ndcg@k (one relevant item: 1 / log2(position + 2) inside the list)."""
    positions = np.asarray(positions)
    metrics = {}
    for k in topk:
        inside = positions < k
        metrics[f"hit@{k}"] = inside.astype(np.float64)
        metrics[f"ndcg@{k}"] = np.where(inside, 1.0 / np.log2(positions + 2.0), 0.0)
    return metrics
