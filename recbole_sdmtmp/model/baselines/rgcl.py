r"""RGCL as a RecBole general recommender (a multimodal baseline of the SD-MTMP paper).

Reference:
    Jie Shuai, Kun Zhang, Le Wu, Peijie Sun, Richang Hong, Meng Wang, Yong Li.
    "A Review-aware Graph Contrastive Learning Framework for Recommendation." SIGIR 2022.

Reference code (read, not copied): JarenceSJ/ReviewGraph, ``RGCL/rgc_nd_ed.py`` and
``RGCL/data.py`` (DGL, rating prediction).

The user-item graph has one edge per training interaction, typed by its rating level r and
carrying the review's feature e_ui. Review-aware message passing (the RG module), for an edge
from source j to target i of level r at layer l:

    m_{j->i} = ( sigmoid(a_r . e_ij) * s_j^r  +  sigmoid(b_r . e_ij) * e_ij W_r ) * c_j
    h_i      = c_i * sum_j m_{j->i},        c = 1 / sqrt(degree)
    x_i      = W_fc Dropout(GELU(h_i)) + b_fc

with s_j^r = E_r[j] at the first layer (GCMC's one-hot node input times a per-level matrix)
and x_j^(l-1) V_r after; each direction (items -> users, users -> items) has its own a, b, W,
E / V. Two contrastive tasks:

- node discrimination (ND): two views of the graph with edges dropped at random; a node's two
  representations form a positive pair, a node and a shuffled other node a negative, scored by
  a bilinear discriminator x W y and a binary cross-entropy (as the reference code);
- edge discrimination (ED): an interaction's representation MLP([x_u; x_i]) against its own
  review feature (positive) and another edge's review feature (negative), bilinear + BCE.

Adapted to top-k ranking as the SD-MTMP paper did: the rating classifier is replaced by an inner
product score x_u . x_i trained with BPR (one sampled negative), averaged over the two views as
the reference averages its rating loss; ND runs over the batch's users and positive items, ED
over the batch's positive edges (the reference computes both over the full graph, one step per
epoch). Review features: the reference uses BERT-whitening vectors of 64 dimensions; here the
MiniLM review vectors of ``ReviewDataset`` (training reviews only) are whitened the same way
(PCA on the training reviews, to ``review_feat_size`` dimensions); an edge whose review has no
text gets a zero feature (the mean review) and takes no part in ED. Edge dropout drops an edge
in both directions at once (the reference drops each direction's message independently).

In this project general models run inside RecBole's sequential pipeline (docs/DESIGN.md §4): each
case is scored by its user id, the history sequence is not read.
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.loss import BPRLoss
from recbole.utils import InputType

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.layers.edge_sum import EdgeSum, edge_sum, edge_sum_structure
from recbole_sdmtmp.model.layers.sparse import safe_power


def whitening(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """BERT-whitening (Su et al. 2021), as the reference prepares its review features:
    (mean [D], transform [D, k]) with (x - mean) @ transform of identity covariance over
    ``vectors``; k = min(dims, number of non-degenerate directions)."""
    mean = vectors.mean(axis=0, dtype=np.float64)
    centred = vectors.astype(np.float64) - mean
    u, s, _ = np.linalg.svd(centred.T @ centred / max(len(vectors), 1))
    keep = min(dims, int((s > 1e-8 * max(s.max(initial=0.0), 1e-30)).sum()))
    return mean.astype(np.float32), (u[:, :keep] / np.sqrt(s[:keep])).astype(np.float32)


def bilinear_bce(x: torch.Tensor, y: torch.Tensor, y_negative: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-row BCE(x W y, 1) + BCE(x W y_neg, 0): the reference's ContrastLoss; [N]."""
    # x: [N, d]; y, y_negative: [N, k]; weight: [d, k]
    projected = x @ weight  # [N, k]
    positive = (projected * y).sum(dim=-1)
    negative = (projected * y_negative).sum(dim=-1)
    return (F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive), reduction="none")
            + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative), reduction="none"))


