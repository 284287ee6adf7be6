r"""RRPU, review-based recommendation under preference uncertainty, **implemented from the paper's
description** (a baseline of the SD-MTMP paper; no public code exists).

Reference:
    Yingqiu Xiong, Yezheng Liu, Yang Qian, Yuanchun Jiang, Yidong Chai, Haifeng Ling.
    "Review-based recommendation under preference uncertainty: An asymmetric deep learning
    framework." European Journal of Operational Research 316(3): 1044-1057, 2024.

Only the abstract could be read here (the full text is not in any corpus available to this
project). It fixes the architecture's parts: a review-level aggregation with an attention that
picks the user's reviews most related to the target item (users); an aspect-based document-level
aggregation with an aspect-level attention (items); a latent stochastic attention from a
probabilistic generative mechanism that models the uncertainty of user preferences; textual
reviews combined with user-item ratings; rating prediction. Everything below that the abstract
does not fix is a decision of this implementation:

 1. Review text: the mean MiniLM sentence embedding of each *training* review
    (``ReviewDataset.review_vectors()``), not a word-level CNN/RNN over the review.
 2. Review encoder: h_j = tanh(W_r v_j + b_r), dropout on h_j (one mask per user and batch, shared by
    the positive and the negative pair).
 3. Item document: the mean of the item's training review embeddings
    (``ReviewDataset.item_text_vectors()``; zero for an item without one).
 4. Aspects: K aspect-specific projections of the document, A_ik = tanh(W_k c_i + b_k).
 5. Aspect attention: global (item-side, independent of the user, which keeps the framework
    asymmetric and full ranking cheap): beta_ik = softmax_k(w_b . tanh(W_b A_ik + b_b));
    d_i = sum_k beta_ik A_ik.
 6. Ratings enter as free ID embeddings: q_i = y_i + d_i (item), p_ui = x_u + sum_j a_ij h_j (user).
 7. Review-level attention logit: bilinear with the target item, mu_ij = (W_a h_j) . q_i.
 8. Latent stochastic attention: the logit is Gaussian, s_ij ~ N(mu_ij, sigma_j^2), with a
    review-level variance log sigma_j^2 = w_s . h_j + b_s (how uncertain the preference one review
    expresses is); reparameterised s_ij = mu_ij + sigma_j eps_ij in training, s_ij = mu_ij in
    evaluation; a_ij = softmax_j(s_ij) over the user's reviews.
 9. KL term: KL(N(mu_ij, sigma_j^2) || N(0, prior_std^2)) averaged over the (pair, review) entries
    of the batch (positive and negative pairs), weighted by ``kl_weight``.
10. Leakage inside training: the user's own review of the target item is masked out of the
    review-level attention (it would not exist at prediction time); in full ranking the same mask
    is applied per candidate, so ``predict`` and ``full_sort_predict`` agree. The item document
    keeps all training reviews. A user whose every review is masked scores x_u . q_i.
11. Ranking instead of rating prediction: score y_ui = p_ui . q_i, trained with BPR against one
    uniformly drawn negative, plus ``reg_weight`` * L2 of the batch's ID embeddings.
12. At most ``max_user_reviews`` reviews per user (the first ones in the review file's order).
"""

import numpy as np
import torch
import torch.nn as nn
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.init import xavier_uniform_initialization
from recbole.model.loss import BPRLoss, EmbLoss
from recbole.utils import InputType

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.layers.buckets import bucketed

FULL_SORT_ENTRIES = 2**24  # users x reviews x items scored at once in full ranking


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """softmax over ``dim`` of the entries where ``mask`` is False; all-masked slices give zeros."""
    logits = logits.masked_fill(mask, float("-inf"))
    top = logits.amax(dim=dim, keepdim=True).detach().clamp(min=-1e30)  # finite even when all masked
    weights = torch.exp(logits - top)
    return weights / weights.sum(dim=dim, keepdim=True).clamp(min=1e-30)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor, prior_std: float) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, prior_std^2)), elementwise."""
    prior_var = prior_std**2
    return 0.5 * (np.log(prior_var) - log_var + (log_var.exp() + mu**2) / prior_var - 1.0)


def user_review_table(users, items, n_users: int, max_reviews: int) -> tuple[np.ndarray, np.ndarray]:
    """(review row [n_users, R], reviewed item [n_users, R]): each user's first ``max_reviews``
    reviews; the row is -1 and the item 0 where a user has fewer."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users)  # first row of each review's user
    slot = np.arange(len(users)) - starts  # rank of the review within its user
    width = max(1, min(max_reviews, int(slot.max()) + 1 if len(slot) else 1))
    keep = slot < width
    rows = np.full((n_users, width), -1, dtype=np.int64)
    reviewed = np.zeros((n_users, width), dtype=np.int64)
    rows[sorted_users[keep], slot[keep]] = order[keep]
    reviewed[sorted_users[keep], slot[keep]] = items[order[keep]]
    return rows, reviewed


