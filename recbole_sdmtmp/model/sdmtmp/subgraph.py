"""Only the rows a training batch reads, from the L-hop sub-graph of its nodes.

The paper's section 3.6 names graph sampling and sub-graph partitioning as the way to larger
graphs. Here the sub-graph is exact, not sampled: layer l of node v depends only on layer l-1 of
v and its neighbours, so the rows of a batch's users and items, computed on their L-hop
neighbourhood, equal the rows of a full-graph propagation. A batch then costs the neighbourhood
of its nodes instead of all m + n nodes. On a power-law graph that neighbourhood still grows with
the data (a batch's popular items reach most users), so ``fanout`` > 0 samples, as GraphSAGE and
PyG's NeighborLoader do, at most ``fanout`` entries of each row (with replacement, weighted
count / fanout: an unbiased estimate of the row's sum); a batch then costs the same at any size
(benchmarks/scale.py, results/scale.md).
"""

from typing import NamedTuple

import torch


class CSR(NamedTuple):
    """Row pointers, column ids and values of a sparse matrix, for gathering rows."""

    crow: torch.Tensor  # [rows + 1]
    col: torch.Tensor  # [nnz]
    val: torch.Tensor  # [nnz]
    shape: tuple

    @classmethod
    def of(cls, matrix: torch.Tensor) -> "CSR":
        matrix = matrix.coalesce()  # row-major order
        rows, cols = matrix.indices()
        crow = torch.searchsorted(rows, torch.arange(matrix.shape[0] + 1, device=rows.device))
        return cls(crow, cols, matrix.values(), tuple(matrix.shape))


def gather_rows(matrix: CSR, rows: torch.Tensor, fanout: int = 0):
    """(local row, column, value, position in the matrix) of every entry of ``rows``; with
    ``fanout`` > 0, of ``fanout`` entries drawn with replacement from each longer row, their
    values scaled by count / fanout."""
    starts, counts = matrix.crow[rows], matrix.crow[rows + 1] - matrix.crow[rows]
    taken = counts if fanout <= 0 else torch.clamp(counts, max=fanout)
    local_row = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), taken)
    first = torch.cumsum(taken, 0) - taken  # where each row's entries start in the output
    offset = torch.arange(int(taken.sum()), device=rows.device) - first[local_row]
    sampled = (counts > taken)[local_row]
    drawn = (torch.rand(int(sampled.sum()), device=rows.device) * counts[local_row[sampled]]).long()
    offset[sampled] = torch.minimum(drawn, counts[local_row[sampled]] - 1)
    position = starts[local_row] + offset
    scale = (counts.float() / taken.clamp(min=1).float())[local_row]
    return local_row, matrix.col[position], matrix.val[position] * scale, position


def rows_product(local_row, col, val, n_rows: int, lookup) -> torch.Tensor:
    """(sparse rows) @ X without building X: only the columns the rows touch are looked up."""
    columns, local_col = torch.unique(col, return_inverse=True)
    block = torch.sparse_coo_tensor(torch.stack([local_row, local_col]), val, (n_rows, len(columns)),
                                    check_invariants=False)
    return torch.sparse.mm(block, lookup(columns))  # [n_rows, d]


def propagate_rows(adjacency: CSR, targets: torch.Tensor, layer0, layers, edge_weight=None, fanout: int = 0) -> list:
    """E(0..L) at ``targets`` (sorted unique node ids) of E(l+1) = layer_l(L_hat E(l), E(l)).

    ``layer0(ids)`` gives E(0) rows; ``layers[l](neighbours, self_rows)`` is layer l's update;
    ``edge_weight(position)``, if given, scales the entries at these positions of the matrix
    (edge dropout); ``fanout``: see ``gather_rows``. Returns L + 1 tensors [len(targets), d].
    """
    sets, blocks = [targets], []
    for _ in layers:  # top-down: the nodes each layer needs
        local_row, col, val, position = gather_rows(adjacency, sets[-1], fanout)
        below = torch.unique(torch.cat([sets[-1], col]))
        if edge_weight is not None:
            val = val * edge_weight(position)
        blocks.append((local_row, torch.searchsorted(below, col), val, len(sets[-1]), len(below)))
        sets.append(below)
    embeddings = layer0(sets[-1])  # E(0) on the whole neighbourhood
    at_targets = [embeddings[torch.searchsorted(sets[-1], targets)]]
    for depth, layer in enumerate(layers):  # bottom-up
        upper, lower = sets[-2 - depth], sets[-1 - depth]
        local_row, local_col, val, n_rows, n_cols = blocks[-1 - depth]
        block = torch.sparse_coo_tensor(torch.stack([local_row, local_col]), val, (n_rows, n_cols),
                                        check_invariants=False)
        neighbours = torch.sparse.mm(block, embeddings)  # (L_hat E(l)) on upper
        embeddings = layer(neighbours, embeddings[torch.searchsorted(lower, upper)])
        at_targets.append(embeddings[torch.searchsorted(upper, targets)])
    return at_targets


def hypergraph_rows(edge_gather: CSR, node_scatter: CSR, rows: torch.Tensor, node_table, topic_table,
                    fanout: int = 0) -> torch.Tensor:
    """Dv^-1 H B^-1 H^T [P(0); E_T] at ``rows``: only the hyperedges (topics) of these nodes are
    formed, each from its own members (``fanout`` of them, see ``gather_rows``);
    ``node_table(ids)`` and ``topic_table(ids)`` give rows of P(0) and E_T."""
    n_nodes = node_scatter.shape[0]

    def members(ids):  # columns of edge_gather: the m nodes, then the k topics
        is_node = ids < n_nodes
        nodes, topics = node_table(ids[is_node]), topic_table(ids[~is_node] - n_nodes)
        out = torch.empty(len(ids), nodes.shape[1], dtype=nodes.dtype, device=nodes.device)
        out[is_node], out[~is_node] = nodes, topics
        return out

    def hyperedges(topic_ids):
        local_row, col, val, _ = gather_rows(edge_gather, topic_ids, fanout)
        return rows_product(local_row, col, val, len(topic_ids), members)

    local_row, col, val, _ = gather_rows(node_scatter, rows)
    return rows_product(local_row, col, val, len(rows), hyperedges)  # [len(rows), d]


def hashed_keep(edge_ids: torch.Tensor, rate: float, salt: int) -> torch.Tensor:
    """1 / (1 - rate) for the edges kept, 0 for the dropped: a hash of (edge id, salt), so both
    directions of an edge share one draw per batch without drawing for every edge of the graph."""
    mixed = (edge_ids * 2654435761 + salt) % 4294967296  # Knuth's multiplicative hash, 32 bits
    uniform = ((mixed * 2246822519) % 4294967296).float() / 4294967296.0
    return (uniform >= rate).float() / (1.0 - rate)
