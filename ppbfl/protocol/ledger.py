"""The coordinator's view of the chain: every round step recorded in the ``PPBFLRounds`` contract.

:class:`ChainLedger` implements :class:`~ppbfl.protocol.round.RoundLedger` over
:class:`~ppbfl.chain.rounds.RoundsContract`. It registers the edge nodes (with their TLS
certificate fingerprints) and the devices, each with an account of its own; then per round:

* ``open_round`` with the current model hash;
* each device posts its share commitment with its PoW stamp itself, from its own account
  (:class:`DeviceChainAccount`, handed to the device at registration; the coordinator never holds it);
  the contract stores it bound to the round and device (:func:`ppbfl.chain.bind_commitment`), which
  is what the edge nodes compare their uploads with;
* ``close_commitments`` (mining to the commit deadline on a dev chain if some device never
  committed) and the challenge seed fixed by the closing block;
* every online edge node's opened scalars ``(||g_i||^2, <g_i, r>)`` and decisions (reason code,
  fixed-point weight), posted from the node's account until ``t`` agree;
* each node's aggregate-share Merkle root, the named liars, the aggregate's root and the new
  model hash; the on-chain audit of ``audit_k`` random coordinates with ``t + 1`` shares; the
  trust scores the round weighted devices with; close (only after the audit passed).

A round that cannot complete, in any phase, is failed on chain with ``abortRound`` once its
phase's deadline passed (:meth:`ChainLedger.abort_round`), and the next round opens.

Key custody: the edge nodes' chain accounts are unlocked dev accounts that this process signs
for (the embedded chain lives in this process, so edge-node processes cannot reach it); what each
account posts is exactly what that node returned over its authenticated channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain import Chain
from ppbfl.chain.errors import ChainError, ChainRevertError
from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import AuditResult, Phase, RoundsContract
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.messages import AggregateShare
from ppbfl.protocol.round import RoundResult
from ppbfl.protocol.round_errors import RoundFailedError

__all__ = ["ChainLedger", "DeviceChainAccount", "FingerprintMismatchError", "RoundOnChain", "attach_ledger", "open_ledger"]


class FingerprintMismatchError(RoundFailedError):
    """An edge node's TLS certificate is not the one registered for it on chain."""


@dataclass(frozen=True)
class RoundOnChain:
    """What the chain recorded for a round: gas used, the audit outcome, the scalars' agreement."""

    gas: int
    audit: AuditResult
    scalars_agreed: bool
    decisions_agreed: bool


@dataclass
class DeviceChainAccount:
    """A device's own chain account: it stamps (PoW) and posts its share commitments itself.

    ``pow_bits`` is the difficulty it last read from the chain (None: not read yet). It is read
    once and reused; if the consortium changed it since, the contract refuses the stamp
    (``BadPow``) and the device reads the new difficulty and stamps again (saves one view call,
    ~10 ms on py-evm, per commitment).
    """

    contract: RoundsContract
    account: str
    device_id: int
    pow_bits: int | None = None

    def commit(self, round: int, commitment: bytes) -> None:
        """Find a PoW nonce for ``commitment`` at this device's difficulty and post both for ``round``.

        Raises:
            ChainRevertError: the contract refused the commitment (other than for a stale difficulty).
        """
        for attempt in range(2):
            if self.pow_bits is None or attempt:
                self.pow_bits = self.contract.device(self.account)[2]
            nonce = self.contract.pow_stamp(self.account, round, commitment, self.pow_bits)
            try:
                self.contract.commit_shares(self.account, round, commitment, nonce)
                return
            except ChainRevertError as error:
                if error.error != "BadPow" or attempt:
                    raise