class EdgeGroups(NamedTuple):
    """The edges of one direction grouped by (target, rating level): messages are linear in
    their source row and review, so a group's rows are summed before the per-level transform
    (one d x d product per group instead of one per edge). Groups are sorted by level. The
    sums over edges run as sparse products (``edge_sum``): into the targets from the first
    layer's per-level rows E_r[j], into the groups from a later layer's x_j."""

    group: torch.Tensor  # [E] the group of each edge
    target: torch.Tensor  # [P] the target node of each group
    level: torch.Tensor  # [P] the rating level of each group
    counts: list  # groups per level, [R]
    to_targets: EdgeSum  # edge (target, row of E_r[source] in the first layer's table)
    to_groups: EdgeSum  # edge (group, source)

    def to(self, device) -> "EdgeGroups":
        return EdgeGroups(self.group.to(device), self.target.to(device), self.level.to(device), self.counts,
                          self.to_targets.to(device), self.to_groups.to(device))


def source_rows(source_ids: torch.Tensor, level: torch.Tensor, n_sources: int) -> torch.Tensor:
    """The per-level rows E_r[j] that some edge reads, as sorted ids r * n_sources + j: [Q]."""
    return torch.unique(level * n_sources + source_ids)


def edge_groups(target_ids: torch.Tensor, source_ids: torch.Tensor, level: torch.Tensor, n_targets: int,
                n_sources: int, n_levels: int, rows: torch.Tensor | None = None) -> EdgeGroups:
    """``rows``: the first layer's table rows (``source_rows``; default every r * n_sources + j)."""
    keys, group = torch.unique(level * n_targets + target_ids, return_inverse=True)  # sorted: level first
    counts = torch.bincount(keys // n_targets, minlength=n_levels).tolist()
    table = level * n_sources + source_ids  # [E]
    if rows is not None:
        table = torch.searchsorted(rows, table)
    n_rows = n_levels * n_sources if rows is None else len(rows)
    return EdgeGroups(group, keys % n_targets, keys // n_targets, counts,
                      edge_sum_structure(target_ids, table, n_targets, n_rows),
                      edge_sum_structure(group, source_ids, len(keys), n_sources))


class ReviewGraph(NamedTuple):
    """The training graph: one row per (user, item) edge, sorted by user then item."""

    user: torch.Tensor  # [E] int64
    item: torch.Tensor  # [E] int64
    level: torch.Tensor  # [E] int64, rating level 0..R-1
    review: torch.Tensor  # [E, k] whitened review feature, 0 without text
    has_text: torch.Tensor  # [E] bool
    user_norm: torch.Tensor  # [m] 1/sqrt(degree), 0 for isolated users
    item_norm: torch.Tensor  # [n]


class ReviewAwareConv(nn.Module):
    """Messages along one direction (sources -> targets) for every rating level: the RG module."""

    def __init__(self, n_levels: int, review_dim: int, out_dim: int, n_sources: int | None, in_dim: int,
                 rows: torch.Tensor | None = None):
        super().__init__()
        self.one_hot_input = n_sources is not None
        # first layer: E_r [R, n_sources, d] (one-hot input); later layers: V_r [R, d_in, d]
        source = torch.empty(n_levels, n_sources if self.one_hot_input else in_dim, out_dim)
        node_gate, review_gate = torch.empty(n_levels, review_dim), torch.empty(n_levels, review_dim)  # a_r, b_r
        review_transform = torch.empty(n_levels, review_dim, out_dim)  # W_r
        for weight in (source, review_transform):
            for level in weight:
                nn.init.xavier_uniform_(level)
        nn.init.xavier_uniform_(node_gate)
        nn.init.xavier_uniform_(review_gate)
        if self.one_hot_input:
            # only the rows E_r[j] that an edge reads (``rows``, sorted r * n_sources + j; default all),
            # drawn as the full table: the others never get a gradient, so Adam would never move them
            rows = torch.arange(n_levels * n_sources) if rows is None else rows
            self.register_buffer("rows", rows)
            self.n_sources = n_sources
            source = source.flatten(0, 1)[rows]  # [Q, d]
        self.source = nn.Parameter(source)
        self.node_gate = nn.Parameter(node_gate)
        self.review_gate = nn.Parameter(review_gate)
        self.review_transform = nn.Parameter(review_transform)

    def forward(self, sources, source_ids, target_ids, level, review, source_norm, target_norm, n_targets: int,
                groups: EdgeGroups | None = None, targets: torch.Tensor | None = None):
        """h of every target, or of ``targets`` only (sorted ids, in that order): a later layer
        then transforms only the groups of those targets."""
        # sources: [n_sources, d_in] or None; ids, level: [E]; review: [E, k]; norms: [n_*]
        n_levels = len(self.node_gate)
        if groups is None:
            n_sources = self.n_sources if self.one_hot_input else len(sources)
            groups = edge_groups(target_ids, source_ids, level, n_targets, n_sources, n_levels,
                                 self.rows if self.one_hot_input else None)
        gates = review @ torch.cat([self.node_gate, self.review_gate]).T  # a_r . e, b_r . e for every r: [E, 2R]
        node_gate = torch.sigmoid(gates.gather(1, level.unsqueeze(-1)))  # [E, 1]
        review_gate = torch.sigmoid(gates.gather(1, level.unsqueeze(-1) + n_levels))  # [E, 1]
        scale = source_norm.unsqueeze(-1)  # c_j (times the view's edge weight): [E, 1]
        n_groups = len(groups.target)
        # sum_e b_e c_j e W_r over a group = (sum_e b_e c_j e) W_r: [P, k]
        reviews = review.new_zeros(n_groups, review.shape[1]).index_add_(0, groups.group, review_gate * scale * review)
        if self.one_hot_input:  # s_j^r = E_r[j] is a row lookup: no product to save
            # sum_e a_e c_j E_r[j] into each target: [n_targets, d]
            aggregated = edge_sum((node_gate * scale).squeeze(-1), self.source, groups.to_targets)
            for chunk, chunk_target, weight in zip(torch.split(reviews, groups.counts),
                                                   torch.split(groups.target, groups.counts), self.review_transform):
                aggregated = aggregated.index_add_(0, chunk_target, chunk @ weight)  # a level's groups: [P_r, d]
            aggregated = aggregated * target_norm.unsqueeze(-1)
            return aggregated if targets is None else aggregated[targets]  # h_i: [n_targets or T, d]
        # sum_e a_e c_j x_j V_r over a group = (sum_e a_e c_j x_j) V_r
        nodes = edge_sum((node_gate * scale).squeeze(-1), sources, groups.to_groups)  # [P, d_in]
        group_target, counts = groups.target, groups.counts
        if targets is not None:  # the groups of ``targets``, still sorted by level; targets renumbered 0..T-1
            row = torch.full((n_targets,), -1, dtype=torch.long, device=targets.device)
            row[targets] = torch.arange(len(targets), device=targets.device)
            kept = (row[group_target] >= 0).nonzero().squeeze(1)  # [P']
            nodes, reviews, group_target = nodes[kept], reviews[kept], row[group_target[kept]]
            counts = torch.bincount(groups.level[kept], minlength=n_levels).tolist()
            target_norm = target_norm[targets]
        aggregated = nodes.new_zeros(len(target_norm), self.source.shape[2])
        for node_chunk, review_chunk, chunk_target, source, transform in zip(
                torch.split(nodes, counts), torch.split(reviews, counts), torch.split(group_target, counts),
                self.source, self.review_transform):  # a level's groups: x V_r + e W_r, [P_r, d]
            by_group = torch.addmm(review_chunk @ transform, node_chunk, source)
            aggregated = aggregated.index_add_(0, chunk_target, by_group)
        return aggregated * target_norm.unsqueeze(-1)  # h_i: [n_targets or T, d]

    def source_table(self) -> torch.Tensor:
        """The first layer's E_r as [R, n_sources, d], zero at the rows no edge reads."""
        table = self.source.new_zeros(len(self.node_gate) * self.n_sources, self.source.shape[1])
        return table.index_copy(0, self.rows, self.source).view(len(self.node_gate), self.n_sources, -1)


class RGCLayer(nn.Module):
    """One RG layer: both directions, then GELU, dropout and a linear map per side."""

    def __init__(self, n_levels, review_dim, dim, n_users, n_items, first: bool, dropout: float, rows=(None, None)):
        # rows: the first layer's table rows read by (items -> users, users -> items); default all
        super().__init__()
        self.to_users = ReviewAwareConv(n_levels, review_dim, dim, n_items if first else None, dim, rows[0])
        self.to_items = ReviewAwareConv(n_levels, review_dim, dim, n_users if first else None, dim, rows[1])
        self.user_fc = nn.Linear(dim, dim)
        self.item_fc = nn.Linear(dim, dim)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        for fc in (self.user_fc, self.item_fc):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, graph: ReviewGraph, users, items, edge_scale: torch.Tensor, groups=(None, None),
                rows=(None, None)):
        # users: [m, d] or None; items: [n, d] or None; edge_scale: [E] (0 for a dropped edge);
        # groups: the EdgeGroups of (items -> users, users -> items), built here when None;
        # rows: the sorted user and item ids whose outputs are wanted (None: all)
        n_users, n_items = len(graph.user_norm), len(graph.item_norm)
        h_users = self.to_users(items, graph.item, graph.user, graph.level, graph.review,
                                graph.item_norm[graph.item] * edge_scale, graph.user_norm, n_users, groups[0], rows[0])
        h_items = self.to_items(users, graph.user, graph.item, graph.level, graph.review,
                                graph.user_norm[graph.user] * edge_scale, graph.item_norm, n_items, groups[1], rows[1])
        users = self.user_fc(self.dropout_rows(self.activation(h_users), n_users, rows[0]))  # [m or U, d]
        items = self.item_fc(self.dropout_rows(self.activation(h_items), n_items, rows[1]))  # [n or I, d]
        return users, items

    def dropout_rows(self, x: torch.Tensor, n: int, rows: torch.Tensor | None) -> torch.Tensor:
        """``self.dropout`` of the full [n, d] input at ``rows``: the mask is drawn for all n rows,
        as nn.Dropout draws it on CPU (bernoulli(1 - p) / (1 - p)), so the random stream and the
        kept rows' values are those of the full layer."""
        p = self.dropout.p
        if rows is None:
            return self.dropout(x)
        if not self.training or p == 0.0:
            return x
        noise = x.new_empty(n, x.shape[1]).bernoulli_(1 - p).div_(1 - p)  # [n, d]
        return x * noise[rows]


