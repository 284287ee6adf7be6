"""Histories grouped by length, each group cut to its longest real history.

RecBole's histories are left-aligned and zero-padded to one width, and a batch of 1,024
training cases nearly always holds one long history: on Instrument under ``paper`` the
batches' longest histories are 25-29 items while the mean is 3.6, so cutting a batch to its
longest history saves little. A sequential encoder whose rows do not interact (padding masked
or after the position that is read, no batch statistics) gives each row the same output when
the rows are run in groups of similar length, each group cut to its own longest history: the
work follows the real lengths. Training draws its dropout masks per group, so a seeded run
draws other (identically distributed) masks than on the padded batch.
"""

import recbole.model.sequential_recommender as recbole_sequential
import torch


def length_buckets(lengths: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """(rows, width) per group: rows with lengths in (2^(k-1), 2^k], width their longest length
    (at least 1)."""
    # lengths: [B]
    group = torch.ceil(torch.log2(lengths.clamp(min=1).double())).long()  # [B]: 1 -> 0, 2 -> 1, 3-4 -> 2...
    buckets = []
    for value in torch.unique(group).tolist():
        rows = torch.nonzero(group == value).squeeze(1)
        buckets.append((rows, max(int(lengths[rows].max()), 1)))
    return buckets


def bucketed(encode, item_seq: torch.Tensor, item_seq_len: torch.Tensor, *others: torch.Tensor):
    """``encode(item_seq, item_seq_len, *others)`` row for row, run per length group on the
    group's columns; ``others``: more [B, L] lists cut alike, or [B] values. Every output of
    ``encode`` must have one row per case (a tuple of such outputs is put back in order element
    by element)."""
    # item_seq: [B, L], item_seq_len: [B]
    buckets = length_buckets(item_seq_len)
    if len(buckets) == 1 and buckets[0][1] >= item_seq.shape[1]:
        return encode(item_seq, item_seq_len, *others)
    outputs = [encode(item_seq[rows, :width], item_seq_len[rows],
                      *(other[rows, :width] if other.dim() > 1 else other[rows] for other in others))
               for rows, width in buckets]
    inverse = torch.argsort(torch.cat([rows for rows, _ in buckets]))  # [B]
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts)[inverse] for parts in zip(*outputs))
    return torch.cat(outputs)[inverse]


class LengthBuckets:
    """Mixin for a RecBole sequential model whose ``forward(item_seq, item_seq_len)`` returns one
    row per case and whose rows do not interact: ``forward`` runs per length group."""

    def forward(self, item_seq, item_seq_len):
        return bucketed(super().forward, item_seq, item_seq_len)


class GRU4Rec(LengthBuckets, recbole_sequential.GRU4Rec):
    """RecBole's GRU4Rec: the GRU's state at position len-1 reads no later position."""


class SASRec(LengthBuckets, recbole_sequential.SASRec):
    """RecBole's SASRec: causal attention with padding masked, read at position len-1."""


# RecBole models that the registry serves in length groups (the same parameters and outputs)
LENGTH_BUCKETED = {"GRU4Rec": GRU4Rec, "SASRec": SASRec}