class RRPU(GeneralRecommender):
    r"""Item-aware stochastic attention over user reviews x aspect-attended item documents, BPR."""

    DATASET_CLASS = ReviewDataset  # its review vectors (registry: the dataset class of a plugin model)
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]  # d
        self.n_aspects = config["n_aspects"]  # K
        self.dropout_prob = config["dropout_prob"]
        self.kl_weight = config["kl_weight"]
        self.prior_std = config["prior_std"]
        self.reg_weight = config["reg_weight"]
        self.max_user_reviews = config["max_user_reviews"]

        # load dataset info: training reviews only (ReviewDataset's rule)
        users, items, vectors = dataset.review_vectors()
        rows, reviewed = user_review_table(users, items, self.n_users, self.max_user_reviews)
        features = np.concatenate([np.asarray(vectors, dtype=np.float32),
                                   np.zeros((1, vectors.shape[1]), np.float32)])  # last row: padding
        rows[rows < 0] = len(features) - 1
        self.register_buffer("review_features", torch.from_numpy(features))  # [n_reviews + 1, D]
        self.register_buffer("user_reviews", torch.from_numpy(rows))  # [n_users, R]
        self.register_buffer("user_reviewed_items", torch.from_numpy(reviewed))  # [n_users, R], 0: none
        documents = torch.as_tensor(dataset.item_text_vectors(), dtype=torch.float32)  # [n_items, D]
        self.register_buffer("item_documents", documents)
        text_dim = features.shape[1]

        # define layers and loss
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)  # x_u
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)  # y_i
        self.review_encoder = nn.Linear(text_dim, self.embedding_size)  # W_r, b_r
        self.aspect_projection = nn.Linear(text_dim, self.n_aspects * self.embedding_size)  # W_k, b_k
        self.aspect_attention = nn.Sequential(
            nn.Linear(self.embedding_size, self.embedding_size), nn.Tanh(),
            nn.Linear(self.embedding_size, 1, bias=False),
        )  # w_b . tanh(W_b A + b_b)
        self.review_attention = nn.Linear(self.embedding_size, self.embedding_size, bias=False)  # W_a
        self.review_log_var = nn.Linear(self.embedding_size, 1)  # w_s, b_s
        self.dropout = nn.Dropout(self.dropout_prob)
        self.bpr_loss = BPRLoss()
        self.reg_loss = EmbLoss()

        # storage variables for full sort evaluation acceleration
        self.restore_item_e = None
        self.restore_query_e = None

        # parameters initialization
        self.apply(xavier_uniform_initialization)
        self.other_parameter_name = ["restore_item_e", "restore_query_e"]

    def train(self, mode: bool = True):
        """Cached item representations are for evaluation only."""
        self.restore_item_e = self.restore_query_e = None
        return super().train(mode)

    def item_representations(self, items=None) -> torch.Tensor:
        """q_i = y_i + sum_k beta_ik A_ik: [n_items, d], or [B, d] for ``items``."""
        documents = self.item_documents if items is None else self.item_documents[items]  # [N, D]
        ids = self.item_embedding.weight if items is None else self.item_embedding(items)  # [N, d]
        aspects = torch.tanh(self.aspect_projection(documents)).view(-1, self.n_aspects, self.embedding_size)
        beta = torch.softmax(self.aspect_attention(aspects).squeeze(-1), dim=1)  # [N, K]
        return ids + (beta.unsqueeze(-1) * aspects).sum(dim=1)  # [N, d]

    def encoded_reviews(self) -> torch.Tensor:
        """tanh(W_r v_j + b_r) of every review once: [n_reviews + 1, d]."""
        return torch.tanh(self.review_encoder(self.review_features))

    def user_reviews_of(self, users, encoded=None, width=None):
        """(h [B, R, d], log sigma^2 [B, R], reviewed item [B, R]) of the users' reviews;
        ``width``: the first ``width`` review slots only (the rest padding for these users)."""
        encoded = self.encoded_reviews() if encoded is None else encoded
        rows, reviewed = self.user_reviews[users, :width], self.user_reviewed_items[users, :width]
        h = self.dropout(encoded[rows])  # [B, R, d]
        return h, self.review_log_var(h).squeeze(-1), reviewed

    def attention_query(self, q: torch.Tensor) -> torch.Tensor:
        """W_a^T q: (W_a h) . q = h . (W_a^T q), one d x d product per item instead of one per
        (item, review) entry."""
        return q @ self.review_attention.weight  # [N, d]

    def attention_logits(self, mu, log_var):
        """s = mu + sigma * eps in training (reparameterised), mu in evaluation."""
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def forward(self, user, item, reviews=None, q=None):
        """(scores [B], KL per attention entry [B, R], attention mask [B, R]) of (user, item) pairs;
        ``reviews``: the users' ``user_reviews_of``, ``q``: the items' representations, when
        already computed."""
        h, log_var, reviewed = reviews or self.user_reviews_of(user)  # [B, R, d], [B, R], [B, R]
        q = self.item_representations(item) if q is None else q  # [B, d]
        mu = torch.einsum("brd,bd->br", h, self.attention_query(q))  # mu_ij = (W_a h_j) . q_i: [B, R]
        mask = (reviewed == 0) | (reviewed == item.unsqueeze(1))  # padding or the target's own review
        a = masked_softmax(self.attention_logits(mu, log_var), mask, dim=1)  # [B, R]
        p = self.user_embedding(user) + (a.unsqueeze(-1) * h).sum(dim=1)  # [B, d]
        return (p * q).sum(dim=1), gaussian_kl(mu, log_var, self.prior_std), mask

    def calculate_loss(self, interaction):
        """BPR + kl_weight * mean KL + reg_weight * L2. Every item's q_i and every review's h_j
        are computed once per step (a batch's 2B pairs read most items, its users most
        reviews); the users run in groups of similar review counts, each cut to its longest
        list (a padded review has attention weight 0 and no KL entry): one encoding (and
        dropout) of a user's reviews serves its positive and its negative pair."""
        # clear the storage variable when training
        self.restore_item_e = self.restore_query_e = None

        user = interaction[self.USER_ID]  # [B]
        pos_item = interaction[self.ITEM_ID]  # [B]
        neg_item = interaction[self.NEG_ITEM_ID]  # [B]
        items = self.item_representations()  # [n_items, d]
        encoded = self.encoded_reviews()  # [n_reviews + 1, d]

        def pairs(review_rows, counts, reviewed, user, pos_item, neg_item):
            h = self.dropout(encoded[review_rows])  # [b, W, d]
            reviews = (h, self.review_log_var(h).squeeze(-1), reviewed)
            pos_scores, pos_kl, pos_mask = self.forward(user, pos_item, reviews, items[pos_item])
            neg_scores, neg_kl, neg_mask = self.forward(user, neg_item, reviews, items[neg_item])
            kl = pos_kl.masked_fill(pos_mask, 0.0).sum(dim=1) + neg_kl.masked_fill(neg_mask, 0.0).sum(dim=1)
            return pos_scores, neg_scores, kl, (~pos_mask).sum(dim=1) + (~neg_mask).sum(dim=1)

        counts = (self.user_reviewed_items[user] > 0).sum(dim=1)  # [B]
        pos_scores, neg_scores, kl, entries = bucketed(
            pairs, self.user_reviews[user], counts, self.user_reviewed_items[user], user, pos_item, neg_item)
        bpr = self.bpr_loss(pos_scores, neg_scores)
        kl = kl.sum() / entries.sum() if entries.sum() > 0 else pos_scores.new_zeros(())
        reg = self.reg_loss(self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item))
        return bpr + self.kl_weight * kl + self.reg_weight * reg

    def predict(self, interaction):
        scores, _, _ = self.forward(interaction[self.USER_ID], interaction[self.ITEM_ID])
        return scores  # [B]

    def full_sort_predict(self, interaction):
        """The pair formula for every item at once: with S = H (Q W_a)^T and V = H Q^T (both
        [R, n_items] per user), y_u = x_u Q^T + sum_j softmax_j(S)_j V_j; users in chunks of
        similar review counts, each chunk cut to its longest review list (a padded review has
        attention weight 0, so the cut columns add nothing)."""
        if self.restore_item_e is None or self.restore_query_e is None:
            self.restore_item_e = self.item_representations()  # q_i: [N, d]
            self.restore_query_e = self.attention_query(self.restore_item_e)  # W_a^T q_i: [N, d]
        q, query = self.restore_item_e, self.restore_query_e
        encoded = self.encoded_reviews()  # once for every chunk
        user = interaction[self.USER_ID]  # [B]
        counts = (self.user_reviewed_items[user] > 0).sum(dim=1)  # [B]
        order = torch.argsort(counts, stable=True)
        all_items = torch.arange(self.n_items, device=q.device)
        scores = torch.empty(len(user), self.n_items, device=q.device)
        limit = max(1, FULL_SORT_ENTRIES // self.n_items)  # user x review slots per chunk
        widths = counts[order].clamp(min=1).tolist()  # ascending
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end + 1 - start) * widths[end] <= limit:
                end += 1
            rows, width = order[start:end], widths[end - 1]  # the chunk's longest review list
            part = user[rows]
            h, log_var, reviewed = self.user_reviews_of(part, encoded, width)  # [b, W, d], [b, W], [b, W]
            mu = h @ query.T  # [b, W, N]
            mask = (reviewed == 0).unsqueeze(-1) | (reviewed.unsqueeze(-1) == all_items)  # [b, W, N]
            a = masked_softmax(self.attention_logits(mu, log_var.unsqueeze(-1)), mask, dim=1)  # [b, W, N]
            review_part = (a * (h @ q.T)).sum(dim=1)  # [b, N]
            scores[rows] = self.user_embedding(part) @ q.T + review_part
            start = end
        return scores  # [B, N]
