"""The coordinator's view of the chain: every round step recorded in the ``PPBFLRounds`` contract.

:class:`ChainLedger` implements :class:`~ppbfl.protocol.round.RoundLedger` over
:class:`~ppbfl.chain.rounds.RoundsContract`. It registers the edge nodes (with their TLS
certificate fingerprints) and the devices, each with an account of its own, and the TLS identities
of every party (:meth:`ChainLedger.register_identities`, what chain-registry servers read); then per round:

* ``open_round`` with the current model hash;
* each device posts its share commitment with its PoW stamp itself: it signs the transaction
  with its own key (:class:`DeviceChainAccount`; the ledger registers and funds only its
  address) and any relay submits it unchanged;
  the contract stores it bound to the round and device (:func:`ppbfl.chain.bind_commitment`), which
  is what the edge nodes compare their uploads with;
* ``close_commitments`` (mining to the commit deadline on a dev chain if some device never
  committed) and the challenge seed fixed by the closing block;
* the hash of the round's one ``VerifyRequest`` (``post_verify_request``), before the request
  leaves: edge nodes that read the chain answer only the request with that hash;
* every online edge node's opened scalars ``(||g_i||^2, <g_i, r>)`` and decisions (reason code,
  fixed-point weight), relayed with the nodes' own signatures, one transaction per distinct
  value, until ``t`` agree;
* each node's aggregate-share Merkle root with its signature (one transaction for all), the
  named liars, the aggregate's root and the new model hash; the on-chain audit of ``audit_k``
  random coordinates with ``t + 1`` shares; close (only after the audit passed). Trust is not
  written here: a :class:`~ppbfl.trust.keeper.TrustKeeper` relays ``commitTrust`` after the round,
  signed by ``t`` edge nodes that computed it themselves.

A round that cannot complete, in any phase, is failed on chain with ``abortRound`` once its
phase's deadline passed (:meth:`ChainLedger.abort_round`), and the next round opens.

Key custody: each edge node holds its own chain key (:class:`~ppbfl.chain.attest.ChainKey`);
this process knows only the nodes' addresses, which it registers. A node signs attestations of
the scalars, decisions and aggregate-share root it computed itself (:mod:`ppbfl.chain.votes`) and
returns them in its :class:`AggregateShare`; the ledger relays them unchanged, and the contract
counts a vote only for the registered node whose key signed it. The ledger checks every
signature first (:meth:`~ppbfl.chain.votes.RoundVotes.signed_by`): a node whose signatures do not recover
to its registered address is not relayed (``RoundOnChain.unsigned``), so one bad signature cannot
revert a batch. Devices sign their own commitment transactions the same way
(:class:`DeviceChainAccount`): this process's node holds no device key, so it cannot commit for one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_DECISIONS, KIND_SCALARS, ChainKey
from ppbfl.chain.errors import ChainError, ChainRevertError, ChainValueError
from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE, AuditResult, Phase, RoundsContract
from ppbfl.chain.votes import ChainContext, RoundVotes
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.flame_decision import model_hash as flame_model_hash
from ppbfl.protocol.messages import AggregateShare
from ppbfl.protocol.parties import COORDINATOR_PARTY, DEALER_PARTY, device_party
from ppbfl.protocol.registry import identity_of
from ppbfl.protocol.round import RoundResult
from ppbfl.protocol.round_errors import RoundFailedError

__all__ = ["ChainLedger", "DeviceChainAccount", "FingerprintMismatchError", "RoundOnChain", "attach_ledger", "open_ledger"]

_ROLE_CODES = {"edge": ROLE_EDGE, "device": ROLE_DEVICE, "coordinator": ROLE_COORDINATOR, "dealer": ROLE_DEALER}


class FingerprintMismatchError(RoundFailedError):
    """An edge node's TLS certificate is not the one registered for it on chain."""


