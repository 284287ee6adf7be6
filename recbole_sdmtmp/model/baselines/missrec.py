r"""MISSRec with the text and ID modalities, fine-tuned from scratch (a baseline of the SD-MTMP paper).

Reference:
    Jinpeng Wang, Ziyun Zeng, Yunxiao Wang, Yuting Wang, Xingyu Lu, Tianxiang Li, Jun Yuan, Rui Zhang,
    Hai-Tao Zheng, Shu-Tao Xia. "MISSRec: Pre-training and Transferring Multi-modal Interest-aware
    Sequence Representation for Recommendation." ACM MM 2023 (arXiv:2308.11175).

Reference code (read, not copied): gimpong/MM23-MISSRec (``missrec.py``, ``model_utils.py``,
``trainer.py``, ``props/*.yaml``), RecBole 1.2.0.

What MISSRec does (transductive fine-tuning, ``train_stage: transductive_ft``):

- modality adaptor: an item's frozen text feature x_i goes through a linear adaptor, t_i = W x_i + b;
- multi-modal item tokens: z_l = LayerNorm(t_{s_l} + e^ID_{s_l} + p_l) for the items s_1..s_L of the
  history (the reference's ``seq_mm_fusion: add``, its default);
- interest discovery: before every training epoch the adapted text features of all items are
  clustered with k-means into K = ceil(interest_ratio * #items) interests; an item's interest is
  its cluster, an interest token is its (fixed, no-gradient) centroid;
- contextual encoder: a Transformer encoder over the set of distinct interest tokens of the history;
- interest-aware decoder: a Transformer decoder over the item tokens (bidirectional self-attention)
  with cross-attention to the encoded interests; the sequence representation is the decoder output
  at the last history position, L2-normalised;
- candidate items: e_i = normalize(t_i + e^ID_i); score = s . e_i / temperature, trained with
  cross-entropy over all items;
- diversity regulariser on the encoded interests: gamma * sum_b ||mean of b's interest outputs||^2 / d.

Adapted for this project:

- text only, no image: the SD-MTMP paper ran MISSRec with the ID and text modalities (its section 3.3);
  with one modality the reference's dynamic item fusion (text vs. image weights) does not apply.
- no item descriptions exist in our Amazon data: an item's text feature is the mean MiniLM embedding
  of its *training* reviews (``ReviewDataset.item_text_vectors()``, a zero row for an item without
  one), instead of the reference's BERT/CLIP embedding of title, brand and category.
- no pre-training: the model is fine-tuned from random initialisation on the target data (the
  reference's fine-tuning without ``-p``), so every parameter trains.
- the diversity regulariser averages the *non-padding* interest outputs; the reference multiplies
  the sum over all positions, padding included, by the share of non-padding tokens.
- k-means: full-batch Lloyd iterations (``kmeans_iters``) from distinct random items, instead of the
  reference's mini-batch k-means (torchpq); our item sets are a few thousand at most.
- the last decoder layer computes only the query at the last history position, the one output
  that is read (``decode_at``; equal to the full decoder there, about half a batch's time on CPU).
- clustering is triggered by ``train()``, which RecBole's trainer calls at the start of every
  epoch (the reference's own trainer calls it there too), and once at construction so that a model
  is usable before it trains; the interests are buffers, saved with a checkpoint.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.layers.buckets import bucketed



@torch.no_grad()
def kmeans(points: torch.Tensor, k: int, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from k distinct random points: (cluster of each point [N], centroids [k, d]).

    A cluster left empty keeps its previous centroid. The final assignment is to the nearest final
    centroid.
    """
    # points: [N, d]
    if not 1 <= k <= points.shape[0]:
        raise ValueError(f"k-means needs 1 <= k <= {points.shape[0]} points, got k={k}")
    centroids = points[torch.randperm(points.shape[0], device=points.device)[:k]].clone()  # [k, d]
    for _ in range(iterations):
        assign = torch.cdist(points, centroids).argmin(dim=1)  # [N]
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)  # [k, d]
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)  # [k, 1]
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    return torch.cdist(points, centroids).argmin(dim=1), centroids


