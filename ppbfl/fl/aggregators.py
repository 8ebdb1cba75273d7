"""Aggregation rules behind one interface: the plaintext baselines and the secure defence.

``Aggregator.aggregate(updates, context) -> (update, info)`` with ``updates: (m, d)`` float
(one row per device), ``context`` an :class:`AggregationContext`, ``update: (d,) float32`` and
``info`` a dict (e.g. the selected rows, trust scores).

Rules: ``fedavg`` (sample-weighted mean), ``krum`` / ``multi_krum`` (Blanchard et al. 2017),
``median`` (coordinate-wise), ``trimmed_mean`` (coordinate-wise, as ``scipy.stats.trim_mean``),
``fltrust`` (Cao et al. 2021: trust ``ReLU(cos(g_i, g_0))``, each update rescaled to
``||g_0||``, where ``g_0`` is the server's update on its clean root set), ``flame`` (Nguyen et
al. 2022: HDBSCAN on pairwise cosine distances, median-norm clipping, Gaussian noise;
:mod:`ppbfl.defense.flame`), ``flame_models`` (the same, clustering the local models ``G + g_i`` as
in the paper), ``fltrust_clipped`` (FLTrust clipping instead of rescaling: the twin of
``ppbfl_secure``), ``ppbfl_secure``
(:class:`~ppbfl.fl.secure_aggregator.SecureCosineAggregator`: the same cosine rule on Shamir
shares, DESIGN §5) and ``ppbfl_flame`` (:class:`~ppbfl.fl.secure_aggregator.SecureFlameAggregator`:
FLAME's clustering and clipping on Shamir shares, driven by the protocol; ``ppbfl_flame_models``
the same on the local models, the twin of ``flame_models``). The interface itself is in :mod:`ppbfl.fl.aggregation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ppbfl.defense.errors import DefenseParameterError
from ppbfl.defense.flame import OUTSIDE_REASON, flame_select
from ppbfl.fl.aggregation import AggregationContext, Aggregator
from ppbfl.fl.errors import AggregationError, ConfigError
from ppbfl.fl.registry import build_component
from ppbfl.fl.secure_aggregator import GLOBAL_MODEL, SecureCosineAggregator, SecureFlameAggregator, SecureFlameModelsAggregator

__all__ = [
    "AGGREGATORS",
    "AggregationContext",
    "Aggregator",
    "FLTrust",
    "FLTrustClipped",
    "FedAvg",
    "Flame",
    "FlameModels",
    "GLOBAL_MODEL",
    "Krum",
    "Median",
    "MultiKrum",
    "SecureCosineAggregator",
    "SecureFlameAggregator",
    "SecureFlameModelsAggregator",
    "SecureRescaledAggregator",
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


@dataclass
class FLTrust(Aggregator):
    """FLTrust: ``g = sum_i TS_i * (||g0|| / ||g_i||) g_i / sum_i TS_i``, ``TS_i = ReLU(cos(g_i, g0))``.

    ``context.reference`` is ``g0``; if every trust score is 0 the result is the zero update.

    Args (``[defence_params.fltrust]``):
        rescale: True (default, the paper): every update is scaled to ``||g0||``; False: only
            clipped, ``min(1, ||g0|| / ||g_i||)`` -- the plaintext twin of ``ppbfl_secure``'s default
            (``ppbfl_secure`` with ``rescale = true`` is the secure twin of the default).
    """

    rescale: bool = True
    name = "fltrust"
    needs_reference = True

    def __post_init__(self) -> None:
        if not isinstance(self.rescale, bool):
            raise ConfigError("defence_params.fltrust.rescale", f"must be true or false, got {self.rescale!r}")

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
        factor = n0 / safe if self.rescale else np.minimum(1.0, n0 / safe)
        scaled = u * factor[:, None]
        return (trust @ scaled / trust.sum()).astype(np.float32), {"trust": trust.tolist()}


@dataclass
class FLTrustClipped(FLTrust):
    """FLTrust that clips instead of rescaling (``min(1, ||g0|| / ||g_i||)``): the plaintext twin of
    ``ppbfl_secure``'s default, under its own registry key so that a grid holds both FLTrusts."""

    rescale: bool = False
    name = "fltrust_clipped"
    display_name = "FLTrust (clipped)"

    def __post_init__(self) -> None:
        if self.rescale is not False:
            raise ConfigError("defence_params.fltrust_clipped.rescale", f"is this rule's point (use fltrust to rescale); got {self.rescale!r}")


