"""The per-round trust step a harness calls after each round: update, store, anchor, set PoW.

:class:`TrustKeeper` holds the reputation states (resumed from the store), gives the round the
trust to weight devices with (:meth:`TrustKeeper.round_trust`, 0 for quarantined devices), and
after the round (:meth:`TrustKeeper.after_round`) turns its public record into evidence, updates
every device, writes the records and their Merkle root to the store, and -- with a chain -- sends
one ``commitTrust`` transaction that anchors the root and sets the new trust, from which the
contract derives each device's PoW difficulty for the next round (``setPowRange`` is sent once,
when the keeper is made). With a chain the update is not the keeper's word: it uses only the
evidence every edge node sees itself (:func:`~ppbfl.trust.step.agreed_evidence`), asks each edge
node (``voters``) for its own update and kind-4 signature, and the contract accepts the root and
words only with t signatures of exactly them. A node that missed anchored rounds catches up
before it votes: in process from this keeper's store checked against the chain
(:meth:`~ppbfl.trust.witness.TrustWitness.catch_up`), an edge process from the rounds relayed with
the signatures ``commitTrust`` took (:attr:`TrustKeeper.signatures`, :mod:`ppbfl.trust.catchup`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.errors import ConfigError, PPBFLError
from ppbfl.protocol.edge_node import EdgeNode
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.round import RoundResult
from ppbfl.protocol.trust_voter import RemoteTrustVoter
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.committed import committed_signatures
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.evidence import round_evidence
from ppbfl.trust.ids_reports import IdsReport, IdsSensors, with_ids_flags
from ppbfl.trust.record import TrustRecord
from ppbfl.trust.reputation import TRUST_ONE, DeviceTrust, initial_state
from ppbfl.trust.step import agreed_evidence, round_records
from ppbfl.trust.store import TrustStore
from ppbfl.trust.witness import TrustWitness

__all__ = ["RoundTrust", "TrustKeeper", "TrustVoter"]


class TrustVoter(Protocol):
    """An edge node as the keeper asks it for its trust vote: in process
    (:meth:`~ppbfl.protocol.edge_node.EdgeNode.trust_vote`) or through the coordinator's transport
    (:class:`~ppbfl.protocol.trust_voter.RemoteTrustVoter`)."""

    def trust_vote(
        self, round: int, context: ChainContext, commitments: Mapping[int, bytes], refused: Collection[int] = (), *,
        ids_reports: Sequence[IdsReport] = (),
    ) -> tuple[TrustVote, bytes]:
        """The node's own update of ``round`` (``refused``: the round's PoW refusals on chain; with
        the edge nodes' signed ``ids_reports``) and its kind-4 signature."""
        ...


@dataclass(frozen=True)
class RoundTrust:
    """What :meth:`TrustKeeper.after_round` did: the stored ``root``, the ``records``, devices now
    ``quarantined``, and the gas of the ``commitTrust`` transaction (0 without a chain)."""

    round: int
    root: bytes
    records: tuple[TrustRecord, ...]
    quarantined: tuple[int, ...]
    gas: int

    def trust(self, device: int) -> float:
        """Reputation of ``device`` after the round (float in [0, 1])."""
        return next(x.after.trust for x in self.records if x.device == device) / TRUST_ONE


