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

A node that missed rounds (offline, restarted, left out as a named liar) would vote from stale
states forever, and its votes would never count again. :meth:`TrustWitness.catch_up` brings it
back: every round after its last one whose trust was anchored on chain is adopted from a copy of
that round's records (anyone's, e.g. the coordinator's store), checked against the chain alone
(:func:`~ppbfl.trust.audit.audit_records`: the leaves fold to the anchored root that t nodes
signed, each record's evidence is the reason the chain agreed, its ``before`` is the node's own
state, its ``after`` the update rule's), so the copy's source need not be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import TrustVote
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.trust.audit import audit_records
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

    def catch_up(self, round: int, chain: RoundsContract, records: Callable[[int], Sequence[TrustRecord]]) -> list[int]:
        """Before voting on ``round``: adopt every round after :attr:`round` and before ``round``
        whose trust ``chain`` anchored, from ``records(r)`` (an untrusted copy of round ``r``'s
        records) once they check against the chain (see the module docstring); stored, and the
        states move on. Rounds without an anchor (failed, or trust not agreed) are skipped.
        Returns the rounds adopted (empty: the witness was not behind).

        Raises:
            ConfigError: key ``records``, naming the first round whose copy does not match the
                chain (that round and later ones are not adopted; the earlier ones are).
        """
        adopted = []
        for r in range(self.round + 1, round):
            state = chain.round_state(r)
            if state.anchor == bytes(32):
                continue
            copy = list(records(r))
            agreed = {x.device_id: x.reason for x in chain.decisions(r)} if state.decisions_hash != bytes(32) else {}
            problems = audit_records(copy, self.states, agreed, state.device_count, state.anchor, self.config)
            if problems:
                raise ConfigError("records", f"round {r}: the copy does not match the chain: {problems[0]}")
            self.store.add_round(r, copy)
            self.states = {**self.states, **{x.device: x.after for x in copy}}
            adopted.append(r)
        return adopted

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