@dataclass
class Flame(Aggregator):
    """FLAME (Nguyen et al., USENIX Security 2022) in floats: the plaintext twin of ``ppbfl_flame``.

    Keeps HDBSCAN's majority cluster of the pairwise cosine distances, clips the kept updates to
    their median L2 norm ``S`` and averages them (:func:`ppbfl.defense.flame.flame_select`), then
    adds Gaussian noise ``N(0, (noise_lambda * S)^2)`` to every coordinate of the average.

    Args (``[defence_params.flame]``):
        noise_lambda: the noise level ``lambda`` (>= 0; default 0.001, the paper's value for image
            classification, ``(1 / eps) sqrt(2 ln(1.25 / delta))`` at its ``eps = 3705``; 0: no noise).
        seed: seed of the noise generator, combined with the experiment seed and round from the
            context (reproducible runs); None: OS entropy.

    ``info``: ``weights`` (m floats: the clip factor of a kept update, 0 otherwise), ``accepted``,
    ``reasons`` (m strings), ``labels`` (HDBSCAN's), ``clip_bound`` (``S``) and ``noise_std``.
    A zero update cannot be clustered by cosine: it is rejected ("zero norm") before clustering.
    """

    noise_lambda: float = 0.001
    seed: int | None = 0
    name = "flame"
    display_name = "FLAME"
    key: ClassVar[str] = "defence_params.flame"

    def __post_init__(self) -> None:
        lam = self.noise_lambda
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam < np.inf:
            raise ConfigError(f"{self.key}.noise_lambda", f"must be a finite number >= 0, got {lam!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"{self.key}.seed", f"must be a non-negative integer or absent, got {self.seed!r}")

    def aggregate(self, updates, context):
        u = self._check(updates)
        if not np.all(np.isfinite(u)):
            raise AggregationError("flame: updates must be finite")
        m, d = u.shape
        norms = np.linalg.norm(u, axis=1)
        reasons = ["zero norm" if x == 0 else self._unclustered(u[i], context) for i, x in enumerate(norms)]
        live = np.flatnonzero([why is None for why in reasons])
        weights = np.zeros(m)
        if live.size == 0:
            return np.zeros(d, dtype=np.float32), {"weights": weights.tolist(), "accepted": [], "reasons": reasons,
                                                   "labels": [-1] * m, "clip_bound": 0.0, "noise_std": 0.0}
        try:
            selection = flame_select(self._clustered(u[live], context), norms[live])
        except DefenseParameterError as error:
            raise AggregationError(f"{self.name}: {error}") from error
        labels = np.full(m, -1)
        labels[live] = selection.labels
        kept = [int(live[k]) for k in selection.kept]
        for k, i in enumerate(live):
            reasons[i] = "accepted" if k in selection.kept else OUTSIDE_REASON
            weights[i] = selection.clips[k] if k in selection.kept else 0.0
        aggregate = weights[kept] @ u[kept] / len(kept) if kept else np.zeros(d)
        std = float(self.noise_lambda) * selection.bound
        if std > 0:
            entropy = None if self.seed is None else [self.seed, context.seed or 0, context.round]
            aggregate = aggregate + np.random.default_rng(entropy).normal(0.0, std, size=d)
        info = {"weights": weights.tolist(), "accepted": kept, "reasons": reasons, "labels": labels.tolist(),
                "clip_bound": selection.bound, "noise_std": std}
        return aggregate.astype(np.float32), info

    def _clustered(self, live: np.ndarray, context: AggregationContext) -> np.ndarray:
        """The (k, k) float64 Gram matrix HDBSCAN clusters, of the non-zero updates ``live: (k, d)``."""
        return live @ live.T

    def _unclustered(self, update: np.ndarray, context: AggregationContext) -> str | None:
        """Why a non-zero (d,) update cannot be clustered (None: it can)."""
        return None


@dataclass
class FlameModels(Flame):
    """FLAME clustering the local **models** ``W_i = G + g_i`` (the paper's Algorithm 1) instead of
    the updates: ``<W_i, W_j> = ||G||^2 + <G, g_i> + <G, g_j> + <g_i, g_j>``. Clipping (to the kept
    updates' median norm) and noise are :class:`Flame`'s. ``G`` is ``context.extra[GLOBAL_MODEL]``
    ((d,) float). Parameters under ``[defence_params.flame_models]``; plaintext only.
    """

    name = "flame_models"
    display_name = "FLAME (models)"
    key: ClassVar[str] = "defence_params.flame_models"

    def _clustered(self, live: np.ndarray, context: AggregationContext) -> np.ndarray:
        model = context.extra.get(GLOBAL_MODEL)
        if model is None:
            raise AggregationError(f"{self.name} needs context.extra[{GLOBAL_MODEL!r}] (the global model)")
        g = np.asarray(model, dtype=np.float64)
        if g.shape != (live.shape[1],):
            raise AggregationError(f"{self.name}: global model has shape {g.shape}, updates have d = {live.shape[1]}")
        at = live @ g
        return float(g @ g) + at[:, None] + at[None, :] + live @ live.T

    def _unclustered(self, update: np.ndarray, context: AggregationContext) -> str | None:
        """A local model ``G + g_i = 0`` has no cosine: rejected as the secure rule does."""
        model = context.extra.get(GLOBAL_MODEL)
        if model is not None and np.shape(model) == update.shape and not np.any(np.asarray(model, dtype=np.float64) + update):
            return "zero norm: the local model G + g is zero"
        return None


@dataclass
class SecureRescaledAggregator(SecureCosineAggregator):
    """``ppbfl_secure`` with FLTrust's norm rescaling on (registry key ``ppbfl_secure_rescaled``, its
    parameters under ``[defence_params.ppbfl_secure_rescaled]``): a grid can hold both variants.
    Its plaintext twin is ``fltrust``."""

    rescale: bool = True
    name = "ppbfl_secure_rescaled"
    display_name = "ppbfl (secure, rescaled)"
    key: ClassVar[str] = "defence_params.ppbfl_secure_rescaled"

    def __post_init__(self) -> None:
        if self.rescale is not True:
            raise ConfigError(f"{self.key}.rescale", f"is this rule's point (use ppbfl_secure to clip only); got {self.rescale!r}")
        super().__post_init__()


AGGREGATORS: dict[str, type[Aggregator]] = {
    "fedavg": FedAvg, "krum": Krum, "multi_krum": MultiKrum, "median": Median,
    "trimmed_mean": TrimmedMean, "fltrust": FLTrust, "fltrust_clipped": FLTrustClipped, "flame": Flame,
    "flame_models": FlameModels, "ppbfl_secure": SecureCosineAggregator,
    "ppbfl_flame": SecureFlameAggregator, "ppbfl_secure_rescaled": SecureRescaledAggregator,
    "ppbfl_flame_models": SecureFlameModelsAggregator,
}


def display_name(name: str) -> str:
    """The label of defence ``name`` in tables and plots (its ``display_name``, else the key)."""
    cls = AGGREGATORS.get(name)
    return (cls.display_name if cls is not None else None) or name


def make_aggregator(name: str, params: dict[str, Any] | None = None) -> Aggregator:
    """Build an aggregation rule by name with keyword ``params`` (bad keys raise ConfigError)."""
    return build_component("defence", "defence_params", AGGREGATORS, name, params)
