"""Adam that updates only the embedding rows a batch touched (``sparse_embeddings: True``).

With dense embedding gradients every step writes and Adam-updates all m + n rows, a per-batch
cost that grows with the data (benchmarks/scale.py: 1.4 s of CPU per batch at 10^6
interactions). Sparse gradients and torch's SparseAdam (the "lazy Adam" of large embedding
tables) touch only the batch's rows; the other parameters keep plain Adam.
"""

import torch


class LazyAdam:
    """torch.optim.SparseAdam for the parameters with sparse gradients, Adam for the rest,
    behind the one-optimizer interface RecBole's trainer calls."""

    def __init__(self, sparse_params, dense_params, lr: float):
        sparse_params = [p for p in sparse_params if p.requires_grad]
        dense_params = [p for p in dense_params if p.requires_grad]
        self.optimizers = [torch.optim.SparseAdam(sparse_params, lr=lr)]
        if dense_params:
            self.optimizers.append(torch.optim.Adam(dense_params, lr=lr))

    @property
    def param_groups(self):
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True):
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict):
        for optimizer, own in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(own)
