r"""SelfCF as a RecBole general recommender (a baseline of the SD-MTMP paper; docs/DESIGN.md §5).

Reference:
    Xin Zhou, Aixin Sun, Yong Liu, Jie Zhang, Chunyan Miao. "SelfCF: A Simple Framework for
    Self-supervised Collaborative Filtering." ACM TORS 2023 (arXiv:2107.03019).

Reference code (read, not copied): enoche/SelfCF ``models/selfcfed_lgn.py`` and the authors'
later copy in enoche/MMRec ``src/models/selfcfed_lgn.py``.

SelfCF learns without negative samples: a simplified Siamese network (BYOL/SimSiam style) in
which the *target* view is a perturbation of the backbone's output embeddings (no second
encoder, no momentum copy) and the *online* view goes through a linear predictor h. For a
positive pair (u, i), with stop-gradient sg on the target:

    L = 1/2 C(h(e_u), sg(e~_i)) + 1/2 C(h(e_i), sg(e~_u)),   C(p, z) = -cos(p, z),

averaged over the batch's positive pairs. There is no regulariser in the paper's loss or in
its reference code, so none here (MMRec later added one, with weight 0 by default).
Score (reference code's ``full_sort_predict``): s(u, i) = h(e_u) . e_i + e_u . h(e_i), with
the unperturbed online embeddings.

Variant: SelfCF_ed, *embedding dropout*, with a LightGCN backbone. The paper names its three
perturbations SelfCF_he (historical embeddings), SelfCF_ed (embedding dropout) and SelfCF_ep
(edge pruning): "ed" is embedding dropout, not edge pruning. Why _ed: the paper's result tables
could not be read offline here, so the choice follows the authors' own code, which treats _ed
as SelfCF: the SelfCF repository's entry point defaults to ``SELFCFED_LGN``, and the authors'
later frameworks (ImRec, MMRec) ship SelfCF only as ``selfcfed_lgn.py``. It is also the
cheapest variant (no extra propagation, unlike _ep; no per-node memory, unlike _he). A
third-party library (SELFRec) implements _he instead, saying it is "reported as the best in
most cases"; we did not verify that claim.

RecBole's pairwise dataloader still samples a negative item per case; SelfCF ignores it. In
this project general models run inside RecBole's sequential pipeline (docs/DESIGN.md §4): each
case is scored by its user id, the history sequence is not read.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.init import xavier_uniform_initialization
from recbole.utils import InputType

from recbole_sdmtmp.model.layers.lightgcn_encoder import binary_normalized_adjacency, propagate


def negative_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """C(p, z) = -cos(p, sg(z)), averaged over rows; the target never receives a gradient."""
    # prediction, target: [B, d] -> scalar
    return -F.cosine_similarity(prediction, target.detach(), dim=-1).mean()


class SelfCF(GeneralRecommender):
    r"""SelfCF_ed: LightGCN online embeddings, dropout-perturbed targets, a linear predictor."""

    DATASET_CLASS = None  # RecBole's default dataset (registry)
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]  # d
        self.n_layers = config["n_layers"]  # L, LightGCN layers of the backbone
        self.dropout = config["dropout"]  # embedding-dropout ratio of the target view
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

        # load dataset info: the binary training graph, D^-1/2 A D^-1/2
        self.norm_adj_matrix = binary_normalized_adjacency(dataset).to(self.device)

        # define layers
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)  # E(0) of users
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)  # E(0) of items
        self.predictor = nn.Linear(self.embedding_size, self.embedding_size)  # h, with bias

        # storage variables for full sort evaluation acceleration
        self.restore_user_e = None  # [m, 2d]: [h(e_u), e_u]
        self.restore_item_e = None  # [n, 2d]: [e_i, h(e_i)]

        # parameters initialization
        self.apply(xavier_uniform_initialization)
        self.other_parameter_name = ["restore_user_e", "restore_item_e"]

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Online embeddings of every user and item: LightGCN's mean of E(0..L)."""
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)  # [m + n, d]
        layers = propagate(self.norm_adj_matrix, ego, self.n_layers)
        final = torch.stack(layers, dim=0).mean(dim=0)  # [m + n, d]
        return torch.split(final, [self.n_users, self.n_items])  # [m, d], [n, d]

    def target_view(self, online: torch.Tensor) -> torch.Tensor:
        """SelfCF_ed's perturbation: e~ = dropout(sg(e)); the 1/(1-p) rescaling is harmless,
        the loss is a cosine."""
        return F.dropout(online.detach(), p=self.dropout, training=self.training)

    def selfcf_loss(self, user_online: torch.Tensor, item_online: torch.Tensor) -> torch.Tensor:
        """Symmetric loss of the positive pairs (u_k, i_k): 1/2 C(h(e_u), e~_i) + 1/2 C(h(e_i), e~_u)."""
        # user_online, item_online: [B, d] -> scalar
        user_target = self.target_view(user_online)
        item_target = self.target_view(item_online)
        return 0.5 * negative_cosine(self.predictor(user_online), item_target) + 0.5 * negative_cosine(
            self.predictor(item_online), user_target
        )

    def calculate_loss(self, interaction):
        # clear the storage variable when training
        self.restore_user_e, self.restore_item_e = None, None

        user_all, item_all = self.forward()
        user_online = user_all[interaction[self.USER_ID]]  # [B, d]
        item_online = item_all[interaction[self.ITEM_ID]]  # [B, d] positive items only
        return self.selfcf_loss(user_online, item_online)

    def _cached_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[h(e_u), e_u] and [e_i, h(e_i)], so that one dot product gives
        s(u, i) = h(e_u) . e_i + e_u . h(e_i)."""
        if self.restore_user_e is None or self.restore_item_e is None:
            user_all, item_all = self.forward()
            self.restore_user_e = torch.cat([self.predictor(user_all), user_all], dim=1)  # [m, 2d]
            self.restore_item_e = torch.cat([item_all, self.predictor(item_all)], dim=1)  # [n, 2d]
        return self.restore_user_e, self.restore_item_e

    def predict(self, interaction):
        user_e, item_e = self._cached_embeddings()
        u_embeddings = user_e[interaction[self.USER_ID]]  # [B, 2d]
        i_embeddings = item_e[interaction[self.ITEM_ID]]  # [B, 2d]
        return (u_embeddings * i_embeddings).sum(dim=1)  # [B]

    def full_sort_predict(self, interaction):
        user_e, item_e = self._cached_embeddings()
        u_embeddings = user_e[interaction[self.USER_ID]]  # [B, 2d]
        return u_embeddings @ item_e.T  # [B, n_items]
