"""FLAME's public decision (Nguyen et al., USENIX Security 2022) from a Gram matrix.

FLAME keeps the updates of the majority cluster of their pairwise cosine distances and clips
them to the median L2 norm:

1. cosine distances ``D_ij = 1 - <g_i, g_j> / (||g_i|| ||g_j||)`` (from the Gram matrix
   ``G_ij = <g_i, g_j>``; nothing else is needed);
2. HDBSCAN on ``D`` (``metric="precomputed"``, ``min_cluster_size = m // 2 + 1``,
   ``min_samples = 1``, ``allow_single_cluster=True``; scikit-learn's
   :class:`sklearn.cluster.HDBSCAN`), keep the largest cluster (ties: the lowest label); every
   other update (noise label ``-1`` or a minority cluster) is rejected;
3. clip bound ``S = median(||g_i||)`` over the **kept** updates, per-update factor
   ``c_i = min(1, S / ||g_i||)``; the aggregate is ``sum_kept c_i g_i / |kept|``;
4. (plaintext only, for now) Gaussian noise ``N(0, (lambda S)^2)`` per coordinate on the aggregate.

Deviation from the paper, deliberately: the paper takes the median over all ``m`` distances
(before filtering); the kept cluster's median cannot be moved by the rejected minority.

The same functions decide the plaintext twin (:class:`ppbfl.fl.aggregators.Flame`, Gram of the
float updates) and the secure rule (every edge node, on the Gram matrix opened from shares,
:mod:`ppbfl.protocol.flame_decision`): the clustering is deterministic, so all parties given the
same opened integers reach the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.defense.errors import DefenseParameterError

__all__ = ["OUTSIDE_REASON", "FlameSelection", "cosine_distances", "flame_select"]

OUTSIDE_REASON = "outside majority cluster"
"""The rejection reason of an update FLAME's clustering leaves out."""


@dataclass(frozen=True)
class FlameSelection:
    """FLAME's verdict on ``m`` updates: ``kept`` (sorted indices), ``labels`` ((m,) HDBSCAN labels,
    ``-1`` = noise), ``bound`` (``S``, the kept updates' median norm; 0 if none kept) and
    ``clips`` ((m,) float64 ``min(1, S / ||g_i||)``, 1 where not kept)."""

    kept: tuple[int, ...]
    labels: np.ndarray
    bound: float
    clips: np.ndarray


def cosine_distances(gram: np.ndarray) -> np.ndarray:
    """``1 - G_ij / sqrt(G_ii G_jj)`` of a (m, m) float64 Gram matrix with a positive diagonal,
    clamped to ``[0, 2]`` (zero diagonal), symmetric; (m, m) float64."""
    g = np.asarray(gram, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise DefenseParameterError(f"gram must be a square matrix, got shape {g.shape}")
    diag = np.diag(g)
    if not np.all(np.isfinite(g)) or np.any(diag <= 0):
        raise DefenseParameterError("gram must be finite with a positive diagonal (every update non-zero)")
    norms = np.sqrt(diag)
    cos = np.clip(g / np.outer(norms, norms), -1.0, 1.0)
    distance = 1.0 - (cos + cos.T) / 2.0  # exactly symmetric
    np.fill_diagonal(distance, 0.0)
    return distance


def flame_select(gram: np.ndarray, norms: np.ndarray | None = None) -> FlameSelection:
    """Cluster ``m`` vectors by the cosine distances of their (m, m) float64 Gram matrix and
    return the kept majority cluster and the clip factors (see the module docstring).

    ``norms``: (m,) float64 positive L2 norms of the updates that are clipped; default
    ``sqrt(diag(gram))`` (the clustered vectors are the updates). FLAME on local models
    (:class:`ppbfl.fl.aggregators.FlameModels`) clusters ``G + g_i`` and clips ``g_i``.

    One update is kept as is; two are one cluster unless HDBSCAN calls them noise.

    Raises:
        DefenseParameterError: ``gram`` is not square, finite, with a positive diagonal.
    """
    # imported here: scikit-learn is half of an edge node process's import time, and only rule
    # "flame" needs it
    from sklearn.cluster import HDBSCAN

    distance = cosine_distances(gram)
    m = distance.shape[0]
    if m == 1:
        labels = np.zeros(1, dtype=np.int64)
    else:
        clusterer = HDBSCAN(
            min_cluster_size=max(2, m // 2 + 1), min_samples=1, metric="precomputed", allow_single_cluster=True,
            copy=True,
        )
        labels = np.asarray(clusterer.fit(distance).labels_, dtype=np.int64)
    found, counts = np.unique(labels[labels >= 0], return_counts=True)
    if found.size == 0:
        return FlameSelection((), labels, 0.0, np.ones(m))
    majority = int(found[int(np.argmax(counts))])  # argmax: the lowest label among the largest
    kept = tuple(int(i) for i in np.flatnonzero(labels == majority))
    if norms is None:
        norms = np.sqrt(np.diag(np.asarray(gram, dtype=np.float64)))
    elif np.shape(norms) != (m,) or not np.all(np.asarray(norms) > 0):
        raise DefenseParameterError(f"norms must be ({m},) positive, got shape {np.shape(norms)}")
    norms = np.asarray(norms, dtype=np.float64)
    bound = float(np.median(norms[list(kept)]))
    clips = np.ones(m)
    clips[list(kept)] = np.minimum(1.0, bound / norms[list(kept)])
    return FlameSelection(kept, labels, bound, clips)
