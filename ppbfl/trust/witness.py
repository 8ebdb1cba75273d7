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

An edge *process* has no chain client: :meth:`TrustWitness.adopt` takes a missed round's records
with the ``t`` kind-4 signatures ``commitTrust`` took, checked against the registered edge
accounts its operator gave it (:class:`~ppbfl.trust.catchup.TrustSigners`), and the same rule
checks. A relayed round that differs from one the node stored (it voted from stale states)
replaces it and every later one: the node is repaired, and its later rounds come again.

IDS flags enter a vote only as the edge nodes' signed reports (:mod:`ppbfl.trust.ids_reports`),
checked against the same registered accounts and t (:attr:`TrustWitness.signers`) and combined
by the rule every node computes; a node that signed a report of its own (:attr:`TrustWitness.reported`)
refuses a set without it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from ppbfl.chain.merkle import root_of_leaves
from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.trust.audit import audit_records
from ppbfl.trust.catchup import TrustSigners, records_from_rows
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.ids_reports import IdsReport, IdsSensors, with_ids_flags
from ppbfl.trust.record import TrustRecord, record_leaves
from ppbfl.trust.reputation import DeviceTrust, initial_state
from ppbfl.trust.step import agreed_evidence, round_records
from ppbfl.trust.store import TrustStore

__all__ = ["TrustWitness"]


