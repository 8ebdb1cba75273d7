"""An edge node's own trust computation: the update it will sign, from what it saw itself.

A :class:`TrustWitness` keeps every device's reputation state in the node's own
:class:`~ppbfl.trust.store.TrustStore` (never the coordinator's), computes a round's update from
the decisions the node itself signed (:func:`~ppbfl.trust.step.agreed_evidence`: every device
without a verified upload counts as missing) with the same function as the coordinator's keeper
(:func:`~ppbfl.trust.step.round_records`), stores it, and returns the
:class:`~ppbfl.chain.votes.TrustVote` the node signs (kind 4). ``commitTrust`` needs t such
signatures of the same root and words, so the coordinator cannot write a trust the nodes did not
compute. A round already stored is voted on again from the store (a coordinator that crashed
before relaying asks again; the node's answer does not change).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ppbfl.chain.votes import TrustVote
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.record import TrustRecord
from ppbfl.trust.reputation import DeviceTrust, initial_state
from ppbfl.trust.step import agreed_evidence, round_records
from ppbfl.trust.store import TrustStore

__all__ = ["TrustWitness"]


class TrustWitness:
    """The trust states of ``devices`` (chain ids 0..m-1) as one edge node computes them, under
    ``config``, kept in ``store`` (default: in memory; a node that restarts needs a file or server)."""

    def __init__(self, devices: Collection[int], config: TrustConfig, store: TrustStore | None = None) -> None:
        self.config = config
        self.store = TrustStore() if store is None else store
        start, stored = initial_state(config), self.store.latest_states()
        self.states: dict[int, DeviceTrust] = {i: stored.get(i, start) for i in sorted(devices)}

    @property
    def round(self) -> int:
        """The latest round this witness voted on (0: none)."""
        rounds = self.store.rounds()
        return rounds[-1] if rounds else 0

    def stored_vote(self, round: int) -> TrustVote | None:
        """The vote of ``round`` if this witness already computed it (from its store), else None."""
        if round not in self.store.rounds():
            return None
        return _vote(self.store.root(round), self.store.records(round))

    def vote(self, round: int, decided: Mapping[int, DeviceDecision], commitments: Mapping[int, bytes]) -> TrustVote:
        """Round ``round``'s update from ``decided`` (device -> the decision this node signed) and the
        devices' chain ``commitments``; stored, and the states move on.

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
        root = self.store.add_round(round, records)
        self.states = {x.device: x.after for x in records}
        return _vote(root, records)


def _vote(root: bytes, records: list[TrustRecord]) -> TrustVote:
    return TrustVote.of(root, [x.device for x in records], [x.after.weight_trust for x in records])