class TrustKeeper:
    """Reputation of ``devices`` kept in ``store`` (and on chain with ``ledger``).

    Args:
        devices: the device indices of the federation.
        config: the model's parameters.
        store: the off-chain store (resumed: devices with records start from their latest state).
        ledger: the chain ledger of the rounds (None: no anchoring, no on-chain PoW).
        voters: with a ledger, the edge nodes whose signatures commit the update (in-process
            :class:`~ppbfl.protocol.edge_node.EdgeNode` or
            :class:`~ppbfl.protocol.trust_voter.RemoteTrustVoter`; in-process nodes without a :class:`~ppbfl.trust.witness.TrustWitness` get a fresh one, from the
            model's initial state and the ledger's registered edge accounts and t, against which
            it checks relayed IDS reports: a node's states are its own, never the keeper's store).
    """

    def __init__(self, devices: Collection[int], config: TrustConfig | None = None, *, store: TrustStore | None = None,
                 ledger: ChainLedger | None = None, voters: Sequence[TrustVoter] = ()) -> None:
        self.config = TrustConfig() if config is None else config
        self.store = TrustStore() if store is None else store
        self.ledger = ledger
        start = initial_state(self.config)
        stored = self.store.latest_states()
        self.states: dict[int, DeviceTrust] = {i: stored.get(i, start) for i in sorted(devices)}
        self.last: RoundTrust | None = None
        """What the latest :meth:`after_round` did."""
        self.voters = tuple(voters)
        self._disagreed: dict[int, int] = {}  # voter index -> the round its latest vote was not the agreed one of
        self.signatures: dict[int, tuple[bytes, ...]] = {}
        """Round -> the kind-4 signatures its ``commitTrust`` took (this keeper's rounds; relayed
        to a node process that missed the round)."""
        self._made: list[TrustWitness] = []  # the in-process witnesses made here (their signers: the ledger's edge accounts)
        for voter in self.voters:  # an in-process node without its own witness (a remote node brings its own)
            if isinstance(voter, EdgeNode) and voter.trust_witness is None:
                voter.trust_witness = TrustWitness(self.states, self.config, signers=self._signers())
                self._made.append(voter.trust_witness)
        if ledger is not None:
            ledger.contract.set_pow_range(self.config.pow_min_bits, self.config.pow_max_bits, self.config.q15(self.config.pow_full_trust))

    def round_trust(self) -> dict[int, float]:
        """Device -> the trust the next round weights it with (Q1.15 as a float; 0 in quarantine)."""
        return {i: s.weight_trust / TRUST_ONE for i, s in self.states.items()}

    def reputation(self) -> dict[int, float]:
        """Device -> its reputation now (float in [0, 1]; quarantined devices keep theirs)."""
        return {i: s.trust / TRUST_ONE for i, s in self.states.items()}

    @property
    def quarantined(self) -> tuple[int, ...]:
        """Devices in quarantine now."""
        return tuple(i for i, s in self.states.items() if s.quarantined)

    def after_round(
        self, result: RoundResult, *, pow_failures: Collection[int] = (), ids_flags: Mapping[int, int] | None = None,
        ids_reports: Sequence[IdsReport] = (),
    ) -> RoundTrust:
        """Update, store and (with a ledger) anchor round ``result.round``.

        ``pow_failures``: devices whose stamp the contract refused (also taken from ``result.missing``
        reasons naming ``PowRefusedError``); ``ids_flags``: device -> anomaly flags from the IDS.
        With a ledger the refusals are read from the chain (``powRefusals``: the devices' own
        signed transactions recorded them; the nodes' votes cover them and ``commitTrust`` checks
        them against the contract's record), so explicit ones are refused, as are bare IDS flags
        (the coordinator's word). IDS flags enter the agreed update as ``ids_reports``: the edge
        nodes' signed reports of the round (:mod:`ppbfl.trust.ids_reports`), checked and combined
        here and by every voter.

        Raises:
            ConfigError: as :func:`~ppbfl.trust.evidence.round_evidence`, or ``pow_failures`` /
                ``ids_flags`` given with a ledger, or ``ids_reports`` without one;
            IdsReportError, ConfigError(``ids_reports``): a report refused, or too few (nothing
                stored); TrustStoreError: the round is already stored;
            ChainRevertError: the contract refused the commitment (``TrustNotAgreed``: fewer than
                t edge nodes signed these root and words).
        """
        decided = dict(zip(result.devices, result.decision.decisions))
        if self.ledger is None:
            if ids_reports:
                raise ConfigError("ids_reports", "signed IDS reports are checked against the chain's edge accounts: the keeper has no ledger")
            refused = set(pow_failures) | {i for i, why in result.missing.items() if "PowRefusedError" in why}
            evidence = round_evidence(result, pow_failures=refused, ids_flags=ids_flags)
            commitments: dict[int, bytes] = {}
        else:
            if pow_failures:
                raise ConfigError("pow_failures", "with a ledger the PoW refusals are the chain's record (powRefusals), not the caller's")
            if any(ids_flags.values() if ids_flags else ()):
                raise ConfigError("ids_flags", "PoW refusals and IDS flags are no edge node's observation: not part of the agreed update")
            evidence = with_ids_flags(agreed_evidence(self.states, decided, self.ledger.pow_refusals(result.round)), self._ids_flags(result.round, ids_reports))
            commitments = self.ledger.commitments(result.round, self.states)
        records = round_records(result.round, self.states, evidence, decided, commitments, self.config)
        self.states.update({x.device: x.after for x in records})
        root = self.store.add_round(result.round, records)
        gas = 0
        if self.ledger is not None:
            gas = self.commit(result.round, root, records, commitments, ids_reports=ids_reports)
        self.last = RoundTrust(result.round, root, tuple(records), self.quarantined, gas)
        return self.last

    def commit(
        self, round: int, root: bytes, records: Sequence[TrustRecord], commitments: Mapping[int, bytes], *,
        ids_reports: Sequence[IdsReport] = (),
    ) -> int:
        """Relay ``commitTrust`` of ``round``'s ``root`` and trust words with the signatures of the
        voters whose own update is exactly these (a voter that refuses with a typed error, e.g. a
        node that took no part in the round, is left out); returns its gas. ``ids_reports``: the
        round's signed IDS reports, relayed to every voter. An in-process node whose
        witness missed anchored rounds first adopts them from this keeper's store, checked against
        the chain (:meth:`~ppbfl.trust.witness.TrustWitness.catch_up`); an edge process behind the
        latest anchored round is relayed the rounds it missed with the signatures this keeper
        committed them with (:meth:`~ppbfl.protocol.trust_voter.RemoteTrustVoter.trust_vote`); so it votes again.

        Raises:
            ConfigError: no ledger; ChainRevertError: the contract refused (``TrustNotAgreed``: fewer
                than t voters computed the same update).
        """
        if self.ledger is None:
            raise ConfigError("ledger", "the keeper has no chain to commit trust to")
        ids = [self.ledger.device_ids[x.device] for x in records]
        refused = [self.ledger.device_ids[x.device] for x in records if x.evidence.pow_failed]
        mine = TrustVote.of(root, ids, [x.after.weight_trust for x in records], refused)
        pow_failed = [x.device for x in records if x.evidence.pow_failed]  # what the voters count (device indices)
        signatures = []
        previous = self._previous_anchored(self.ledger.contract, round)
        for k, voter in enumerate(self.voters):
            try:
                witness = getattr(voter, "trust_witness", None)
                if isinstance(witness, TrustWitness):  # an in-process node that missed rounds catches up first
                    witness.catch_up(round, self.ledger.contract, self.store.records, repair=k in self._disagreed)
                if isinstance(voter, RemoteTrustVoter):  # a process: relayed rounds it checks against t signatures
                    self._relay_disagreed(k, voter)
                    vote, signature = voter.trust_vote(
                        round, self.ledger.context, commitments, pow_failed, previous=previous, missed=self._missed, ids_reports=ids_reports,
                    )
                else:
                    vote, signature = voter.trust_vote(round, self.ledger.context, commitments, pow_failed, ids_reports=ids_reports)
            except PPBFLError:  # a node out of the round (left out, liar, restarted without its store) does not vote
                continue
            if vote == mine:
                signatures.append(signature)
                self._disagreed.pop(k, None)
            else:  # its stored round may have diverged: checked (or relayed) before its next vote
                self._disagreed[k] = round
        gas = self.ledger.contract.commit_trust(round, mine.root, mine.slots, mine.words, signatures)
        self.signatures[round] = tuple(signatures)
        return gas

    def _signers(self) -> TrustSigners | None:
        """The ledger's registered edge accounts and t (None: no ledger, or fewer than t registered yet)."""
        ledger = self.ledger
        return None if ledger is None or len(ledger.edge_accounts) < ledger.t else TrustSigners.of(ledger.edge_accounts.values(), ledger.t)

    def _ids_flags(self, round: int, reports: Sequence[IdsReport]) -> dict[int, int]:
        """The agreed IDS flags of ``round`` from the signed ``reports`` (none: none), checked as every voter checks them."""
        if not reports:
            return {}
        signers = self._signers()
        if signers is None or self.ledger is None:
            raise ConfigError("ids_reports", "the ledger registers fewer than t edge accounts: reports cannot be checked")
        for witness in self._made:  # edge accounts registered after this keeper was made (at the deployment's setup)
            witness.signers = witness.signers or signers
        return IdsSensors.of(signers).combine(reports, self.ledger.context, round, len(self.states))

    def _relay_disagreed(self, k: int, voter: RemoteTrustVoter) -> None:
        """Relay to edge process ``k`` the round its latest vote disagreed on (it replaces its own
        copy if that diverged); a refusal or silence leaves it to vote as it is."""
        disagreed = self._disagreed.get(k)
        if disagreed is not None and self.ledger is not None:
            with contextlib.suppress(PPBFLError):  # its earlier rounds diverged too, or it is down: its vote will show
                voter.relay_rounds(self.ledger.context, [disagreed], self._missed)

    def _previous_anchored(self, contract: RoundsContract, round: int) -> int:
        """The latest stored round before ``round`` whose trust ``contract`` anchored (0: none)."""
        for r in reversed([r for r in self.store.rounds() if r < round]):
            if contract.round_state(r).anchor != bytes(32):
                return r
        return 0

    def _missed(self, round: int) -> tuple[list[TrustRecord], tuple[bytes, ...]] | None:
        """Round ``round``'s records and the signatures its ``commitTrust`` took (None: not stored
        here, or not committed). Signatures this keeper did not take itself (it restarted since)
        are read back from the transaction on chain and checked (:func:`~ppbfl.trust.committed.committed_signatures`).

        Raises:
            ConfigError: key ``signatures``: the on-chain ones cannot be read or do not check.
        """
        signatures = self.signatures.get(round)
        if signatures is None and self.ledger is not None and round in self.store.rounds():
            signers = TrustSigners.of(self.ledger.edge_accounts.values(), self.ledger.contract.t)
            signatures = committed_signatures(self.ledger.contract, round, signers)
            if signatures is not None:
                self.signatures[round] = signatures
        return None if signatures is None else (self.store.records(round), signatures)