class TrustWitness:
    """The trust states of ``devices`` (chain ids 0..m-1) as one edge node computes them, under
    ``config``, kept in ``store`` (default: in memory; a node that restarts needs a file or server).
    ``signers``: the registered edge accounts and t, from the node's operator (None: the node
    adopts no relayed round, :meth:`adopt`)."""

    def __init__(self, devices: Collection[int], config: TrustConfig, store: TrustStore | None = None,
                 signers: TrustSigners | None = None) -> None:
        self.config = config
        self.signers = signers
        self.store = TrustStore() if store is None else store
        start, stored = initial_state(config), self.store.latest_states()
        self.states: dict[int, DeviceTrust] = {i: stored.get(i, start) for i in sorted(devices)}
        self.reported: dict[int, IdsReport] = {}
        """Round -> the IDS report this node signed for it (its vote needs it among the relayed ones)."""

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

    def catch_up(
        self, round: int, chain: RoundsContract, records: Callable[[int], Sequence[TrustRecord]], *, repair: bool = False,
    ) -> list[int]:
        """Before voting on ``round``: adopt every round after :attr:`round` and before ``round``
        whose trust ``chain`` anchored, from ``records(r)`` (an untrusted copy of round ``r``'s
        records) once they check against the chain (see the module docstring); stored, and the
        states move on. Rounds without an anchor (failed, or trust not agreed) are skipped.
        ``repair``: first compare every stored round's root with its anchor (one chain read per
        stored round) and, from the first that differs, replace the stored rounds (e.g. the node
        voted from stale states, so its vote did not count). Returns the rounds adopted (empty:
        the witness was not behind).

        Raises:
            ConfigError: key ``records``, naming the first round whose copy does not match the
                chain (that round and later ones are not adopted; the earlier ones are).
        """
        stored = self.store.rounds()
        start, replace = self.round + 1, False
        if repair:
            diverged = [r for r in stored if chain.round_state(r).anchor not in (bytes(32), self.store.root(r))]
            if diverged:
                start, replace = diverged[0], True
                earlier = [r for r in stored if r < start]
                base = {i: initial_state(self.config) for i in self.states}
                self.states = base | ({x.device: x.after for x in self.store.records(earlier[-1])} if earlier else {})
        adopted = []
        for r in range(start, round):
            state = chain.round_state(r)
            if state.anchor == bytes(32):
                continue
            copy = list(records(r))
            agreed = {x.device_id: x.reason for x in chain.decisions(r)} if state.decisions_hash != bytes(32) else {}
            problems = audit_records(copy, self.states, agreed, state.device_count, state.anchor, self.config, refused=set(chain.pow_refusals(r)))
            if problems:
                raise ConfigError("records", f"round {r}: the copy does not match the chain: {problems[0]}")
            self.store.add_round(r, copy, replace=replace)
            replace = False
            self.states = {**self.states, **{x.device: x.after for x in copy}}
            adopted.append(r)
        return adopted

    def adopt(self, round: int, rows: Sequence[bytes], signatures: Sequence[bytes], context: ChainContext) -> bool:
        """Adopt round ``round`` from its records as leaf ``rows`` (one per registered device) and
        the kind-4 ``signatures`` of their vote in ``context`` (see the module docstring). A round
        already stored with the same root changes nothing (returns False); one stored with
        another root, or earlier than the latest stored round, replaces the stored rounds from
        ``round`` on (the node's later votes came from states without it). Returns True when adopted.

        Raises:
            ConfigError: key ``trust_signers``: the witness has no registered edge accounts;
                ``records``: rows malformed, not one per registered device, of another round, or
                a ``before`` / ``after`` that is not the node's previous state / the update rule's;
                ``signatures``: fewer than t valid distinct registered signers of these records.
                Nothing is adopted then.
        """
        if self.signers is None:
            raise ConfigError("trust_signers", "no registered edge accounts given: a relayed round cannot be checked")
        records = records_from_rows(rows, round, self.states)
        root = root_of_leaves([leaf.tobytes() for leaf in record_leaves(sorted(records, key=lambda x: x.device))])
        self.signers.check(_vote(root, records), signatures, context, round)
        stored = self.store.rounds()
        if round in stored and self.store.root(round) == root:
            return False
        earlier = [r for r in stored if r < round]
        start = initial_state(self.config)
        previous = {i: start for i in self.states} | ({x.device: x.after for x in self.store.records(earlier[-1])} if earlier else {})
        agreed = {x.device: x.evidence.reason for x in records}  # vouched for by the t signers, not checked here
        problems = audit_records(records, previous, agreed, len(self.states), root, self.config)
        if problems:
            raise ConfigError("records", f"round {round}: {problems[0]}")
        replace = bool(stored) and stored[-1] >= round
        self.store.add_round(round, records, replace=replace)
        self.states = {**previous, **{x.device: x.after for x in records}}
        return True

    def behind(self, previous: int) -> bool:
        """Whether anchored round ``previous`` (the relay's word) is after this witness's latest round."""
        return self.round < previous

    def vote(
        self, round: int, decided: Mapping[int, DeviceDecision], commitments: Mapping[int, bytes], refused: Collection[int] = (), *,
        ids_reports: Sequence[IdsReport] = (), context: ChainContext | None = None,
    ) -> TrustVote:
        """Round ``round``'s update from ``decided`` (device -> the decision this node signed), the
        devices' chain ``commitments``, PoW ``refused`` devices (the relay's copy of the chain's
        record: the vote covers them, and ``commitTrust`` takes it only if they are the
        contract's) and the edge nodes' signed ``ids_reports`` of the round
        (checked for ``context`` and combined, :meth:`~ppbfl.trust.ids_reports.IdsSensors.combine`);
        stored, and the states move on.

        Raises:
            ConfigError: ``round`` is not after the last one voted on, or a decision or refusal names an
                unknown device, or a decision has no reason code; key ``trust_signers`` / ``context``: reports without
                registered edge accounts or a context; IdsReportError, ConfigError(``ids_reports``):
                a report refused, too few, or this node's own left out. Nothing is stored then.
        """
        if round <= self.round:
            raise ConfigError("round", f"{round} is not after the last trust vote's round {self.round}")
        unknown = sorted(set(decided) - set(self.states))
        if unknown:
            raise ConfigError("decided", f"devices {unknown[:8]} are not registered")
        flags = self._ids_flags(round, ids_reports, context)
        evidence = with_ids_flags(agreed_evidence(self.states, decided, refused), flags)
        records = round_records(round, self.states, evidence, decided, commitments, self.config)
        root = self.store.add_round(round, records)
        self.states = {x.device: x.after for x in records}
        self.reported = {r: x for r, x in self.reported.items() if r > round}
        return _vote(root, records)

    def _ids_flags(self, round: int, reports: Sequence[IdsReport], context: ChainContext | None) -> dict[int, int]:
        """The agreed IDS flags of ``round`` from the relayed ``reports`` (none and no own report: none)."""
        own = self.reported.get(round)
        if not reports and own is None:
            return {}
        if self.signers is None:
            raise ConfigError("trust_signers", "no registered edge accounts given: IDS reports cannot be checked")
        if context is None:
            raise ConfigError("context", "IDS reports are checked for a contract and chain: none given")
        return IdsSensors.of(self.signers).combine(reports, context, round, len(self.states), own=own)


def _vote(root: bytes, records: list[TrustRecord]) -> TrustVote:
    refused = [x.device for x in records if x.evidence.pow_failed]
    return TrustVote.of(root, [x.device for x in records], [x.after.weight_trust for x in records], refused)
