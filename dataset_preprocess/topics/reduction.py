"""The dimension reduction BERTopic clusters in: UMAP, optionally after PCA and optionally fitted
on a sample of the sentences and applied to the rest.

Both options exist to make the cold path faster (measured in benchmarks/preprocess_speed.py,
docs/PREPROCESSING.md); both are off by default, which is plain UMAP as the paper uses it.
BERTopic calls ``fit(embeddings)`` then ``transform(embeddings)`` on the same array; this
reducer computes the reduced points once in ``fit`` and ``transform`` returns them for that
array (the sampled sentences keep their fitted coordinates, the others are placed by
``UMAP.transform``), while other arrays go through PCA and ``UMAP.transform``.
"""

from __future__ import annotations

import numpy as np


class SampledUMAP:
    """UMAP(``umap_kwargs``) after PCA to ``pca_components`` (0: none), fitted on at most
    ``sample_size`` points (0: all) drawn with ``seed``."""

    def __init__(self, umap_kwargs: dict, sample_size: int = 0, pca_components: int = 0,
                 seed: int = 0):
        self.umap_kwargs = dict(umap_kwargs)
        self.sample_size = sample_size
        self.pca_components = pca_components
        self.seed = seed
        self.pca_ = None
        self.umap_ = None
        self._fitted_on: np.ndarray | None = None
        self.embedding_: np.ndarray | None = None

    def _project(self, X: np.ndarray) -> np.ndarray:
        return X if self.pca_ is None else self.pca_.transform(X).astype(np.float32)

    def fit(self, X, y=None):
        from umap import UMAP

        X = np.asarray(X, dtype=np.float32)
        if self.pca_components and self.pca_components < X.shape[1]:
            from sklearn.decomposition import PCA

            # 'full' SVD: no randomised solver whose result would depend on the BLAS threads.
            self.pca_ = PCA(n_components=self.pca_components, svd_solver="full")
            self.pca_.fit(X)
        projected = self._project(X)
        self.umap_ = UMAP(**self.umap_kwargs)
        if self.sample_size and self.sample_size < len(X):
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(len(X), size=self.sample_size, replace=False))
            rest = np.setdiff1d(np.arange(len(X)), sample)
            self.umap_.fit(projected[sample])
            reduced = np.empty((len(X), self.umap_.embedding_.shape[1]), dtype=np.float32)
            reduced[sample] = self.umap_.embedding_
            reduced[rest] = self.umap_.transform(projected[rest])
        else:
            reduced = np.asarray(self.umap_.fit_transform(projected), dtype=np.float32)
        self._fitted_on = X
        self.embedding_ = reduced
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self._fitted_on is not None and X.shape == self._fitted_on.shape and np.array_equal(
            X, self._fitted_on
        ):
            return self.embedding_
        return np.asarray(self.umap_.transform(self._project(X)), dtype=np.float32)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).embedding_