class RGCL(GeneralRecommender):
    r"""Review-aware graph + node and edge discrimination, ranked by inner product with BPR."""

    DATASET_CLASS = ReviewDataset  # its review vectors (registry: the dataset class of a plugin model)
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]  # d
        self.n_layers = config["n_layers"]  # RG layers (the reference: 1)
        self.review_feat_size = config["review_feat_size"]  # k, whitened review dimensions
        self.dropout_rate = config["dropout_rate"]  # edge dropout of the views and feature dropout
        self.nd_weight = config["nd_weight"]  # lambda_ND
        self.ed_weight = config["ed_weight"]  # lambda_ED
        if self.n_layers < 1:
            raise ValueError(f"RGCL needs n_layers >= 1, got {self.n_layers}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")

        # load dataset info: the training graph with ratings and review features
        graph, self.rating_levels, self.review_mean, self.review_whitening = self.build_graph(dataset)
        for name, tensor in graph._asdict().items():
            self.register_buffer(f"graph_{name}", tensor)
        self.register_buffer("edge_keys", graph.user * self.n_items + graph.item)  # sorted: [E]
        n_levels = len(self.rating_levels)
        rows = (source_rows(graph.item, graph.level, self.n_items), source_rows(graph.user, graph.level, self.n_users))
        self.groups = (edge_groups(graph.user, graph.item, graph.level, self.n_users, self.n_items, n_levels, rows[0]),
                       edge_groups(graph.item, graph.user, graph.level, self.n_items, self.n_users, n_levels, rows[1]))
        review_dim = graph.review.shape[1]

        # define layers and loss
        self.layers = nn.ModuleList([
            RGCLayer(len(self.rating_levels), review_dim, self.embedding_size, self.n_users, self.n_items,
                     first=(layer == 0), dropout=self.dropout_rate, rows=rows)
            for layer in range(self.n_layers)
        ])
        self.nd_weight_matrix = nn.Parameter(torch.empty(self.embedding_size, self.embedding_size))  # ND's W
        self.edge_mlp = nn.Sequential(  # MLP([x_u; x_i]) of ED
            nn.Linear(2 * self.embedding_size, self.embedding_size, bias=False),
            nn.ReLU(),
            nn.Linear(self.embedding_size, self.embedding_size, bias=False),
        )
        self.ed_weight_matrix = nn.Parameter(torch.empty(self.embedding_size, review_dim))  # ED's W
        self.bpr_loss = BPRLoss()

        # storage variables for full sort evaluation acceleration
        self.restore_user_e = None
        self.restore_item_e = None

        # parameters initialization (the reference: xavier uniform everywhere)
        nn.init.xavier_uniform_(self.nd_weight_matrix)
        nn.init.xavier_uniform_(self.ed_weight_matrix)
        for layer in self.edge_mlp:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]

    @property
    def graph(self) -> ReviewGraph:
        return ReviewGraph(*(getattr(self, f"graph_{name}") for name in ReviewGraph._fields))

    def build_graph(self, dataset):
        """The training edges, their rating levels, whitened review features and degree norms.

        Ratings are the training interactions' (``inter_matrix``, each user's first one
        included); levels are the distinct training ratings, sorted. Review vectors come from
        ``dataset.review_vectors()``, which serves this (training) dataset's reviews only.
        """
        counts = sp.csr_matrix(dataset.inter_matrix(form="coo"))  # [m, n], duplicates summed
        ratings = sp.csr_matrix(dataset.inter_matrix(form="coo", value_field=dataset.config["RATING_FIELD"]))
        counts.sum_duplicates()
        ratings.sum_duplicates()
        coo = counts.tocoo()
        order = np.lexsort((coo.col, coo.row))
        users, items = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
        mean_rating = np.asarray(ratings[users, items]).ravel() / coo.data[order]
        levels = np.unique(np.round(mean_rating, 6))
        level = np.searchsorted(levels, np.round(mean_rating, 6)).astype(np.int64)

        review_users, review_items, vectors = dataset.review_vectors()
        if len(vectors) < 2:
            raise ValueError(f"RGCL needs review texts: the training split of {dataset.dataset_name} has "
                             f"{len(vectors)} review vector(s)")
        mean, transform = whitening(vectors, self.review_feat_size)
        keys = users * self.n_items + items
        positions = np.searchsorted(keys, review_users * self.n_items + review_items)
        assert np.array_equal(keys[positions], review_users * self.n_items + review_items)
        review = np.zeros((len(users), transform.shape[1]), dtype=np.float32)
        review[positions] = (vectors - mean) @ transform
        has_text = np.zeros(len(users), dtype=bool)
        has_text[positions] = True

        user_norm = safe_power(np.bincount(users, minlength=self.n_users), -0.5)
        item_norm = safe_power(np.bincount(items, minlength=self.n_items), -0.5)
        graph = ReviewGraph(
            torch.from_numpy(users), torch.from_numpy(items), torch.from_numpy(level),
            torch.from_numpy(review), torch.from_numpy(has_text),
            torch.from_numpy(user_norm.astype(np.float32)), torch.from_numpy(item_norm.astype(np.float32)),
        )
        return graph, levels, mean, transform

    def edge_scale(self) -> torch.Tensor:
        """A view of the graph: each edge kept with probability 1 - rate and rescaled (both
        directions together); every edge with weight 1 outside training."""
        ones = torch.ones(len(self.graph_user), device=self.graph_user.device)
        if not self.training or self.dropout_rate == 0.0:
            return ones
        return torch.bernoulli(ones * (1.0 - self.dropout_rate)) / (1.0 - self.dropout_rate)

    def forward(self, users=None, items=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One view: (users [m, d], items [n, d]) after the RG layers (dropout in training only);
        with ``users`` and ``items`` (sorted ids), their rows only ([U, d], [I, d]): the last
        layer transforms no other node."""
        graph, scale = self.graph, self.edge_scale()
        device = graph.user.device
        if self.groups[0].group.device != device:
            self.groups = tuple(groups.to(device) for groups in self.groups)
        users_e = items_e = None
        for index, layer in enumerate(self.layers):
            rows = (users, items) if index == len(self.layers) - 1 else (None, None)
            users_e, items_e = layer(graph, users_e, items_e, scale, self.groups, rows)
        return users_e, items_e

    def node_discrimination_loss(self, view1, view2, nodes, permutation=None) -> torch.Tensor:
        """ND for ``nodes``: view 1 against view 2 of the same node (positive) and of the node
        at ``permutation`` (negative; random when None); mean over nodes."""
        x, y = view1[nodes], view2[nodes]  # [N, d]
        if permutation is None:
            permutation = torch.randperm(len(nodes), device=nodes.device)
        return bilinear_bce(x, y, y[permutation], self.nd_weight_matrix).mean()

    def edge_discrimination_loss(self, users_e, items_e, users, items, permutation=None, rows=None) -> torch.Tensor:
        """ED for the (user, item) edges that have a review: MLP([x_u; x_i]) against the edge's
        own review feature and the feature of the edge at ``permutation`` (random when None).
        ``rows``: the edges' rows in ``users_e`` and ``items_e`` (default: their ids), which then
        hold the batch's nodes only: the MLP's first product runs once per node of these edges."""
        user_rows, item_rows = rows if rows is not None else (users, items)
        positions = torch.searchsorted(self.edge_keys, users * self.n_items + items)  # [B]
        positions = positions.clamp(max=len(self.edge_keys) - 1)
        found = (self.edge_keys[positions] == users * self.n_items + items) & self.graph_has_text[positions]
        if not found.any():
            return users_e.new_zeros(())
        positions, user_rows, item_rows = positions[found], user_rows[found], item_rows[found]
        review = self.graph_review[positions]  # [N, k]
        if permutation is None:
            permutation = torch.randperm(len(positions), device=positions.device)
        if rows is None:
            pair = self.edge_mlp(torch.cat([users_e[user_rows], items_e[item_rows]], dim=-1))  # [N, d]
            return bilinear_bce(pair, review, review[permutation], self.ed_weight_matrix).mean()
        # [x_u; x_i] W_1^T = x_u W_u^T + x_i W_i^T: each node of these edges once, not once per edge
        first, second = self.edge_mlp[0].weight, self.edge_mlp[2].weight  # [d, 2d], [d, d]
        d = users_e.shape[1]
        user_nodes, user_rows = torch.unique(user_rows, return_inverse=True)
        item_nodes, item_rows = torch.unique(item_rows, return_inverse=True)
        hidden = ((users_e[user_nodes] @ first[:, :d].T)[user_rows]
                  + (items_e[item_nodes] @ first[:, d:].T)[item_rows])  # [N, d]
        # the pair is only read through pair W = relu(hidden) (W_2^T W): a d x k product, not N x d x d
        return bilinear_bce(self.edge_mlp[1](hidden), review, review[permutation],
                            second.T @ self.ed_weight_matrix).mean()

    def calculate_loss(self, interaction):
        # clear the storage variable when training
        self.restore_user_e, self.restore_item_e = None, None

        user = interaction[self.USER_ID]  # [B]
        pos_item = interaction[self.ITEM_ID]  # [B]
        neg_item = interaction[self.NEG_ITEM_ID]  # [B]

        # the nodes the losses read, sorted; each case's rows among them
        users, user_rows = torch.unique(user, return_inverse=True)  # [U], [B]
        items, item_rows = torch.unique(torch.cat([pos_item, neg_item]), return_inverse=True)  # [I], [2B]
        pos_rows, neg_rows = item_rows[:len(user)], item_rows[len(user):]
        views = [self.forward(users, items), self.forward(users, items)]  # two edge-dropped views: [U, d], [I, d]
        bpr = 0.0
        for users_e, items_e in views:
            u = users_e[user_rows]  # [B, d]
            pos_scores = (u * items_e[pos_rows]).sum(dim=1)  # [B]
            neg_scores = (u * items_e[neg_rows]).sum(dim=1)  # [B]
            bpr = bpr + self.bpr_loss(pos_scores, neg_scores) / 2
        (users1, items1), (users2, items2) = views
        unique_items = torch.searchsorted(items, torch.unique(pos_item))  # the positives' rows: [I+]
        nd = (self.node_discrimination_loss(users1, users2, torch.arange(len(users), device=user.device))
              + self.node_discrimination_loss(items1, items2, unique_items)) / 2
        ed = sum(self.edge_discrimination_loss(u_e, i_e, user, pos_item, rows=(user_rows, pos_rows))
                 for u_e, i_e in views) / 2
        return bpr + self.nd_weight * nd + self.ed_weight * ed

    def train(self, mode: bool = True):
        """Cached full-graph embeddings are for evaluation only."""
        self.restore_user_e, self.restore_item_e = None, None
        return super().train(mode)

    def _cached_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dropout-free full-graph embeddings, computed once per evaluation."""
        if self.restore_user_e is None or self.restore_item_e is None:
            self.restore_user_e, self.restore_item_e = self.forward()
        return self.restore_user_e, self.restore_item_e

    def predict(self, interaction):
        user_e, item_e = self._cached_embeddings()
        u_embeddings = user_e[interaction[self.USER_ID]]  # [B, d]
        i_embeddings = item_e[interaction[self.ITEM_ID]]  # [B, d]
        return (u_embeddings * i_embeddings).sum(dim=1)  # [B]

    def full_sort_predict(self, interaction):
        user_e, item_e = self._cached_embeddings()
        u_embeddings = user_e[interaction[self.USER_ID]]  # [B, d]
        return u_embeddings @ item_e.T  # [B, n_items]
