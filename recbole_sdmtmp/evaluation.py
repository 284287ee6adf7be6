"""Per-case ranking metrics, identical to RecBole's aggregated ones, for paired significance tests.

RecBole's evaluator only returns means. Here every evaluation case (a held-out interaction under
``next_item``, a user under ``paper``) keeps its own HR@k and NDCG@k, computed from the trainer's
own scoring (``_full_sort_batch_eval``: padding and excluded items masked), the same
``torch.topk`` as RecBole's collector and RecBole's own ``Hit``/``NDCG`` metric code, so that
their means equal RecBole's numbers exactly, with one positive or several.
"""

import numpy as np
import torch
from recbole.evaluator.metrics import NDCG, Hit


@torch.no_grad()
def case_metrics_of(trainer, eval_data, topk=(10, 20)) -> dict[str, np.ndarray]:
    """{'hit@k': [cases], 'ndcg@k': [cases]} for every k of ``topk``."""
    trainer.model.eval()
    max_k = max(topk)
    blocks = []
    for batch in eval_data:
        _, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batch)  # [B, n_items]
        _, top_items = torch.topk(scores, max_k, dim=-1)  # [B, K]
        relevant = torch.zeros_like(scores, dtype=torch.int)
        relevant[positive_u.to(scores.device), positive_i.to(scores.device)] = 1
        blocks.append(torch.cat([torch.gather(relevant, 1, top_items),
                                 relevant.sum(dim=1, keepdim=True)], dim=1).cpu())
    table = torch.cat(blocks).numpy()
    pos_index, pos_len = table[:, :-1].astype(bool), table[:, -1]
    hit = Hit.metric_info(None, pos_index)  # [cases, K] cumulative
    ndcg = NDCG.metric_info(None, pos_index, pos_len)
    metrics = {}
    for k in topk:
        metrics[f"hit@{k}"] = hit[:, k - 1].astype(np.float64)
        metrics[f"ndcg@{k}"] = ndcg[:, k - 1].astype(np.float64)
    return metrics
