r"""XSimGCL as a RecBole general recommender (a baseline of the SD-MTMP paper; docs/DESIGN.md §5).

Reference:
    Junliang Yu, Xin Xia, Tong Chen, Lizhen Cui, Nguyen Quoc Viet Hung, Hongzhi Yin.
    "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for Recommendation."
    IEEE TKDE 2024 (arXiv:2209.02544).

Reference code (read, not copied): Coder-Yu/SELFRec, ``model/graph/XSimGCL.py``.

XSimGCL drops graph augmentations: the contrastive views come from one LightGCN pass in which
every layer's output gets a small random rotation (the paper's noise-based augmentation,
Delta = omega_bar * sign(e) with ||Delta||_2 = eps), and the two views are the final
embedding and the embedding of layer l* of the *same* pass (cross-layer contrast). Hence one
propagation per batch serves both the recommendation loss and the contrastive loss:

    L = L_BPR + lambda * (InfoNCE_users + InfoNCE_items) + reg_weight * L2(batch ego embeddings).

As in the reference code, the final embedding is the mean of layers 1..L (layer 0 excluded)
and the BPR loss is computed on the perturbed final embeddings; evaluation uses no noise.
Consequence of excluding layer 0: a node without training edges (the padding item, items seen
only in validation or test) has an all-zero final embedding and scores 0.

In this project general models run inside RecBole's sequential pipeline (docs/DESIGN.md §4): each
case is scored by its user id, the history sequence is not read.
"""

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import BPRLoss, EmbLoss
from recbole.utils import InputType

from recbole_sdmtmp.model.layers.distillation import info_nce_loss
from recbole_sdmtmp.model.layers.lightgcn_encoder import binary_normalized_adjacency, propagate


class XSimGCLOutput(NamedTuple):
    """One full-graph propagation: the recommendation view and the contrastive view."""

    user_final: torch.Tensor  # [m, d] mean of layers 1..L
    item_final: torch.Tensor  # [n, d]
    user_cl: torch.Tensor  # [m, d] layer l*
    item_cl: torch.Tensor  # [n, d]


class XSimGCL(GeneralRecommender):
    r"""LightGCN + uniform-noise perturbation + cross-layer InfoNCE, trained with BPR."""

    DATASET_CLASS = None  # RecBole's default dataset (registry)
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]  # d
        self.n_layers = config["n_layers"]  # L
        self.eps = config["eps"]  # noise magnitude: ||Delta||_2 per row
        self.cl_weight = config["cl_weight"]  # lambda
        self.tau = config["tau"]  # InfoNCE temperature
        self.layer_cl = config["layer_cl"]  # l*, the layer contrasted with the final embedding
        self.reg_weight = config["reg_weight"]  # L2 on the batch's ego embeddings
        if not 1 <= self.layer_cl <= self.n_layers:
            raise ValueError(f"layer_cl must be in 1..n_layers={self.n_layers}, got {self.layer_cl}")

        # load dataset info: the binary training graph, D^-1/2 A D^-1/2
        self.norm_adj_matrix = binary_normalized_adjacency(dataset).to(self.device)

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)  # E(0) of users
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)  # E(0) of items
        self.bpr_loss = BPRLoss()
        self.reg_loss = EmbLoss()

        # storage variables for full sort evaluation acceleration
        self.restore_user_e = None
        self.restore_item_e = None

        # parameters initialization
        self.apply(xavier_uniform_initialization)
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]

    def perturb(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Noise-based augmentation: E' = E + eps * sign(E) * normalize(U(0, 1)) row-wise.

        The noise keeps each entry's sign (Delta lies in the same hyperoctant as e: a small
        rotation, not a flip) and has L2 norm eps per row (less where E has zero entries).
        """
        # embeddings: [N, d] -> [N, d]
        noise = F.normalize(torch.rand_like(embeddings), dim=-1)  # omega_bar, unit rows
        return embeddings + self.eps * torch.sign(embeddings) * noise

    def forward(self, perturbed: bool | None = None) -> XSimGCLOutput:
        """One LightGCN pass over the full graph; noisy layers when ``perturbed`` (default: in
        training mode only, so evaluation never sees noise)."""
        if perturbed is None:
            perturbed = self.training
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)  # [m + n, d]
        layers = propagate(
            self.norm_adj_matrix, ego, self.n_layers, self.perturb if perturbed else None
        )
        final = torch.stack(layers[1:], dim=0).mean(dim=0)  # mean of E(1..L): [m + n, d]
        user_final, item_final = torch.split(final, [self.n_users, self.n_items])
        user_cl, item_cl = torch.split(layers[self.layer_cl], [self.n_users, self.n_items])
        return XSimGCLOutput(user_final, item_final, user_cl, item_cl)

    def contrastive_loss(self, users: torch.Tensor, items: torch.Tensor, output: XSimGCLOutput) -> torch.Tensor:
        """Cross-layer InfoNCE over the batch's unique users and unique positive items: the final
        embedding of a node is pulled to its own layer-l* embedding, pushed from the others'."""
        users, items = torch.unique(users), torch.unique(items)  # [U], [I]
        user_cl = info_nce_loss(output.user_final[users], output.user_cl[users], self.tau)
        item_cl = info_nce_loss(output.item_final[items], output.item_cl[items], self.tau)
        return user_cl + item_cl

    def calculate_loss(self, interaction):
        # clear the storage variable when training
        self.restore_user_e, self.restore_item_e = None, None

        user = interaction[self.USER_ID]  # [B]
        pos_item = interaction[self.ITEM_ID]  # [B]
        neg_item = interaction[self.NEG_ITEM_ID]  # [B]

        output = self.forward()
        u_embeddings = output.user_final[user]  # [B, d]
        pos_scores = (u_embeddings * output.item_final[pos_item]).sum(dim=1)  # [B]
        neg_scores = (u_embeddings * output.item_final[neg_item]).sum(dim=1)  # [B]
        bpr = self.bpr_loss(pos_scores, neg_scores)

        cl = self.contrastive_loss(user, pos_item, output)
        reg = self.reg_loss(
            self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item)
        )
        return bpr + self.cl_weight * cl + self.reg_weight * reg

    def _cached_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free full-graph embeddings, computed once per evaluation."""
        if self.restore_user_e is None or self.restore_item_e is None:
            output = self.forward(perturbed=False)
            self.restore_user_e, self.restore_item_e = output.user_final, output.item_final
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