@dataclass(frozen=True)
class RoundOnChain:
    """What the chain recorded for a round: gas used, the audit outcome, the scalars' agreement,
    and the edge nodes whose votes were not relayed because their signatures did not check."""

    gas: int
    audit: AuditResult
    scalars_agreed: bool
    decisions_agreed: bool
    unsigned: tuple[int, ...] = ()


@dataclass
class DeviceChainAccount:
    """A device's own chain account: it stamps (PoW) and signs its share-commitment transactions
    with its own ``key`` (which never leaves the device); a relay submits them unchanged.

    ``pow_bits`` is the difficulty it last read from the chain (None: not read yet). It is read
    once and reused; the transaction names the difficulty it was stamped at, and if the
    consortium raised it since, the contract reverts (``StalePow``, nothing recorded) and the
    device reads the new difficulty and stamps again (saves one view call, ~10 ms on py-evm, per
    commitment). A stamp that does not meet the difficulty it names is recorded on chain as the
    device's PoW refusal in the round (:class:`~ppbfl.chain.errors.PowRefusedError`).
    """

    contract: RoundsContract
    key: ChainKey
    device_id: int
    pow_bits: int | None = None

    @property
    def account(self) -> str:
        """The device's address (its key's): what the contract registers, and what its PoW stamps are bound to."""
        return self.key.address

    def commit(self, round: int, commitment: bytes) -> None:
        """Find a PoW nonce for ``commitment`` at this device's difficulty and post both for ``round``.

        Raises:
            PowRefusedError: the transaction succeeded, but the contract refused the stamp and
                recorded the refusal (the device has no commitment in ``round``).
            ChainRevertError: the contract refused the commitment (other than for a stale difficulty).
        """
        for attempt in range(2):
            if self.pow_bits is None or attempt:
                self.pow_bits = self.contract.device(self.account)[2]
            nonce = self.contract.pow_stamp(self.account, round, commitment, self.pow_bits)
            try:
                self.contract.relay_commit(self.contract.sign_commit(self.key, round, commitment, nonce, self.pow_bits), self.account)
                return
            except ChainRevertError as error:
                if error.error != "StalePow" or attempt:
                    raise


