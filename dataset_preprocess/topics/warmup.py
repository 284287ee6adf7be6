"""Compile UMAP's numba code while the sentences are encoded.

A fresh process spends about 50 CPU seconds compiling UMAP and pynndescent (most of it in
pynndescent's NN-descent, whose functions numba does not cache on disk) before the first fit
of all of Instrument starts: a third of the cold path, on one core, after the encoder. Fitting
UMAP, with the same settings, on a few thousand synthetic points in a background thread compiles
the same functions (numba compiles per argument type, not per size) while the encoder's worker
processes keep the cores busy, so the real fit finds them compiled.

The warm-up cannot change the real fit: UMAP and pynndescent draw from random states built from
``random_state`` for each fit, and numba's compiled code is the same whichever fit compiled it
(``tests/preprocess/test_reproducibility.py`` compares a fit after a warm-up with one without).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings

import numpy as np

logger = logging.getLogger(__name__)

# UMAP switches from exact neighbours to pynndescent at 4,096 points: the warm-up takes the same
# side of that line as the real fit, so that it compiles the functions the fit will call.
PYNNDESCENT_FROM = 4096
WARMUP_DIMENSIONS = 32
WARMUP_EPOCHS = 5


class UmapWarmup:
    """Compiles the plain UMAP fit of ``settings`` (:func:`~dataset_preprocess.topics.fit.
    cluster_settings`) for ``n_points`` points in a background thread, started by
    :meth:`before_encoding` when something is to be encoded (with nothing to encode, the fit is
    usually cached and nothing would hide the compilation); the sampled and PCA variants compile
    other functions and are left alone. :meth:`join` waits for it; a failed warm-up only means
    the real fit compiles for itself."""

    def __init__(self, settings: dict, n_points: int):
        self.settings = settings
        self.n_points = PYNNDESCENT_FROM + 100 if n_points >= PYNNDESCENT_FROM else 300
        self.thread: threading.Thread | None = None
        self.seconds: float | None = None
        self.error: BaseException | None = None

    def before_encoding(self, n_to_encode: int) -> None:
        plain = not (self.settings.get("umap_sample") or self.settings.get("pca_components"))
        if plain and n_to_encode > 0 and self.thread is None:
            self.thread = threading.Thread(target=self._compile, name="umap-warmup", daemon=True)
            self.thread.start()

    def _compile(self) -> None:
        start = time.perf_counter()
        try:
            import bertopic  # noqa: F401  (its imports are a few seconds of the cold path too)
            from umap import UMAP

            points = np.random.default_rng(0).standard_normal(
                (self.n_points, WARMUP_DIMENSIONS)).astype(np.float32)
            settings = {**self.settings["umap"], "n_epochs": WARMUP_EPOCHS, "verbose": False}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                UMAP(**settings).fit(points)
        except Exception as error:  # noqa: BLE001 - the real fit reports real problems
            self.error = error
        self.seconds = time.perf_counter() - start

    def join(self) -> None:
        if self.thread is None:
            return
        self.thread.join()
        self.thread = None
        if self.error is not None:
            logger.info("UMAP warm-up failed (%s); the fit compiles for itself", self.error)
        else:
            logger.info("UMAP compiled in the background in %.1f s", self.seconds)
