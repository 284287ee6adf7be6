"""Dual-aware (rating and time-interval) attention over the short-term sequence (section 2.2)."""

import torch


def short_term_mask(history_length: torch.Tensor, max_length: int, ratio: float) -> torch.Tensor:
    """S_u: the most recent ceil(ratio * n) of the n history items (at least one).

    Histories are left-aligned and zero-padded (RecBole), so the window of a row with n items
    is positions [n - a, n).
    """
    # history_length: [B] -> [B, max_length] bool
    window = torch.clamp(torch.ceil(history_length.float() * ratio), min=1).long()
    window = torch.minimum(window, history_length)
    positions = torch.arange(max_length, device=history_length.device).unsqueeze(0)
    end = history_length.unsqueeze(1)
    return (positions < end) & (positions >= end - window.unsqueeze(1))


def window_positions(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's window positions, oldest first: (positions [B, W], sizes [B]), W the largest
    window; positions past a row's size repeat its newest one. Reading W (about 20% of the
    history) columns instead of all L keeps padding and older items out of the work."""
    # window: [B, L] bool; each row's window is one contiguous block (short_term_mask)
    sizes = window.sum(dim=1)  # [B]
    start = window.float().argmax(dim=1)  # first True of each row: [B]
    width = max(int(sizes.max()), 1)
    offsets = torch.arange(width, device=window.device).unsqueeze(0)  # [1, W]
    return start.unsqueeze(1) + torch.minimum(offsets, (sizes - 1).clamp(min=0).unsqueeze(1)), sizes


def ordered_window(item_seq: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The window's items moved to the front, oldest first: (items [B, W], sizes [B]); positions
    past a row's size repeat its newest item (a causal encoder read at ``size - 1`` never sees
    them)."""
    # item_seq, window: [B, L]
    positions, sizes = window_positions(window)
    return item_seq.gather(1, positions), sizes


def distinct_rows(*columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, inverse) such that the rows ``first`` are the distinct rows of ``columns`` side by
    side and row i equals row ``first[inverse[i]]``. A pairwise batch with k negatives repeats
    each case k times: encoding each distinct history once is k times less work, same values."""
    # columns: [B, ...] each (ids, ratings, times: exact in float64) -> first [U], inverse [B]
    key = torch.cat([column.reshape(len(column), -1).double() for column in columns], dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    rows = torch.arange(len(key), device=key.device)
    first = torch.full((int(inverse.max()) + 1,), len(key), dtype=torch.long, device=key.device)
    return first.scatter_reduce_(0, inverse, rows, reduce="amin"), inverse


ATTENTION_NORMS = ("softmax", "sum")


def dual_aware_weights(
    ratings: torch.Tensor,
    times: torch.Tensor,
    mask: torch.Tensor,
    gamma1: float,
    beta: float,
    norm: str = "softmax",
) -> torch.Tensor:
    """Section 2.2: w = normalise(w_t * w_r) over S_u with w_r = softmax(gamma1 * r) over S_u and
    w_t = exp(-beta * (t_latest - t_i)), times in days and t_latest the newest history time.

    The paper "normalises" the product (docs/DESIGN.md §3.4): ``norm='softmax'`` takes a softmax over the
    products, which all lie in [0, 1] and so can differ by at most a factor e (beta is nearly
    inert); ``norm='sum'`` divides each product by their sum. Only history ratings and times
    are read; positions outside ``mask`` get weight 0.
    """
    if norm not in ATTENTION_NORMS:
        raise ValueError(f"attention_norm={norm!r} is not valid; choose 'softmax' or 'sum'")
    # ratings, times: [B, L] (history of each case); mask: [B, L] bool -> [B, L]
    neg_inf = torch.finfo(ratings.dtype).min
    rating_weight = torch.softmax(torch.where(mask, gamma1 * ratings, neg_inf), dim=-1)
    latest = torch.where(mask, times, neg_inf).max(dim=-1, keepdim=True).values
    time_weight = torch.exp(-beta * (latest - times).clamp(min=0.0))
    product = time_weight * rating_weight
    if norm == "sum":
        product = torch.where(mask, product, torch.zeros_like(product))
        # the newest item has w_t = 1 and w_r > 0, so the sum of a non-empty window is positive
        return product / product.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(product.dtype).tiny)
    scores = torch.where(mask, product, neg_inf)
    return torch.softmax(scores, dim=-1) * mask


def dual_aware_attention(
    item_embeddings: torch.Tensor,
    ratings: torch.Tensor,
    times: torch.Tensor,
    mask: torch.Tensor,
    gamma1: float,
    beta: float,
    norm: str = "softmax",
) -> torch.Tensor:
    """e_short = sum_i w_i q_i over the short-term window (section 2.2). ``item_embeddings`` and
    the other inputs may hold only the window's columns (``window_positions``)."""
    # item_embeddings: [B, L, d] (q_i from Q(0)) -> [B, d]
    weights = dual_aware_weights(ratings, times, mask, gamma1, beta, norm)
    return torch.bmm(weights.unsqueeze(1), item_embeddings).squeeze(1)
