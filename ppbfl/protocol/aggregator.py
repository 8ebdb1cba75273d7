"""The aggregate combiner: robust reconstruction of the weighted aggregate from the edge nodes' shares.

It also holds every edge node to the public decision: a node whose reported reasons or weights
differ from the combiner's own opening (:func:`~ppbfl.protocol.verification.decide_request` on
the same request) is named, as is any node whose aggregate share robust reconstruction corrects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.errors import PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.messages import AggregateShare
from ppbfl.protocol.round_errors import RoundFailedError
from ppbfl.protocol.verification import RoundDecision
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["Aggregate", "AggregateCombiner"]


@dataclass(frozen=True)
class Aggregate:
    """``update``: float64 (d,) ``sum_i w_i c_i g_i / sum_i w_i`` (zeros if nothing was accepted);
    ``secret``: (d,) uint64 reconstructed ``sum_i enc(w_i c_i) g_i`` (scale ``2^(2f)``);
    ``liars``: edge nodes caught with wrong scalar shares, wrong decisions or wrong aggregate shares."""

    update: np.ndarray
    secret: np.ndarray
    liars: tuple[int, ...]


class AggregateCombiner:
    """Combines the edge nodes' aggregate shares (threshold ``t``) over ``codec``'s field for length-``d`` updates."""

    def __init__(self, t: int, d: int, codec: FixedPointCodec) -> None:
        self.t, self.d, self.codec = t, d, codec

    def combine(self, round: int, replies: dict[int, AggregateShare], decision: RoundDecision) -> Aggregate:
        """Reconstruct round ``round``'s aggregate from ``replies`` (edge node -> its reply).

        Raises:
            RoundFailedError: more wrong aggregate shares than ``floor((k - t) / 2)`` (``k`` replies).
        """
        nodes = tuple(sorted(replies))
        liars = set(decision.wrong_points)
        liars |= {
            j for j in nodes
            if list(replies[j].reasons) != decision.reason_codes or not np.array_equal(replies[j].weights, decision.weights)
        }
        if decision.total_weight <= 0:
            return Aggregate(np.zeros(self.d), np.zeros(self.d, dtype=np.uint64), tuple(sorted(liars)))
        try:
            result = robust_reconstruct(np.stack([replies[j].share for j in nodes]), nodes, self.t, field=self.codec.field)
        except PPBFLError as error:
            raise RoundFailedError(round, f"aggregate reconstruction: {error}") from error
        liars |= set(result.wrong_points)
        update = self.codec.decode(result.secret, scale_power=2) / decision.total_weight
        return Aggregate(update, result.secret, tuple(sorted(liars)))