def distinct_interests(interest_seq: torch.Tensor, n_interests: int) -> torch.Tensor:
    """Each row's distinct non-zero interest ids, ascending, right-padded with 0: [B, M].

    M is the largest number of distinct interests of a row (what the reference gets from
    ``unique`` + ``pad_sequence``; id 0 is the padding item's interest).
    """
    # interest_seq: [B, L] ids in 0..n_interests
    present = torch.zeros(interest_seq.shape[0], n_interests + 1, dtype=torch.bool, device=interest_seq.device)
    present.scatter_(1, interest_seq, True)
    present[:, 0] = False
    ids = torch.arange(n_interests + 1, device=interest_seq.device).expand_as(present)  # [B, K+1]
    ordered = torch.where(present, ids, n_interests + 1).sort(dim=1).values  # absent ones last
    width = max(int(present.sum(dim=1).max()), 1)
    ordered = ordered[:, :width]
    return torch.where(ordered > n_interests, 0, ordered)  # [B, M]


def interest_diversity(memory: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """||mean of row b's non-padding interest outputs||^2 / d per row: [B] (summed over the batch)."""
    # memory: [B, M, d], padding: [B, M] True where padded
    keep = (~padding).unsqueeze(-1).float()  # [B, M, 1]
    pooled = (memory * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)  # [B, d]
    return (pooled * pooled).sum(dim=1) / memory.shape[-1]


class MISSRec(SequentialRecommender):
    r"""Interest-aware encoder-decoder over ID + review-text item tokens (transductive fine-tuning)."""

    DATASET_CLASS = ReviewDataset  # its review vectors (registry: the dataset class of a plugin model)
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.n_layers = config["n_layers"]  # encoder + decoder layers (half each), as the reference
        self.n_heads = config["n_heads"]
        self.hidden_size = config["hidden_size"]  # d
        self.inner_size = config["inner_size"]  # feed-forward width
        self.hidden_dropout_prob = config["hidden_dropout_prob"]  # nn.Transformer's single dropout
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.initializer_range = config["initializer_range"]
        self.temperature = config["temperature"]
        self.gamma = config["gamma"]  # weight of the interest diversity regulariser
        self.interest_ratio = config["interest_ratio"]  # K = ceil(ratio * #items)
        self.kmeans_iters = config["kmeans_iters"]
        self.loss_type = config["loss_type"]
        if self.loss_type != "CE":
            raise ValueError(f"MISSRec fine-tunes with cross-entropy over all items (loss_type: CE), got {self.loss_type!r}")
        if self.n_layers < 2 or self.n_layers % 2:
            raise ValueError(f"n_layers counts encoder + decoder layers and must be even and >= 2, got {self.n_layers}")
        if not 0 < self.interest_ratio <= 1:
            raise ValueError(f"interest_ratio must be in (0, 1], got {self.interest_ratio}")

        # load dataset info: frozen text features, one row per item (row 0: padding)
        text = torch.as_tensor(dataset.item_text_vectors(), dtype=torch.float32)  # [n_items, D]
        if text.shape[0] != self.n_items:
            raise ValueError(f"item_text_vectors has {text.shape[0]} rows for {self.n_items} items")
        self.register_buffer("text_features", text)
        self.num_interest = max(math.ceil((self.n_items - 1) * self.interest_ratio), 1)  # K
        self.register_buffer("interest_of_item", torch.zeros(self.n_items, dtype=torch.long))  # 0: padding
        self.register_buffer("interest_embeddings", torch.zeros(self.num_interest + 1, self.hidden_size))

        # define layers and loss
        self.text_adaptor = nn.Linear(text.shape[1], self.hidden_size)  # modality adaptor
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        # nn.Transformer's encoder and decoder (post-norm layers, a final LayerNorm each, as the
        # reference), built here to turn off the nested-tensor fast path of the encoder
        layer_args = dict(d_model=self.hidden_size, nhead=self.n_heads, dim_feedforward=self.inner_size,
                          dropout=self.hidden_dropout_prob, activation=self.hidden_act,
                          layer_norm_eps=self.layer_norm_eps, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_args), self.n_layers // 2,
            norm=nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps), enable_nested_tensor=False,
        )  # contextual encoder over interest tokens
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer_args), self.n_layers // 2,
            norm=nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps),
        )  # interest-aware decoder over item tokens
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps)
        self.dropout = nn.Dropout(self.hidden_dropout_prob)
        self.loss_fct = nn.CrossEntropyLoss()

        # parameters initialization
        self.apply(self._init_weights)
        self.discover_interests()

    def _init_weights(self, module):
        """BERT-style initialisation, as RecBole's SASRec and the reference."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def train(self, mode: bool = True):
        """RecBole's trainer calls train() at the start of every epoch: rediscover the interests
        from the current adaptor, as the reference's trainer does before each epoch."""
        super().train(mode)
        if mode:
            self.discover_interests()
        return self

    @torch.no_grad()
    def discover_interests(self):
        """k-means over the adapted text features of the items (not the padding row)."""
        adapted = self.text_adaptor(self.text_features[1:])  # [n_items - 1, d]
        assign, centroids = kmeans(adapted, self.num_interest, self.kmeans_iters)
        self.interest_embeddings[1:] = centroids
        self.interest_of_item[1:] = assign + 1  # 0 stays the padding item's interest

    def item_representations(self, adapted=None) -> torch.Tensor:
        """e_i = normalize(t_i + e^ID_i) for every item: [n_items, d]; ``adapted``: the t_i."""
        adapted = self.text_adaptor(self.text_features) if adapted is None else adapted
        return F.normalize(adapted + self.item_embedding.weight, dim=1)

    def forward(self, item_seq, item_seq_len, adapted=None):
        """(sequence representation [B, d], L2-normalised; diversity regulariser, a scalar).
        The adaptor runs once per item (``adapted``: t_i of every item, when already computed),
        not once per history position; the histories run in groups of similar length, each cut
        to its longest (``model/layers/buckets.py``: no row reads another's positions)."""
        # item_seq: [B, L], item_seq_len: [B]
        adapted = self.text_adaptor(self.text_features) if adapted is None else adapted  # [n_items, d]
        seq_output, diversity = bucketed(lambda seq, lengths: self.encode(seq, lengths, adapted), item_seq, item_seq_len)
        return F.normalize(seq_output, dim=1), diversity.sum()

    def encode(self, item_seq, item_seq_len, adapted):
        """(decoder output at the last history position [B, d], each row's diversity term [B])."""
        # interest tokens and the contextual encoder
        interest_seq = distinct_interests(self.interest_of_item[item_seq], self.num_interest)  # [B, M]
        interest_padding = interest_seq == 0  # [B, M]
        memory = self.encoder(
            self.interest_embeddings[interest_seq], src_key_padding_mask=interest_padding
        )  # [B, M, d]
        diversity = interest_diversity(memory, interest_padding)  # [B]

        # multi-modal item tokens and the interest-aware decoder
        positions = torch.arange(item_seq.shape[1], device=item_seq.device)  # [L]
        tokens = adapted[item_seq] + self.item_embedding(item_seq) + self.position_embedding(positions)  # [B, L, d]
        tokens = self.dropout(self.LayerNorm(tokens))
        seq_output = self.decode_at(tokens, memory, item_seq_len - 1, item_seq == 0, interest_padding)  # [B, d]
        return seq_output, diversity

    def decode_at(self, tokens, memory, positions, tokens_padding, memory_padding):
        """The decoder's output at one position per row, ``decoder(tokens, memory)`` gathered at
        ``positions``: the layers before the last run on every position (the next layer reads them
        all); the last layer computes its query at ``positions`` only, the outputs the reference
        computes there and never reads (post-norm layer of nn.TransformerDecoderLayer)."""
        # tokens: [B, L, d], memory: [B, M, d], positions: [B]
        for layer in self.decoder.layers[:-1]:
            tokens = layer(tokens, memory, tgt_key_padding_mask=tokens_padding, memory_key_padding_mask=memory_padding)
        layer = self.decoder.layers[-1]
        query = self.gather_indexes(tokens, positions).unsqueeze(1)  # [B, 1, d]
        attended = layer.self_attn(query, tokens, tokens, key_padding_mask=tokens_padding, need_weights=False)[0]
        query = layer.norm1(query + layer.dropout1(attended))
        query = layer.norm2(query + layer._mha_block(query, memory, None, memory_padding))
        query = layer.norm3(query + layer._ff_block(query))
        return self.decoder.norm(query.squeeze(1))  # [B, d]

    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]  # [B, L]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]  # [B]
        adapted = self.text_adaptor(self.text_features)  # t_i of every item, once per step: [n_items, d]
        seq_output, diversity = self.forward(item_seq, item_seq_len, adapted)
        logits = seq_output @ self.item_representations(adapted).T / self.temperature  # [B, n_items]
        return self.loss_fct(logits, interaction[self.POS_ITEM_ID]) + self.gamma * diversity

    def predict(self, interaction):
        seq_output, _ = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])  # [B, d]
        items = self.item_representations()[interaction[self.ITEM_ID]]  # [B, d]
        return (seq_output * items).sum(dim=1) / self.temperature  # [B]

    def full_sort_predict(self, interaction):
        adapted = self.text_adaptor(self.text_features)  # [n_items, d]
        seq_output, _ = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], adapted)  # [B, d]
        return seq_output @ self.item_representations(adapted).T / self.temperature  # [B, n_items]