class ChainLedger:
    """Records rounds of a ``(t, n)`` deployment with ``devices`` devices in a fresh contract on ``chain``.

    Args:
        edge_accounts: edge index (1..n) -> the address of that node's own chain key (public; the
            node signs its votes with the key, which never leaves it), registered for it. None:
            call :meth:`register_edge_nodes` before the first round (``Federation`` does, with
            its deployment's ``edge_accounts``).
        device_accounts: device i -> the address of its own chain key (public; the device signs
            its commitment transactions itself), ``devices`` of them, registered as chain device
            ids 0, 1, ... and funded for gas. None: :meth:`register_devices` before the first round
            (``Federation`` does, with the keys its devices made).
        fingerprints: party id -> 32-byte TLS certificate fingerprint (edge nodes use theirs; an
            in-process deployment has no TLS and registers ``keccak(party id)`` instead).
        pow_bits: PoW difficulty of every device (light: ~ms of hashing at 8 bits).
        trust: every device's registered trust in [0, 1] (what round 1 weights it with and, once
            ``setPowRange`` is set, derives its first PoW difficulty from); a trust keeper's
            ledger registers the model's initial trust (:func:`ppbfl.trust.reputation.initial_trust`).
        commit_blocks: commit-phase deadline in blocks (default ``2 * devices + 20``: a dev chain
            mines a block per transaction).
        audit_shares: aggregate shares the on-chain audit opens (default ``t + 1``, so the contract
            names a single liar; ``t`` is the cheaper routine audit).
        contract: an already deployed contract to record on (:meth:`attach`); None: deploy a fresh one.
    """

    abort_wait_s: float = 600.0
    """:meth:`abort_round` on a chain that is not a dev chain: seconds it waits for the deadline block."""
    abort_poll_s: float = 1.0
    """... and how often it reads the block number meanwhile."""

    def __init__(
        self, chain: Chain, t: int, n: int, devices: int, *, edge_accounts: Mapping[int, str] | None = None,
        device_accounts: Sequence[str] | None = None, fingerprints: Mapping[str, bytes] | None = None, pow_bits: int = 8, commit_blocks: int | None = None,
        audit_shares: int | None = None, trust: float = 1.0, contract: RoundsContract | None = None,
    ) -> None:
        self.chain, self.t, self.n = chain, t, n
        self.audit_shares = t + 1 if audit_shares is None else audit_shares
        # a dev chain mines one block per transaction: leave room for every device's commitment
        blocks = 2 * devices + 20 if commit_blocks is None else commit_blocks
        self.contract: RoundsContract = chain.deploy(t, n, commit_blocks=blocks) if contract is None else contract
        self._fingerprints = dict(fingerprints or {})
        self._identities: set[str] = set()  # parties registered in the party registry by this ledger
        self.edge_accounts: dict[int, str] = {}
        if edge_accounts is not None:
            self.register_edge_nodes(edge_accounts)
        self.devices, self.pow_bits, self.trust = devices, pow_bits, trust
        self.device_accounts: dict[int, str] = {}
        self.device_ids: dict[int, int] = {}
        if device_accounts is not None:
            self.register_devices(device_accounts)
        self.records: dict[int, RoundOnChain] = {}
        self._gas_start = 0

    @classmethod
    def attach(cls, chain: Chain, address: str, *, audit_shares: int | None = None, deployed_at: int | None = None) -> ChainLedger:
        """The ledger of the ``PPBFLRounds`` contract already at ``address`` on ``chain`` (a coordinator
        that restarts: nothing is deployed or registered). ``t``, ``n``, the edge nodes' and the
        devices' accounts come from the contract's registry (device index = chain device id).
        ``deployed_at``: the contract's deployment block if the caller knows it (e.g. the first
        ledger's ``contract.deployed_at``), where log scans start; else found on first use
        (:attr:`~ppbfl.chain.rounds.RoundsContract.deployed_at`).

        Raises:
            ChainError: no contract answers at ``address``, or an edge node is not registered.
        """
        from eth_utils import to_checksum_address

        from ppbfl.chain.rounds import load_artifact

        if not chain.w3.eth.get_code(to_checksum_address(address)):
            raise ChainError(f"no contract at {address} on this chain")
        contract = RoundsContract(chain, address, load_artifact()["abi"], deployed_at=deployed_at)
        edge_accounts = {}
        for j in range(1, contract.n + 1):
            account, _ = contract.edge_node(j)
            if int(account, 16) == 0:
                raise ChainError(f"edge node {j} is not registered in the contract at {address}")
            edge_accounts[j] = account
        device_accounts = {i: chain.call(contract.contract, "deviceAddress", i) for i in range(contract.device_count())}
        pow_bits = contract.device(device_accounts[0])[2] if device_accounts else 8
        ledger = cls(chain, contract.t, contract.n, len(device_accounts), audit_shares=audit_shares, pow_bits=pow_bits, contract=contract)
        ledger.edge_accounts = edge_accounts  # registered already: recorded, not registered again
        ledger.device_accounts, ledger.device_ids = device_accounts, {i: i for i in device_accounts}
        return ledger

    @property
    def address(self) -> str:
        """The contract's address."""
        return self.contract.address

    def register_edge_nodes(self, edge_accounts: Mapping[int, str], *, fingerprints: Mapping[str, bytes] | None = None) -> None:
        """Register edge node j (1..n) with ``edge_accounts[j]``, the address of its own chain key,
        and its TLS fingerprint (``keccak(party id)`` when none was given). ``fingerprints``: party
        id -> 32-byte TLS fingerprint, added to those the ledger was made with (a deployment that
        issues its certificates after the ledger exists: :class:`~ppbfl.protocol.deployment.GrpcDeployment`).

        Raises:
            ChainError: the edge nodes are already registered, or ``edge_accounts`` is not 1..n.
        """
        if self.edge_accounts:
            raise ChainError("the edge nodes are already registered")
        if sorted(edge_accounts) != list(range(1, self.n + 1)):
            raise ChainError(f"edge_accounts names edge nodes {sorted(edge_accounts)}, expected 1..{self.n}")
        self._fingerprints.update(fingerprints or {})
        for j in range(1, self.n + 1):
            fp = self._fingerprints.get(edge_party(j), keccak(edge_party(j).encode()))
            self.contract.register_edge_node(j, edge_accounts[j], fp)
            self.edge_accounts[j] = edge_accounts[j]
        if getattr(self, "device_ids", None):  # None while __init__ registers the edge nodes first
            self.register_identities()

    def register_devices(self, accounts: Sequence[str]) -> None:
        """Register device i with ``accounts[i]``, the address of its own chain key, as chain
        device id i (at the ledger's PoW difficulty) and fund it for its commitment transactions.

        Raises:
            ChainError: devices are already registered, or ``accounts`` is not one per device.
        """
        if self.device_ids:
            raise ChainError("the devices are already registered")
        if len(accounts) != self.devices:
            raise ChainError(f"{len(accounts)} device accounts for {self.devices} devices")
        for i, account in enumerate(accounts):
            self.device_ids[i] = self.contract.register_device(account, self.pow_bits, self.trust)
            self.device_accounts[i] = account
            if self.device_ids[i] != i:  # edge nodes bind uploads to the device index (a fresh contract numbers 0, 1, ...)
                raise ChainError(f"device {i} was registered as chain device {self.device_ids[i]}")
            self.chain.fund(account)
        if self.edge_accounts:
            self.register_identities()

    def register_identities(self, fingerprints: Mapping[str, bytes] | None = None) -> int:
        """Register TLS identities in the contract's party registry (``registerParties``: what a
        :class:`~ppbfl.protocol.chain_registry.ChainRegistry` server reads), in transactions of at
        most 100 parties; returns the gas used. Default: every edge node with the fingerprint its
        ``registerEdgeNode`` holds, and the devices, coordinator and dealer whose fingerprints the
        ledger was given (ids naming no role, e.g. a manifest's extra parties, are left out); given
        none at all (an in-process deployment), ``keccak(party id)`` for all of them; parties this
        ledger registered before are left out. Called once both edge nodes and devices are registered.
        Given ``fingerprints`` (party id -> 32-byte fingerprint): exactly those, e.g. a device whose
        certificate was issued after the devices were registered.

        Raises:
            ChainError: a party id of ``fingerprints`` names no role (``edge-j``, ``device-i``,
                ``coordinator``, ``dealer``), or the contract refused (``PartyExists``: registered before).
        """
        if fingerprints is None:
            parties = [edge_party(j) for j in self.edge_accounts]
            if self._fingerprints:  # parties without a role in the contract (a manifest's extra ids) are left out
                parties += [p for p in self._fingerprints if p not in parties and identity_of(p).role in _ROLE_CODES]
            else:
                parties += [device_party(i) for i in self.device_ids] + [COORDINATOR_PARTY, DEALER_PARTY]
            edge_fps = {edge_party(j): self.contract.edge_node_fingerprint(j) for j in self.edge_accounts}
            fingerprints = {
                p: edge_fps.get(p) or self._fingerprints.get(p) or keccak(p.encode()) for p in parties if p not in self._identities
            }
        entries = []
        for party, fp in fingerprints.items():
            identity = identity_of(party)
            if identity.role not in _ROLE_CODES:
                raise ChainError(f"party {party!r} has no role in the contract's registry")
            entries.append((fp, _ROLE_CODES[identity.role], identity.index or 0))
        gas = 0
        for k in range(0, len(entries), 100):
            gas += self.contract.register_parties(entries[k:k + 100])
            self._identities.update(list(fingerprints)[k:k + 100])
        self._fingerprints.update(fingerprints)
        return gas

    @property
    def context(self) -> ChainContext:
        """What an edge node signs its votes for: this contract on this chain."""
        return ChainContext(self.contract.address, self.contract.chain_id)

    def verify_fingerprints(self, fingerprints: Mapping[str, bytes]) -> None:
        """Check that the certificates a transport pins are those registered on chain.

        Raises:
            FingerprintMismatchError: naming the edge node whose certificate differs.
        """
        for j in range(1, self.n + 1):
            party = edge_party(j)
            if party in fingerprints and self.contract.edge_node_fingerprint(j) != fingerprints[party]:
                raise FingerprintMismatchError(0, "TLS certificate differs from the one registered on chain", party)

    @staticmethod
    def model_hash(params: np.ndarray) -> bytes:
        """keccak-256 of a model's float32 parameters (little-endian bytes): :func:`ppbfl.protocol.flame_decision.model_hash`."""
        return flame_model_hash(params)

    # -- RoundLedger -----------------------------------------------------------------------------
    def open_round(self, round: int, model_hash: bytes) -> None:
        """Open ``round`` on chain for the model with hash ``model_hash``. The edge nodes' accounts
        are read from the chain again first (``n`` views): one rotated between rounds
        (``rotateEdgeNode``) has its votes checked against its new account from this round on."""
        self._gas_start = self._gas_total()
        if self.edge_accounts:
            self.edge_accounts = {j: self.contract.edge_node(j)[0] for j in self.edge_accounts}
        self.contract.open_round(round, model_hash)

    def commitment(self, round: int, device: int) -> bytes | None:
        """Device ``device``'s commitment for ``round`` as the contract records it,
        ``bind_commitment(root, round, device)`` (None if it did not commit; an earlier round's
        from its events, :meth:`~ppbfl.chain.rounds.RoundsContract.commitments_of`)."""
        root = self.contract.commitment(round, self.device_ids[device])
        return None if root == bytes(32) else root

    def commitments(self, round: int, devices: Iterable[int] | None = None) -> dict[int, bytes]:
        """Device -> its (bound) commitment for ``round``, over ``devices`` (default: every registered
        one); devices without a commitment, or not registered, are absent."""
        wanted = sorted(self.device_ids if devices is None else {i for i in devices if i in self.device_ids})
        roots = self.contract.commitments_of(round, [self.device_ids[i] for i in wanted]) if wanted else []
        return {i: root for i, root in zip(wanted, roots) if root != bytes(32)}

    def pow_refusals(self, round: int) -> set[int]:
        """The devices whose PoW stamp the contract refused in ``round`` (its per-round record, any round)."""
        index = {chain_id: i for i, chain_id in self.device_ids.items()}
        return {index[x] for x in self.contract.pow_refusals(round) if x in index}

    def close_commitments(self, round: int) -> bytes:
        """Close the commit phase (on a dev chain, mine to the deadline if devices are missing); the seed."""
        try:
            self.contract.close_commitments(round)
        except ChainRevertError as error:
            if error.error != "DeadlineNotReached":
                raise
            self.chain.mine(max(1, int(error.args_by_name["deadline"]) - self.chain.block_number + 1))
            self.contract.close_commitments(round)
        return self.contract.challenge_seed(round)

    def post_verify_request(self, round: int, request_hash: bytes) -> None:
        """Fix on chain the hash (:func:`ppbfl.protocol.signed_shares.request_hash`) of the one
        ``VerifyRequest`` of ``round`` that the coordinator then sends every edge node.

        Raises:
            ChainRevertError: the contract refused, e.g. ``VerifyRequestAlreadyPosted`` (a hash is
                posted for the round already: ``args_by_name["posted"]``), ``WrongPhase``.
        """
        self.contract.post_verify_request(round, request_hash)

    def abort_round(self, round: int) -> None:
        """Fail ``round`` on chain with the contract's ``abortRound``, which takes a round in any
        phase but Closed and Failed once its phase's deadline passed (on a dev chain, py-evm or
        anvil, this mines to the deadline first; on any other node it waits for the deadline
        block, reading the block number every :attr:`abort_poll_s` seconds for at most
        :attr:`abort_wait_s`), so that the next round can open. Nothing to do if it is already
        closed or failed.

        Raises:
            RoundFailedError: ``round`` was never opened, or the deadline block did not come in
                :attr:`abort_wait_s` seconds (names the block and the latest one).
        """
        phase = self.contract.round_state(round).phase
        if phase in (Phase.CLOSED, Phase.FAILED):
            return
        if phase == Phase.NONE:
            raise RoundFailedError(round, "the round was never opened on chain")
        try:
            self.contract.abort_round(round)
        except ChainRevertError as error:
            if error.error != "DeadlineNotReached":
                raise
            deadline = int(error.args_by_name["deadline"])
            if self.chain.target in ("py-evm", "anvil"):
                self.chain.mine(max(1, deadline - self.chain.block_number + 1))
            else:
                self._wait_for_block(round, deadline + 1)
            self.contract.abort_round(round)

    def _wait_for_block(self, round: int, block: int) -> None:
        """Return once the chain reached ``block``; RoundFailedError after :attr:`abort_wait_s` seconds."""
        end = time.monotonic() + self.abort_wait_s
        while (latest := self.chain.block_number) < block:
            if time.monotonic() >= end:
                raise RoundFailedError(round, f"cannot abort yet: the deadline block {block} did not come in {self.abort_wait_s} s (latest {latest})")
            time.sleep(min(self.abort_poll_s, max(0.0, end - time.monotonic())))

    def record_round(
        self, round: int, result: RoundResult, replies: dict[int, AggregateShare], aggregate_secret: np.ndarray, model_hash: bytes
    ) -> int:
        """Post the round's scalars, decisions, aggregate commitments, liars and aggregate; audit; close.

        Returns the gas this round used. Raises :class:`RoundFailedError` if fewer than ``t`` nodes
        agree on chain, the audit fails, or the contract does not reach ``CLOSED``.
        """
        ids = [self.device_ids[i] for i in result.devices]
        signed = {j: votes for j, votes in ((j, self._votes(round, ids, j, reply)) for j, reply in sorted(replies.items())) if votes}
        honest = [j for j in signed if j not in result.liars]
        # even a round without devices is agreed on (empty records): the contract moves on only then
        scalars_agreed = self._agree(round, KIND_SCALARS, {j: (signed[j][0].scalars, signed[j][1][0]) for j in honest})
        decisions_agreed = scalars_agreed and self._agree(round, KIND_DECISIONS, {j: (signed[j][0].decisions, signed[j][1][1]) for j in honest})
        if not (scalars_agreed and decisions_agreed):
            raise RoundFailedError(round, f"fewer than t = {self.t} edge nodes agreed on chain on the opened scalars and decisions")
        if signed:  # every signed root, the liars' too (evidence), in one transaction
            self.contract.commit_aggregate_shares(round, [v.share_root for v, _ in signed.values()], [sigs[2] for _, sigs in signed.values()])
        for j in result.liars:
            self.contract.report_liar(round, j)
        new_hash = keccak(model_hash + np.ascontiguousarray(result.aggregate, dtype="<f8").tobytes())
        self.contract.post_aggregate(round, merkle_root(aggregate_secret), new_hash, aggregate_secret.size)
        audited = {j: replies[j].share for j in honest[: self.audit_shares]}
        audit = self.contract.audit(round, audited, aggregate_secret)
        if not audit.passed:
            raise RoundFailedError(round, "the on-chain audit failed", f"offender {audit.offender}")
        self.contract.close_round(round)
        if self.contract.round_state(round).phase != Phase.CLOSED:
            raise RoundFailedError(round, f"the contract did not close the round (phase {self.contract.round_state(round).phase.name})")
        gas = self._gas_total() - self._gas_start
        self.records[round] = RoundOnChain(gas, audit, scalars_agreed, decisions_agreed, tuple(sorted(set(replies) - set(signed))))
        return gas

    def _votes(self, round: int, ids: list[int], j: int, reply: AggregateShare) -> tuple[RoundVotes, list[bytes]] | None:
        """Node ``j``'s votes rebuilt from its reply and its three signatures, or None if they are
        not its registered key's signatures of exactly these values (or the reply is malformed)."""
        try:
            votes = RoundVotes.of(ids, reply.norm2, reply.dot_ref, reply.reasons, reply.weights, reply.share)
        except ChainValueError:
            return None
        signatures = list(reply.chain_signatures)
        return (votes, signatures) if votes.signed_by(self.edge_accounts[j], signatures, self.context, round) else None

    def _agree(self, round: int, kind: int, votes: Mapping[int, tuple[bytes, bytes]]) -> bool:
        """Relay the nodes' signed ``(packed bytes, signature)`` votes of ``kind``, one transaction
        per distinct value; whether ``t`` agreed. Values fewer than ``t`` nodes signed go first
        (they cannot agree; their signers are then on chain as dissenters), the value most nodes
        signed last (a second value signed by ``t`` or more is not relayed)."""
        by_value: dict[bytes, list[int]] = {}
        for j, (packed, _) in votes.items():
            by_value.setdefault(packed, []).append(j)
        groups = sorted(by_value.items(), key=lambda item: (-len(item[1]), item[1]))
        agreed = False
        for packed, nodes in [g for g in groups[1:] if len(g[1]) < self.t] + groups[:1]:
            agreed = self.contract.post_packed(kind, round, packed, [votes[j][1] for j in nodes])
        return agreed

    def _gas_total(self) -> int:
        report = self.chain.gas_report()
        return sum(report.total(method) for method in report.calls)


