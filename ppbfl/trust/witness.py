"""An edge node's own trust computation: the update it will sign, from what it saw itself.

A :class:`TrustWitness` keeps every device's reputation state (as the node signed it round after
round), computes a round's update from the decisions the node itself signed
(:func:`~ppbfl.trust.step.agreed_evidence`: every device without a verified upload counts as
missing) with the same function as the coordinator's keeper (:func:`~ppbfl.trust.step.round_records`),
and returns the :class:`~ppbfl.chain.votes.TrustVote` the node signs (kind 4). ``commitTrust``
needs t such signatures of the same root and words, so the coordinator cannot write a trust the
nodes did not compute.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ppbfl.chain.votes import TrustVote
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.reputation import DeviceTrust, initial_state
from ppbfl.trust.step import agreed_evidence, records_root, round_records

__all__ = ["TrustWitness"]


class TrustWitness:
    """The trust states of ``devices`` (chain ids 0..m-1) as one edge node computes them, under ``config``."""

    def __init__(self, devices: Collection[int], config: TrustConfig) -> None:
        self.config = config
        start = initial_state(config)
        self.states: dict[int, DeviceTrust] = {i: start for i in sorted(devices)}
        self.round = 0
        """The latest round this witness voted on."""

    def vote(self, round: int, decided: Mapping[int, DeviceDecision], commitments: Mapping[int, bytes]) -> TrustVote:
        """Round ``round``'s update from ``decided`` (device -> the decision this node signed) and the
        devices' chain ``commitments``; the states move on. Rounds must come in increasing order.

        Raises:
            ConfigError: ``round`` is not after the last one voted on, or a decision names an unknown
                device or has no reason code.
        """
        if round <= self.round:
            raise ConfigError("round", f"{round} is not after the last trust vote's round {self.round}")
        unknown = sorted(set(decided) - set(self.states))
        if unknown:
            raise ConfigError("decided", f"devices {unknown[:8]} are not registered")
        records = round_records(round, self.states, agreed_evidence(self.states, decided), decided, commitments, self.config)
        self.states = {x.device: x.after for x in records}
        self.round = round
        return TrustVote.of(records_root(records), [x.device for x in records], [x.after.weight_trust for x in records])
