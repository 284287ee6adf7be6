r"""SD-MTMP: self-distillation multi-task learning with multi-dimensional perception for
multimodal sequential recommendation (Tang et al.). Section numbers refer to the paper.

Long-term side (2.1): rating-aware NGCF embeddings e^inter and topic-aware hypergraph
embeddings e^topic, tied by self-distillation (topic teacher -> rating student);
e_u^long = e_u^inter + e_u^topic and e_i = e_i^inter + e_i^topic.
Short-term side (2.2): dual-aware attention over the newest 20% of the history.
Prediction (2.3): e_u = sigmoid(e_long W_long) e_long + sigmoid(e_short W_short) e_short,
y_hat = e_u . e_i, trained with BPR + gamma2 * Loss_SD + lambda * ||Theta||^2.

Where the paper can be read two ways a config key offers both (docs/DESIGN.md §3): ``attention_norm``
(softmax | sum), ``sd_direction`` (topic_teaches | as_printed) with ``sd_detach_teacher``,
``dropout_type`` (edge | message | none) and ``reg_type`` (params | batch_embeddings).
Beyond the paper, ``graph_batch: subgraph`` computes a training batch on the exact L-hop
sub-graph of its nodes (``recbole_sdmtmp/model/sdmtmp/subgraph.py``) instead of the whole graph, with
Loss_SD over the batch's users and items, and ``subgraph_fanout`` > 0 samples that many
neighbours per node and layer (GraphSAGE-style, unbiased), and ``sparse_embeddings`` updates
(and L2-regularises) only the batch's embedding rows: an epoch then grows linearly. Also beyond
the paper, ``short_term_encoder: gru`` reads the short-term window in order with a GRU instead of
the order-blind dual-aware attention (with ``short_term_ratio: 1.0``, the whole history).
"""

from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import BPRLoss, EmbLoss

from recbole_sdmtmp.data.dataset import SDMTMPDataset
from recbole_sdmtmp.model.sdmtmp.attention import (
    ATTENTION_NORMS, distinct_rows, dual_aware_attention, ordered_window, short_term_mask,
    window_positions,
)
from recbole_sdmtmp.model.layers.distillation import SD_DIRECTIONS, info_nce_loss, self_distillation_loss
from recbole_sdmtmp.model.layers.graph import NGCFLayer, edge_dropout, rating_normalized_adjacency, undirected_edge_ids
from recbole_sdmtmp.model.sdmtmp.hypergraph import HypergraphConv, hypergraph_operators
from recbole_sdmtmp.model.layers.optim import LazyAdam
from recbole_sdmtmp.model.layers.sparse import to_torch_sparse
from recbole_sdmtmp.model.sdmtmp.subgraph import CSR, hashed_keep, hypergraph_rows, propagate_rows

ABLATIONS = {
    "none": "the full model",
    "w/o-H": "no topic hypergraphs and no self-distillation",
    "w/o-S1": "InfoNCE between topic- and rating-aware views replaces self-distillation",
    "w/o-S2": "concatenation + projection of the two views replaces self-distillation",
    "w/o-A": "no short-term (dual-aware attention) part",
}


DROPOUT_TYPES = ("edge", "message", "none")
GRAPH_ENCODERS = ("ngcf", "lightgcn")  # lightgcn: a labelled variant beyond the paper
REG_TYPES = ("params", "batch_embeddings")
GRAPH_BATCHES = ("full", "subgraph")
SHORT_TERM_ENCODERS = ("attention", "gru")  # gru: a labelled variant beyond the paper


def check_choice(key: str, value, valid) -> str:
    if value not in valid:
        raise ValueError(f"{key}={value!r} is not valid; choose one of: {', '.join(valid)}")
    return value


def parse_ablation(value) -> str:
    """Accept 'w/o-H', 'wo_H', 'woh', ... and return the canonical name, or list the valid ones."""
    key = str(value or "none").lower().replace("/", "").replace("-", "").replace("_", "")
    for name in ABLATIONS:
        if name.lower().replace("/", "").replace("-", "") == key:
            return name
    valid = ", ".join(f"'{name}' ({meaning})" for name, meaning in ABLATIONS.items())
    raise ValueError(f"ablation={value!r} is not valid; choose one of: {valid}")