@contextmanager
def open_ledger(
    kind: str, t: int, n: int, *, devices: int, edge_accounts: Mapping[int, str] | None = None,
    fingerprints: Mapping[str, bytes] | None = None, trust: float = 1.0,
) -> Iterator[ChainLedger]:
    """A :class:`ChainLedger` in a fresh contract on: ``"embedded"`` (in-process py-evm), ``"anvil"``
    (an anvil node started here, stopped on exit) or an ``http(s)://`` URL (any JSON-RPC EVM node
    with unlocked accounts, e.g. the consortium's own; left running). ``edge_accounts``: edge
    index -> the address of that node's own chain key (e.g. ``deployment.edge_accounts``; None:
    registered later, :meth:`ChainLedger.register_edge_nodes`); ``trust``: every device's
    registered trust (see :class:`ChainLedger`).

    Raises:
        ChainError: ``kind`` is none of these, or the node cannot be reached.
    """
    accounts = devices + n + 4
    if kind == "embedded":
        chain = Chain.embedded(accounts=accounts)
    elif kind == "anvil":
        chain = Chain.anvil(accounts=accounts)
    elif kind.startswith(("http://", "https://")):
        chain = Chain.connect(kind)
    else:
        raise ChainError(f"chain {kind!r}: expected 'embedded', 'anvil' or an http(s):// JSON-RPC URL")
    try:
        yield ChainLedger(chain, t, n, devices, edge_accounts=edge_accounts, fingerprints=fingerprints, trust=trust)
    finally:
        chain.close()


@contextmanager
def attach_ledger(url: str, address: str) -> Iterator[ChainLedger]:
    """The :class:`ChainLedger` of the contract at ``address`` on the JSON-RPC node at ``url`` (a
    restarted coordinator; :meth:`ChainLedger.attach`). Only a chain that outlives the coordinator
    can be attached to: the embedded chain dies with its process.

    Raises:
        ChainError: the node cannot be reached or holds no such contract.
    """
    chain = Chain.connect(url)
    try:
        yield ChainLedger.attach(chain, address)
    finally:
        chain.close()
