"""Shared pieces of the trust tests: synthetic round results with given decision reasons."""

from __future__ import annotations

import numpy as np

from ppbfl.defense.decision import DeviceDecision
from ppbfl.protocol.round import RoundResult
from ppbfl.protocol.verification import RoundDecision


def round_result(round: int, reasons: dict[int, str], missing: dict[int, str] | None = None) -> RoundResult:
    """A :class:`RoundResult` whose devices got ``reasons`` (accepted ones cosine 0.5, weight 0.5)."""
    decisions = [
        DeviceDecision(0.5 if r == "accepted" else -0.25, 1, 0.5 if r == "accepted" else 0.0, 1.0, r) for r in reasons.values()
    ]
    m = len(decisions)
    decision = RoundDecision(np.zeros(m, np.uint64), np.zeros(m, np.uint64), decisions, np.zeros(m, np.uint64), 1.0, (), {})
    return RoundResult(round, list(reasons), np.zeros(2), decision, "honest-majority", (1, 2, 3), {}, (), dict(missing or {}))
