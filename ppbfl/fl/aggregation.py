"""The aggregation interface every defence implements (plaintext baselines and the secure one).

``Aggregator.aggregate(updates, context) -> (update, info)`` with ``updates: (m, d)`` float
(one row per device), ``context`` an :class:`AggregationContext`, ``update: (d,) float32`` and
``info`` a dict (e.g. the selected rows, trust scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppbfl.fl.errors import AggregationError

__all__ = ["AggregationContext", "Aggregator"]


@dataclass
class AggregationContext:
    """What a rule may use besides the updates.

    ``weights: (m,)`` sample counts (FedAvg), ``n_malicious``: the assumed number of Byzantine
    devices ``f`` (Krum), ``reference: (d,)`` the server's root-set update (FLTrust and the secure
    defence), ``seed`` / ``round``: the experiment seed and round index (None: not reproducible;
    the secure defence then draws its randomness from the OS CSPRNG).
    """

    weights: np.ndarray | None = None
    n_malicious: int = 0
    reference: np.ndarray | None = None
    seed: int | None = None
    round: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Aggregator:
    """Base class of aggregation rules.

    ``name`` is the registry key (used in configs and ``results.csv``); ``display_name`` the label
    in Markdown tables and plots (the key when None); ``needs_reference``: the runner computes the
    root-set reference update for this rule.
    """

    name = "base"
    display_name: str | None = None
    needs_reference = False

    def aggregate(self, updates: np.ndarray, context: AggregationContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Combine ``updates`` ((m, d) float) into one (d,) float32 update; returns ``(update, info)``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the rule holds between rounds (a rule with none does nothing)."""

    @staticmethod
    def _check(updates: np.ndarray) -> np.ndarray:
        updates = np.asarray(updates, dtype=np.float64)
        if updates.ndim != 2 or updates.shape[0] < 1:
            raise AggregationError(f"updates must be (m, d) with m >= 1, got shape {updates.shape}")
        return updates
