"""Aggregation rules behind one interface: the plaintext baselines and the secure defence.

``Aggregator.aggregate(updates, context) -> (update, info)`` with ``updates: (m, d)`` float
(one row per device), ``context`` an :class:`AggregationContext`, ``update: (d,) float32`` and
``info`` a dict (e.g. the selected rows, trust scores).

Rules: ``fedavg`` (sample-weighted mean), ``krum`` / ``multi_krum`` (Blanchard et al. 2017),
``median`` (coordinate-wise), ``trimmed_mean`` (coordinate-wise, as ``scipy.stats.trim_mean``),
``fltrust`` (Cao et al. 2021: trust ``ReLU(cos(g_i, g_0))``, each update rescaled to
``||g_0||``, where ``g_0`` is the server's update on its clean root set), and ``ppbfl_secure``
(:class:`~ppbfl.fl.secure_aggregator.SecureCosineAggregator`: the same cosine rule on Shamir
shares, DESIGN §5). The interface itself is in :mod:`ppbfl.fl.aggregation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ppbfl.fl.aggregation import AggregationContext, Aggregator
from ppbfl.fl.errors import AggregationError, ConfigError
from ppbfl.fl.registry import build_component
from ppbfl.fl.secure_aggregator import SecureCosineAggregator

__all__ = [
    "AGGREGATORS",
    "AggregationContext",
    "Aggregator",
    "FLTrust",
    "FedAvg",
    "Krum",
    "Median",
    "MultiKrum",
    "SecureCosineAggregator",
    "TrimmedMean",
    "display_name",
    "make_aggregator",
]


class FedAvg(Aggregator):
    """Mean of the updates weighted by ``context.weights`` (uniform when absent)."""

    name = "fedavg"

    def aggregate(self, updates, context):
        u = self._check(updates)
        w = np.ones(len(u)) if context.weights is None else np.asarray(context.weights, dtype=np.float64)
        if w.shape != (len(u),) or np.any(w < 0) or w.sum() <= 0:
            raise AggregationError(f"weights must be ({len(u)},) non-negative with a positive sum")
        return (w @ u / w.sum()).astype(np.float32), {}


@dataclass
class Krum(Aggregator):
    """Krum / Multi-Krum: score each update by the summed squared distance to its ``m - f - 2``
    nearest neighbours; average the ``select`` lowest-scoring updates (Krum: ``select = 1``).
    ``f`` is ``context.n_malicious`` unless ``f`` is set here."""

    select: int = 1
    f: int | None = None
    name = "krum"

    def scores(self, u: np.ndarray, f: int) -> np.ndarray:
        m = len(u)
        sq = np.sum(u * u, axis=1)
        dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * u @ u.T, 0.0)
        k = max(1, m - f - 2)
        k = min(k, m - 1)
        if k <= 0:
            return np.zeros(m)
        return np.array([np.sort(np.delete(dist[i], i))[:k].sum() for i in range(m)])

    def aggregate(self, updates, context):
        u = self._check(updates)
        f = context.n_malicious if self.f is None else self.f
        scores = self.scores(u, f)
        chosen = np.argsort(scores, kind="stable")[: max(1, min(self.select, len(u)))]
        return u[chosen].mean(axis=0).astype(np.float32), {"selected": sorted(int(i) for i in chosen)}


@dataclass
class MultiKrum(Krum):
    """Multi-Krum: average the ``m - f`` best-scoring updates unless ``select`` is given (> 0)."""

    select: int = 0
    name = "multi_krum"

    def aggregate(self, updates, context):
        u = self._check(updates)
        f = context.n_malicious if self.f is None else self.f
        chosen_count = self.select if self.select > 0 else max(1, len(u) - f)
        return Krum(select=chosen_count, f=f).aggregate(u, context)


class Median(Aggregator):
    """Coordinate-wise median."""

    name = "median"

    def aggregate(self, updates, context):
        return np.median(self._check(updates), axis=0).astype(np.float32), {}


@dataclass
class TrimmedMean(Aggregator):
    """Coordinate-wise mean after dropping ``int(beta * m)`` smallest and largest values."""

    beta: float = 0.2
    name = "trimmed_mean"

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 0.5:
            raise ConfigError("defence_params.trimmed_mean.beta", f"must be in [0, 0.5), got {self.beta}")

    def aggregate(self, updates, context):
        u = self._check(updates)
        m = len(u)
        cut = int(self.beta * m)
        s = np.sort(u, axis=0)
        return s[cut : m - cut].mean(axis=0).astype(np.float32), {"trimmed_each_side": cut}


class FLTrust(Aggregator):
    """FLTrust: ``g = sum_i TS_i * (||g0|| / ||g_i||) g_i / sum_i TS_i``, ``TS_i = ReLU(cos(g_i, g0))``.

    ``context.reference`` is ``g0``; if every trust score is 0 the result is the zero update.
    """

    name = "fltrust"
    needs_reference = True

    def aggregate(self, updates, context):
        u = self._check(updates)
        if context.reference is None:
            raise AggregationError("fltrust needs context.reference (the server's root-set update)")
        g0 = np.asarray(context.reference, dtype=np.float64)
        if g0.shape != (u.shape[1],):
            raise AggregationError(f"reference has shape {g0.shape}, updates have d = {u.shape[1]}")
        n0 = np.linalg.norm(g0)
        norms = np.linalg.norm(u, axis=1)
        safe = np.where(norms > 0, norms, 1.0)
        cos = (u @ g0) / (safe * (n0 if n0 > 0 else 1.0))
        trust = np.where(norms > 0, np.maximum(cos, 0.0), 0.0)
        if trust.sum() <= 0:
            return np.zeros(u.shape[1], dtype=np.float32), {"trust": trust.tolist()}
        scaled = u * (n0 / safe)[:, None]
        return (trust @ scaled / trust.sum()).astype(np.float32), {"trust": trust.tolist()}


AGGREGATORS: dict[str, type[Aggregator]] = {
    "fedavg": FedAvg, "krum": Krum, "multi_krum": MultiKrum, "median": Median,
    "trimmed_mean": TrimmedMean, "fltrust": FLTrust, "ppbfl_secure": SecureCosineAggregator,
}


def display_name(name: str) -> str:
    """The label of defence ``name`` in tables and plots (its ``display_name``, else the key)."""
    cls = AGGREGATORS.get(name)
    return (cls.display_name if cls is not None else None) or name


def make_aggregator(name: str, params: dict[str, Any] | None = None) -> Aggregator:
    """Build an aggregation rule by name with keyword ``params`` (bad keys raise ConfigError)."""
    return build_component("defence", "defence_params", AGGREGATORS, name, params)