class GraphOutput(NamedTuple):
    """The full-graph representations of one propagation (all users / all items)."""

    user_inter: torch.Tensor  # [m, d] e_u^inter
    item_inter: torch.Tensor  # [n, d] e_i^inter
    user_topic: torch.Tensor | None  # [m, d] e_u^topic (None under w/o-H)
    item_topic: torch.Tensor | None  # [n, d] e_i^topic
    user_long: torch.Tensor  # [m, d] e_u^long
    item_final: torch.Tensor  # [n, d] e_i


class SDMTMP(SequentialRecommender):
    r"""SD-MTMP as a RecBole sequential recommender (pairwise BPR training).

    A training batch holds ``train_batch_size`` cases, each with its k negatives ([B, k],
    ``recbole_sdmtmp/data/negatives.py``): the graphs are propagated once per batch whatever k is.
    """

    DATASET_CLASS = SDMTMPDataset  # the topic side-files (registry: the dataset class of a plugin model)
    NEGATIVES_PER_CASE = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]
        self.n_layers = config["n_layers"]
        self.graph_encoder = check_choice("graph_encoder", config["graph_encoder"] or "ngcf", GRAPH_ENCODERS)
        self.leaky_relu_slope = config["leaky_relu_slope"]
        self.dropout_type = check_choice("dropout_type", config["dropout_type"], DROPOUT_TYPES)
        self.dropout_rate = config["dropout_rate"]
        self.gamma1 = config["gamma1"]
        self.beta = config["beta"]
        self.attention_norm = check_choice("attention_norm", config["attention_norm"], ATTENTION_NORMS)
        self.gamma2 = config["gamma2"]
        self.sd_direction = check_choice("sd_direction", config["sd_direction"], SD_DIRECTIONS)
        self.sd_detach_teacher = bool(config["sd_detach_teacher"])
        self.reg_weight = config["reg_weight"]
        self.reg_type = check_choice("reg_type", config["reg_type"], REG_TYPES)
        self.sd_temperature = config["sd_temperature"]
        self.cl_temperature = config["cl_temperature"]
        self.short_term_ratio = config["short_term_ratio"]
        self.short_term_encoder = check_choice(
            "short_term_encoder", config["short_term_encoder"] or "attention", SHORT_TERM_ENCODERS)
        self.topic_projection = config["topic_projection"]
        self.ablation = parse_ablation(config["ablation"])
        self.uses_topics = self.ablation != "w/o-H"
        self.uses_short_term = self.ablation != "w/o-A"
        self.loss_type = config["loss_type"]
        self.graph_batch = check_choice("graph_batch", config["graph_batch"] or "full", GRAPH_BATCHES)
        self.subgraph_fanout = int(config["subgraph_fanout"] or 0)
        self.sparse_embeddings = bool(config["sparse_embeddings"])
        if self.sparse_embeddings and self.graph_batch != "subgraph":
            raise ValueError("sparse_embeddings needs graph_batch=subgraph (the full graph reads every embedding row)")
        self.learning_rate = config["learning_rate"]
        if self.graph_batch == "subgraph" and self.loss_type == "CE":
            raise ValueError("graph_batch=subgraph scores a batch's own items; loss_type=CE scores every item")
        if self.loss_type not in ("BPR", "CE"):
            raise ValueError(f"SDMTMP trains with BPR (paper 2.3) or, as a labelled departure, CE; "
                             f"got loss_type={self.loss_type!r}")
        if self.topic_projection not in ("learned", "fixed"):
            raise ValueError(f"topic_projection must be 'learned' or 'fixed', got {self.topic_projection!r}")

        self.USER_ID = config["USER_ID_FIELD"]
        self.RATING_LIST = config["RATING_FIELD"] + config["LIST_SUFFIX"]
        self.TIME_LIST = config["TIME_FIELD"] + config["LIST_SUFFIX"]
        self.n_users = dataset.user_num

        # load dataset info: the training graph and topic hypergraphs
        ratings = dataset.inter_matrix(form="csr", value_field=config["RATING_FIELD"])
        self.laplacian = to_torch_sparse(rating_normalized_adjacency(ratings)).to(self.device)
        self.laplacian_edge_ids = undirected_edge_ids(self.laplacian)
        self.laplacian_rows = CSR.of(self.laplacian)
        if self.uses_topics:
            user_gather, user_scatter = hypergraph_operators(dataset.topic_incidence("user"))
            item_gather, item_scatter = hypergraph_operators(dataset.topic_incidence("item"))
            self.user_edge_gather = to_torch_sparse(user_gather).to(self.device)
            self.user_node_scatter = to_torch_sparse(user_scatter).to(self.device)
            self.item_edge_gather = to_torch_sparse(item_gather).to(self.device)
            self.item_node_scatter = to_torch_sparse(item_scatter).to(self.device)
            self.hypergraph_rows = {side: (CSR.of(gather), CSR.of(scatter)) for side, gather, scatter in (
                ("user", self.user_edge_gather, self.user_node_scatter),
                ("item", self.item_edge_gather, self.item_node_scatter))}
            self.register_buffer("user_has_topic", torch.from_numpy(user_scatter.getnnz(axis=1) > 0))
            self.register_buffer("item_has_topic", torch.from_numpy(item_scatter.getnnz(axis=1) > 0))
            self.register_buffer("topic_vectors", torch.from_numpy(np.asarray(dataset.topic_vectors)))

        # define layers and loss
        d = self.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d, sparse=self.sparse_embeddings)  # P(0)
        self.item_embedding = nn.Embedding(self.n_items, d, sparse=self.sparse_embeddings)  # Q(0)
        self.gcn_layers = nn.ModuleList(
            NGCFLayer(d, d, self.leaky_relu_slope) for _ in range(self.n_layers if self.graph_encoder == "ngcf" else 0)
        )
        self.message_dropout = nn.Dropout(self.dropout_rate if self.dropout_type == "message" else 0.0)
        if self.uses_topics:
            # E_T: topic vectors live in the encoder's space (docs/DESIGN.md §2) and are mapped to d here.
            self.topic_to_d = nn.Linear(self.topic_vectors.shape[1], d, bias=False)
            self.topic_to_d.weight.requires_grad_(self.topic_projection == "learned")
            self.user_hyperconv = HypergraphConv(d)  # W_hu
            self.item_hyperconv = HypergraphConv(d)  # W_hi
        if self.ablation == "w/o-S2":
            self.user_concat = nn.Linear(2 * d, d, bias=False)
            self.item_concat = nn.Linear(2 * d, d, bias=False)
        self.long_gate = nn.Linear(d, 1, bias=False)  # W_long
        self.short_gate = nn.Linear(d, 1, bias=False)  # W_short
        if self.uses_short_term and self.short_term_encoder == "gru":
            self.short_term_gru = nn.GRU(d, d, batch_first=True)  # beyond the paper: order-aware
        self.bpr_loss = BPRLoss()
        self.reg_loss = EmbLoss()

        # storage variables for full sort evaluation acceleration
        self.restore_user_e = None
        self.restore_item_e = None

        # parameters initialization
        self.apply(xavier_uniform_initialization)
        if self.uses_short_term and self.short_term_encoder == "gru":  # as RecBole's GRU4Rec
            nn.init.xavier_uniform_(self.short_term_gru.weight_ih_l0)
            nn.init.xavier_uniform_(self.short_term_gru.weight_hh_l0)
        if self.uses_topics and self.topic_projection == "fixed":
            generator = torch.Generator().manual_seed(config["seed"])
            fixed = torch.randn(self.topic_to_d.weight.shape, generator=generator) / np.sqrt(d)
            self.topic_to_d.weight.data.copy_(fixed)
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]

    def rating_aware(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Section 2.1.1: E_bar = mean(E(0..L)) over the rating-weighted graph. The variant
        ``graph_encoder: lightgcn`` (beyond the paper) propagates E(l+1) = L_hat E(l) without NGCF's
        weights and nonlinearity, the backbone that wins the baseline tables."""
        laplacian = self.laplacian
        if self.training and self.dropout_type == "edge":
            laplacian = edge_dropout(laplacian, self.laplacian_edge_ids, self.dropout_rate)
        layer = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)
        layers = [layer]  # [m + n, d] each
        for depth in range(self.n_layers):
            if self.graph_encoder == "ngcf":
                layer = self.gcn_layers[depth](laplacian, layer)
            else:
                layer = torch.sparse.mm(laplacian, layer)
            layer = self.message_dropout(layer)
            layers.append(layer)
        mean = torch.stack(layers, dim=0).mean(dim=0)
        return torch.split(mean, [self.n_users, self.n_items])

    def topic_aware(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Section 2.1.2: one hypergraph convolution for users and one for items."""
        topics = self.topic_to_d(self.topic_vectors)  # E_T: [k, d]
        user_topic = self.user_hyperconv(
            self.user_edge_gather, self.user_node_scatter, self.user_embedding.weight, topics
        )
        item_topic = self.item_hyperconv(
            self.item_edge_gather, self.item_node_scatter, self.item_embedding.weight, topics
        )
        return user_topic, item_topic

    def forward(self) -> GraphOutput:
        """Propagate every graph once; section 2.1.3 fuses the two views."""
        user_inter, item_inter = self.rating_aware()
        if not self.uses_topics:
            return GraphOutput(user_inter, item_inter, None, None, user_inter, item_inter)
        user_topic, item_topic = self.topic_aware()
        if self.ablation == "w/o-S2":
            user_long = self.user_concat(torch.cat([user_inter, user_topic], dim=-1))
            item_final = self.item_concat(torch.cat([item_inter, item_topic], dim=-1))
        else:
            user_long = user_inter + user_topic  # e_u^long = e_u* + e_u^topic
            item_final = item_inter + item_topic  # e_i = e_i* + e_i^topic
        return GraphOutput(user_inter, item_inter, user_topic, item_topic, user_long, item_final)

    def forward_rows(self, users: torch.Tensor, items: torch.Tensor) -> GraphOutput:
        """``forward``'s rows of ``users`` and ``items`` (sorted unique ids), from their L-hop
        sub-graph: the same values as the full propagation's rows (``graph_batch: subgraph``)."""
        edge_weight, fanout = None, self.subgraph_fanout if self.training else 0
        if self.training and self.dropout_type == "edge" and self.dropout_rate > 0:
            salt = int(torch.randint(0, 2**31, (1,)))
            edge_weight = lambda position: hashed_keep(  # noqa: E731
                self.laplacian_edge_ids[position], self.dropout_rate, salt)

        def layer0(ids):  # P(0) rows for ids < m, Q(0) rows after
            is_user = ids < self.n_users
            out = torch.empty(len(ids), self.embedding_size, device=self.device)
            out[is_user] = self.user_embedding(ids[is_user])
            out[~is_user] = self.item_embedding(ids[~is_user] - self.n_users)
            return out

        if self.graph_encoder == "ngcf":
            layers = [lambda n, e, layer=layer: self.message_dropout(layer.combine(n, e)) for layer in self.gcn_layers]
        else:  # E(l+1) = L_hat E(l)
            layers = [lambda n, e: self.message_dropout(n)] * self.n_layers
        targets = torch.cat([users, items + self.n_users])
        mean = torch.stack(propagate_rows(self.laplacian_rows, targets, layer0, layers, edge_weight, fanout)).mean(dim=0)
        user_inter, item_inter = mean[:len(users)], mean[len(users):]
        if not self.uses_topics:
            return GraphOutput(user_inter, item_inter, None, None, user_inter, item_inter)

        def topics(ids):  # rows of E_T: [len(ids), d]
            return self.topic_to_d(self.topic_vectors[ids])

        user_topic = self.user_hyperconv.weight(
            hypergraph_rows(*self.hypergraph_rows["user"], users, self.user_embedding, topics, fanout))
        item_topic = self.item_hyperconv.weight(
            hypergraph_rows(*self.hypergraph_rows["item"], items, self.item_embedding, topics, fanout))
        if self.ablation == "w/o-S2":
            user_long = self.user_concat(torch.cat([user_inter, user_topic], dim=-1))
            item_final = self.item_concat(torch.cat([item_inter, item_topic], dim=-1))
        else:
            user_long, item_final = user_inter + user_topic, item_inter + item_topic
        return GraphOutput(user_inter, item_inter, user_topic, item_topic, user_long, item_final)

    def short_term(self, interaction) -> torch.Tensor:
        """Section 2.2: e_short from the history's items, ratings and times (never the target's).
        Each distinct history is encoded once (``distinct_rows``), over its window's columns."""
        item_seq = interaction[self.ITEM_SEQ]  # [B, L]
        lengths = interaction[self.ITEM_SEQ_LEN]  # [B]
        ratings, times = interaction[self.RATING_LIST].float(), interaction[self.TIME_LIST].float()
        first, inverse = distinct_rows(item_seq, lengths, ratings, times)  # [U], [B]
        window = short_term_mask(lengths[first], item_seq.shape[1], self.short_term_ratio)  # [U, L]
        if self.short_term_encoder == "gru":
            return self.ordered_short_term(item_seq[first], window)[inverse]  # [B, d]
        positions, sizes = window_positions(window)  # [U, W], [U]
        in_window = torch.arange(positions.shape[1], device=positions.device) < sizes.unsqueeze(1)  # [U, W]
        short = dual_aware_attention(
            self.item_embedding(item_seq[first].gather(1, positions)),  # q_i from Q(0): [U, W, d]
            ratings[first].gather(1, positions),
            times[first].gather(1, positions),
            in_window,
            self.gamma1,
            self.beta,
            self.attention_norm,
        )  # [U, d]
        return short[inverse]  # [B, d]

    def ordered_short_term(self, item_seq: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """Beyond the paper: e_short = the GRU state after the window's items, oldest first (the
        paper's attention sees a set: its weights depend on ratings and times, not on order)."""
        # item_seq, window: [B, L] -> [B, d]
        items, sizes = ordered_window(item_seq, window)  # [B, W], [B]
        states, _ = self.short_term_gru(self.item_embedding(items))  # [B, W, d]
        return self.gather_indexes(states, (sizes - 1).clamp(min=0))  # [B, d]

    def user_representation(self, interaction, user_long: torch.Tensor, rows=None) -> torch.Tensor:
        """Section 2.3: e_u = alpha1 e_long + alpha2 e_short with sigmoid gates; ``rows``: each
        case's row of ``user_long`` (its user id unless ``user_long`` holds a batch's users)."""
        long_term = user_long[interaction[self.USER_ID] if rows is None else rows]  # [B, d]
        user = torch.sigmoid(self.long_gate(long_term)) * long_term
        if self.uses_short_term:
            short = self.short_term(interaction)
            user = user + torch.sigmoid(self.short_gate(short)) * short
        return user  # [B, d]

    def auxiliary_loss(self, output: GraphOutput, interaction, nodes=None) -> torch.Tensor:
        """Loss_SD (2.1.3) for the full model; InfoNCE for w/o-S1; nothing otherwise.
        ``nodes``: the (users, items) whose rows ``output`` holds, under ``graph_batch: subgraph``."""
        if self.ablation in ("none", "w/o-A"):
            settings = dict(temperature=self.sd_temperature, detach_teacher=self.sd_detach_teacher,
                            direction=self.sd_direction)
            user_mask, item_mask = self.user_has_topic, self.item_has_topic
            if nodes is not None:
                user_mask, item_mask = user_mask[nodes[0]], item_mask[nodes[1]]
            return self_distillation_loss(
                output.user_topic, output.user_inter, user_mask, **settings
            ) + self_distillation_loss(output.item_topic, output.item_inter, item_mask, **settings)
        if self.ablation == "w/o-S1" and nodes is not None:
            users, items = self.user_has_topic[nodes[0]], self.item_has_topic[nodes[1]]
            return info_nce_loss(output.user_inter[users], output.user_topic[users], self.cl_temperature) + \
                info_nce_loss(output.item_inter[items], output.item_topic[items], self.cl_temperature)
        if self.ablation == "w/o-S1":
            users = torch.unique(interaction[self.USER_ID])
            users = users[self.user_has_topic[users]]
            items = torch.unique(interaction[self.POS_ITEM_ID])
            items = items[self.item_has_topic[items]]
            return info_nce_loss(
                output.user_inter[users], output.user_topic[users], self.cl_temperature
            ) + info_nce_loss(output.item_inter[items], output.item_topic[items], self.cl_temperature)
        return torch.zeros((), device=self.device)

    def negatives(self, interaction) -> torch.Tensor:
        """Each case's negatives, [B, k]; RecBole's own layout (one per row, [B]) reads as k = 1."""
        negatives = interaction[self.NEG_ITEM_ID]
        return negatives.unsqueeze(1) if negatives.dim() == 1 else negatives

    @staticmethod
    def pair_scores(user, items, pos_rows, neg_rows) -> tuple[torch.Tensor, torch.Tensor]:
        """y_hat of each case's positive and negatives: (pos [B, 1], neg [B, k]). With more pairs
        than items, scoring every item once (one [B, n] product) is cheaper than gathering B x k
        item rows and their gradients (Instrument, B 1,024, k 16, n 900: 37 ms against 84 ms)."""
        # user: [B, d]; items: [n, d]; pos_rows: [B]; neg_rows: [B, k]
        if neg_rows.numel() > items.shape[0]:
            scores = user @ items.T  # [B, n]
            return scores.gather(1, pos_rows.unsqueeze(1)), scores.gather(1, neg_rows)
        pos = (user * items[pos_rows]).sum(dim=-1, keepdim=True)
        return pos, (user.unsqueeze(1) * items[neg_rows]).sum(dim=-1)

    def calculate_loss(self, interaction):
        """Section 2.3's three terms, (BPR, gamma2 * Loss_SD, lambda * ||Theta||^2), which
        RecBole's trainer sums and logs one by one; BPR is averaged over the B x k pairs."""
        # clear the storage variable when training
        self.restore_user_e, self.restore_item_e = None, None

        pos_items = interaction[self.POS_ITEM_ID]  # [B]
        neg_items = self.negatives(interaction) if self.loss_type == "BPR" else None  # [B, k]
        if self.graph_batch == "subgraph":  # rows of the batch's users and items only
            users, user_rows = torch.unique(interaction[self.USER_ID], return_inverse=True)
            items, item_rows = torch.unique(torch.cat([pos_items, neg_items.flatten()]), return_inverse=True)
            nodes, pos_rows, neg_rows = (users, items), item_rows[:len(pos_items)], item_rows[len(pos_items):]
            neg_rows = neg_rows.view_as(neg_items)
            output = self.forward_rows(users, items)
        else:
            nodes, user_rows, pos_rows, neg_rows = None, None, pos_items, neg_items
            output = self.forward()
        user = self.user_representation(interaction, output.user_long, user_rows)  # [B, d]
        if self.loss_type == "CE":  # beyond the paper: softmax over every item, no sampled negative
            ranking = nn.functional.cross_entropy(user @ output.item_final.T, pos_items)  # [B, n] -> scalar
        else:
            pos_score, neg_score = self.pair_scores(user, output.item_final, pos_rows, neg_rows)  # [B, 1], [B, k]
            ranking = self.bpr_loss(pos_score, neg_score)  # mean over the B x k pairs
        auxiliary = self.gamma2 * self.auxiliary_loss(output, interaction, nodes)
        return ranking, auxiliary, self.reg_weight * self.regularization(interaction)

    def regularization(self, interaction) -> torch.Tensor:
        """Section 2.3: ||Theta||^2, the squared L2 norm of every trained parameter (``params``,
        as the paper writes it); ``batch_embeddings`` is RecBole's EmbLoss on the batch's ego
        embeddings (a non-squared norm divided by the batch size, about 1e-5 of the loss). With
        ``sparse_embeddings`` the embedding tables count only the batch's rows (a lazy L2, as
        LazyAdam is a lazy Adam), every other parameter in full."""
        if self.reg_type == "params" and self.sparse_embeddings:  # the batch's rows of P(0), Q(0)
            users = torch.unique(interaction[self.USER_ID])
            items = torch.unique(torch.cat([interaction[self.POS_ITEM_ID], self.negatives(interaction).flatten()]))
            tables = (self.user_embedding.weight, self.item_embedding.weight)
            return self.user_embedding(users).pow(2).sum() + self.item_embedding(items).pow(2).sum() + sum(
                p.pow(2).sum() for p in self.parameters() if p.requires_grad and all(p is not t for t in tables))
        if self.reg_type == "params":
            return sum(p.pow(2).sum() for p in self.parameters() if p.requires_grad)
        # one row per (case, negative) pair, as in RecBole's layout, so the value does not depend on it
        pairs = self.negatives(interaction).shape[1] if self.NEG_ITEM_ID in interaction else 1  # k
        items = [interaction[self.POS_ITEM_ID].repeat(pairs)]
        if self.NEG_ITEM_ID in interaction:
            items.append(self.negatives(interaction).flatten())
        users = interaction[self.USER_ID].repeat(pairs)
        return self.reg_loss(self.user_embedding(users), *(self.item_embedding(i) for i in items))

    def build_optimizer(self):
        """``sparse_embeddings``: Adam on the batch's embedding rows only (``LazyAdam``); None
        otherwise (RecBole's trainer builds its own)."""
        if not self.sparse_embeddings:
            return None
        tables = [self.user_embedding.weight, self.item_embedding.weight]
        others = [p for p in self.parameters() if all(p is not t for t in tables)]
        return LazyAdam(tables, others, self.learning_rate)

    def _cached_graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.restore_user_e is None or self.restore_item_e is None:
            output = self.forward()
            self.restore_user_e, self.restore_item_e = output.user_long, output.item_final
        return self.restore_user_e, self.restore_item_e

    def predict(self, interaction):
        user_long, item_final = self._cached_graph()
        user = self.user_representation(interaction, user_long)  # [B, d]
        return (user * item_final[interaction[self.ITEM_ID]]).sum(dim=-1)  # [B]

    def full_sort_predict(self, interaction):
        user_long, item_final = self._cached_graph()
        user = self.user_representation(interaction, user_long)  # [B, d]
        return user @ item_final.T  # [B, n_items]