class ChainLedger:
    """Records rounds of a ``(t, n)`` deployment with ``devices`` devices in a fresh contract on ``chain``.

    Args:
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
    """

    def __init__(
        self, chain: Chain, t: int, n: int, devices: int, *, fingerprints: Mapping[str, bytes] | None = None,
        pow_bits: int = 8, commit_blocks: int | None = None, audit_shares: int | None = None, trust: float = 1.0,
    ) -> None:
        self.chain, self.t, self.n = chain, t, n
        self.audit_shares = t + 1 if audit_shares is None else audit_shares
        # a dev chain mines one block per transaction: leave room for every device's commitment
        blocks = 2 * devices + 20 if commit_blocks is None else commit_blocks
        self.contract: RoundsContract = chain.deploy(t, n, commit_blocks=blocks)
        fingerprints = dict(fingerprints or {})
        self.edge_accounts: dict[int, str] = {}
        for j in range(1, n + 1):
            self.edge_accounts[j] = chain.new_account()
            fp = fingerprints.get(edge_party(j), keccak(edge_party(j).encode()))
            self.contract.register_edge_node(j, self.edge_accounts[j], fp)
        self.device_accounts: dict[int, str] = {}
        self.device_ids: dict[int, int] = {}
        for i in range(devices):
            account = chain.new_account()
            self.device_ids[i] = self.contract.register_device(account, pow_bits, trust)
            self.device_accounts[i] = account
            if self.device_ids[i] != i:  # edge nodes bind uploads to the device index (a fresh contract numbers 0, 1, ...)
                raise ChainError(f"device {i} was registered as chain device {self.device_ids[i]}")
        self.records: dict[int, RoundOnChain] = {}
        self._gas_start = 0

    @classmethod
    def attach(cls, chain: Chain, address: str, *, audit_shares: int | None = None) -> ChainLedger:
        """The ledger of the ``PPBFLRounds`` contract already at ``address`` on ``chain`` (a coordinator
        that restarts: nothing is deployed or registered). ``t``, ``n``, the edge nodes' and the
        devices' accounts come from the contract's registry (device index = chain device id).

        Raises:
            ChainError: no contract answers at ``address``, or an edge node is not registered.
        """
        from eth_utils import to_checksum_address

        from ppbfl.chain.rounds import load_artifact

        if not chain.w3.eth.get_code(to_checksum_address(address)):
            raise ChainError(f"no contract at {address} on this chain")
        contract = RoundsContract(chain, address, load_artifact()["abi"])
        ledger = cls.__new__(cls)
        ledger.chain, ledger.t, ledger.n, ledger.contract = chain, contract.t, contract.n, contract
        ledger.audit_shares = contract.t + 1 if audit_shares is None else audit_shares
        ledger.edge_accounts = {}
        for j in range(1, contract.n + 1):
            account, _ = contract.edge_node(j)
            if int(account, 16) == 0:
                raise ChainError(f"edge node {j} is not registered in the contract at {address}")
            ledger.edge_accounts[j] = account
        ledger.device_ids = {i: i for i in range(contract.device_count())}
        ledger.device_accounts = {i: chain.call(contract.contract, "deviceAddress", i) for i in ledger.device_ids}
        ledger.records, ledger._gas_start = {}, 0
        return ledger

    @property
    def address(self) -> str:
        """The contract's address."""
        return self.contract.address

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
        """keccak-256 of a model's float32 parameters (little-endian bytes)."""
        return keccak(np.ascontiguousarray(params, dtype="<f4").tobytes())

    # -- RoundLedger -----------------------------------------------------------------------------
    def open_round(self, round: int, model_hash: bytes) -> None:
        """Open ``round`` on chain for the model with hash ``model_hash``."""
        self._gas_start = self._gas_total()
        self.contract.open_round(round, model_hash)

    def device_account(self, device: int) -> DeviceChainAccount:
        """Device ``device``'s own chain account (what the consortium hands the device at registration)."""
        return DeviceChainAccount(self.contract, self.device_accounts[device], self.device_ids[device])

    def commitment(self, round: int, device: int) -> bytes | None:
        """Device ``device``'s commitment for ``round`` as the contract stores it,
        ``bind_commitment(root, round, device)`` (None if it did not commit)."""
        root = self.contract.commitment(round, self.device_ids[device])
        return None if root == bytes(32) else root

    def commitments(self, round: int, devices: Iterable[int] | None = None) -> dict[int, bytes]:
        """Device -> its (bound) commitment for ``round``, over ``devices`` (default: every registered
        one); devices without a commitment, or not registered, are absent."""
        wanted = sorted(self.device_ids if devices is None else {i for i in devices if i in self.device_ids})
        roots = self.contract.commitments_of(round, [self.device_ids[i] for i in wanted]) if wanted else []
        return {i: root for i, root in zip(wanted, roots) if root != bytes(32)}

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

    def abort_round(self, round: int) -> None:
        """Fail ``round`` on chain with the contract's ``abortRound``, which takes a round in any
        phase but Closed and Failed once its phase's deadline passed (on a dev chain this mines to
        the deadline first), so that the next round can open. Nothing to do if it is already
        closed or failed.

        Raises:
            RoundFailedError: ``round`` was never opened.
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
            self.chain.mine(max(1, int(error.args_by_name["deadline"]) - self.chain.block_number + 1))
            self.contract.abort_round(round)

    def record_round(
        self, round: int, result: RoundResult, replies: dict[int, AggregateShare], aggregate_secret: np.ndarray, model_hash: bytes
    ) -> int:
        """Post the round's scalars, decisions, aggregate commitments, liars and aggregate; audit; close.

        Returns the gas this round used. Raises :class:`RoundFailedError` if fewer than ``t`` nodes
        agree on chain, the audit fails, or the contract does not reach ``CLOSED``.
        """
        ids = [self.device_ids[i] for i in result.devices]
        honest = [j for j in sorted(replies) if j not in result.liars]
        scalars_agreed = decisions_agreed = False
        # even a round without devices is agreed on (empty records): the contract moves on only then
        for j in honest:
            values = np.stack([replies[j].norm2, replies[j].dot_ref], axis=1).astype(np.uint64).reshape(len(ids), 2)
            if self.contract.post_scalars(j, round, ids, values):
                scalars_agreed = True
                break
        for j in honest:
            if self.contract.post_decisions(j, round, ids, list(replies[j].reasons), replies[j].weights.tolist()):
                decisions_agreed = True
                break
        if not (scalars_agreed and decisions_agreed):
            raise RoundFailedError(round, f"fewer than t = {self.t} edge nodes agreed on chain on the opened scalars and decisions")
        for j, reply in sorted(replies.items()):
            self.contract.commit_aggregate_share(j, round, merkle_root(reply.share))
        for j in result.liars:
            self.contract.report_liar(round, j)
        new_hash = keccak(model_hash + np.ascontiguousarray(result.aggregate, dtype="<f8").tobytes())
        self.contract.post_aggregate(round, merkle_root(aggregate_secret), new_hash, aggregate_secret.size)
        audited = {j: replies[j].share for j in honest[: self.audit_shares]}
        audit = self.contract.audit(round, audited, aggregate_secret)
        if not audit.passed:
            raise RoundFailedError(round, "the on-chain audit failed", f"offender {audit.offender}")
        if ids:
            self.contract.set_trust(round, ids, [result.trust[i] for i in result.devices])
        self.contract.close_round(round)
        if self.contract.round_state(round).phase != Phase.CLOSED:
            raise RoundFailedError(round, f"the contract did not close the round (phase {self.contract.round_state(round).phase.name})")
        gas = self._gas_total() - self._gas_start
        self.records[round] = RoundOnChain(gas, audit, scalars_agreed, decisions_agreed)
        return gas

    def _gas_total(self) -> int:
        report = self.chain.gas_report()
        return sum(report.total(method) for method in report.calls)


@contextmanager
def open_ledger(
    kind: str, t: int, n: int, *, devices: int, fingerprints: Mapping[str, bytes] | None = None, trust: float = 1.0,
) -> Iterator[ChainLedger]:
    """A :class:`ChainLedger` in a fresh contract on: ``"embedded"`` (in-process py-evm), ``"anvil"``
    (an anvil node started here, stopped on exit) or an ``http(s)://`` URL (any JSON-RPC EVM node
    with unlocked accounts, e.g. the consortium's own; left running); ``trust``: every device's
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
        yield ChainLedger(chain, t, n, devices, fingerprints=fingerprints, trust=trust)
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
