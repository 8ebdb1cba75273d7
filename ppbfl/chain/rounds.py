"""Typed Python methods for every ``PPBFLRounds`` call (one deployed contract, one consortium).

Each method sends from the account of the party it belongs to: registration from the admin,
``open_round`` / ``post_verify_request`` / ``post_aggregate`` / ``anchor`` / ``report_liar`` /
``close_round`` from the aggregator, ``commit_shares`` from the device. The edge nodes' votes
(``post_scalars`` / ``post_decisions`` / ``commit_aggregate_shares`` / ``commit_trust``) carry the nodes' own
signatures (:mod:`ppbfl.chain.attest`) and are relayed by anyone (default: the aggregator): the
contract counts the recovered signers, not the sender. ``sender=`` overrides the account (tests
of unauthorised callers). Arguments are
checked before sending (:class:`ChainValueError` naming the field); contract reverts raise
:class:`ChainRevertError` carrying the custom error's name and arguments.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from typing import Any

import numpy as np
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from ppbfl.chain.attest import KIND_DECISIONS, KIND_SCALARS, SIGNATURE_BYTES, ChainKey
from ppbfl.chain.driver import Chain
from ppbfl.chain.errors import ArtifactError, ChainRevertError, ChainValueError, PowRefusedError
from ppbfl.chain.logs import deployment_block, scan_logs
from ppbfl.chain.merkle import merkle_tree, tree_depth
from ppbfl.chain.pow import pow_stamp

__all__ = [
    "PARTY_AGGREGATOR",
    "PARTY_UNATTRIBUTED",
    "ROLES",
    "ROLE_COORDINATOR",
    "ROLE_DEALER",
    "ROLE_DEVICE",
    "ROLE_EDGE",
    "TRUST_ONE",
    "AuditResult",
    "Decision",
    "Failure",
    "Phase",
    "RoundState",
    "RoundsContract",
    "commit_transaction",
    "deploy_rounds",
    "load_artifact",
]

P = (1 << 61) - 1
#: offender code of the aggregator in audit results
PARTY_AGGREGATOR = 255
#: offender code when an audit with t shares cannot tell who lied
PARTY_UNATTRIBUTED = 254
#: trust fixed point: Q1.15, 1.0 = 2^15
TRUST_ONE = 1 << 15
#: roles of registered TLS identities, as the contract's ROLE_* constants
ROLE_EDGE, ROLE_DEVICE, ROLE_COORDINATOR, ROLE_DEALER = 1, 2, 3, 4
ROLES = {ROLE_EDGE: "edge", ROLE_DEVICE: "device", ROLE_COORDINATOR: "coordinator", ROLE_DEALER: "dealer"}

IntArrayLike = Sequence[int] | np.ndarray
"""Integers as a sequence or a 1-D NumPy array (device ids, reasons, weights)."""
#: audits send the top FRONTIER_LEVELS levels of each tree once instead of in every path
FRONTIER_LEVELS = 4
_DECISION = np.dtype([("id", ">u4"), ("reason", "u1"), ("weight", ">u8")])


class Phase(IntEnum):
    """Round phases, as the contract's ``Phase`` enum."""

    NONE = 0
    OPEN = 1
    COMMITTED = 2
    VERIFIED = 3
    AGGREGATED = 4
    CLOSED = 5
    FAILED = 6


class Failure(IntEnum):
    """Why a round failed."""

    NONE = 0
    TIMEOUT = 1
    AUDIT_MISMATCH = 2
    UNAUDITED = 3  # the audit window ended with an aggregate posted and no passed audit


def _bits(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(32) if mask >> i & 1)


@dataclass(frozen=True)
class RoundState:
    """Snapshot of one round as stored on chain (bitmaps unpacked into edge-index tuples)."""

    phase: Phase
    failure: Failure
    offender: int
    device_count: int
    committed: int
    deadline: int
    closed_at: int
    aggregated_at: int
    length: int
    scalar_voters: tuple[int, ...]
    decision_voters: tuple[int, ...]
    aggregate_shares: tuple[int, ...]
    reported_liars: tuple[int, ...]
    decisions_agreed: bool
    audit_passed: bool
    model_hash: bytes
    challenge_seed: bytes
    scalars_hash: bytes
    decisions_hash: bytes
    aggregate_root: bytes
    new_model_hash: bytes
    audit_seed: bytes
    anchor: bytes
    pow_range: tuple[int, int, int]
    """``(min_bits, max_bits, full_trust)`` of the PoW range when the round opened (its commitments' difficulty)."""
    verify_request: bytes
    """The hash of the round's one ``VerifyRequest`` the coordinator posted (``postVerifyRequest``;
    32 zero bytes: none yet): what an edge node that reads the chain answers, and only that."""
    refused: int = 0
    """Devices whose PoW stamp the contract refused in the round (``PowRefused``): they cannot
    commit again in it, so ``committed + refused == device_count`` closes the commit phase early;
    ``committed`` stays the number of commitments."""


@dataclass(frozen=True)
class Decision:
    """A device's verification outcome: ``reason`` 0 = accepted; ``weight`` a uint64 (fixed point)."""

    device_id: int
    reason: int
    weight: int


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit transaction: ``offender`` is 1..n, 255 (aggregator), 254 or None."""

    passed: bool
    offender: int | None
    coordinates: tuple[int, ...]
    edges: tuple[int, ...]
    gas: int
    tx_hash: bytes


def load_artifact(name: str = "PPBFLRounds") -> dict[str, Any]:
    """The committed ``{abi, bytecode, ...}`` of ``name`` from ``ppbfl/chain/artifacts``."""
    try:
        text = resources.files("ppbfl.chain").joinpath("artifacts", f"{name}.json").read_text()
        artifact = json.loads(text)
        artifact["abi"], artifact["bytecode"]
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"artifact {name}.json is missing or malformed: {exc}") from exc
    return artifact


def commit_transaction(
    key: ChainKey, contract: str, fields: Mapping[str, int], round_: int, root: bytes, nonce: int, bits: int,
) -> bytes:
    """``key``'s signed ``commitShares(round_, root, nonce, bits)`` transaction to the rounds
    contract at ``contract`` (``bits``: the difficulty the PoW ``nonce`` was found at), with the
    signing ``fields`` (:func:`ppbfl.chain.driver.signing_fields`: the account's next nonce, the
    chain id, gas and fees). Needs no connection to the chain: a device that cannot reach it
    signs here and hands the bytes to a relay, which sends them unchanged.

    Raises:
        ChainValueError: ``round_``, ``root``, the PoW ``nonce`` or ``bits`` is out of range (names it).
    """
    args = [_uint("round", round_, 64, 1), _bytes32("root", root), _uint("nonce", nonce, 64), _uint("bits", bits, 8)]
    data = _offline_contract().encode_abi("commitShares", args=args)
    return key.sign_transaction({"to": to_checksum_address(contract), "data": data, **fields})


@functools.cache
def _offline_contract() -> Any:
    """The rounds contract's ABI as a web3 contract object with no provider (for encoding calls)."""
    from web3 import Web3

    return Web3().eth.contract(abi=load_artifact()["abi"])


def _bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ChainValueError(name, "is not 32 bytes")
    return bytes(value)


def _uint(name: str, value: int, bits: int, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) < 1 << bits:
        raise ChainValueError(name, f"{value!r} is not an integer in [{low}, 2^{bits})")
    return int(value)


def _device_ids(device_ids: IntArrayLike) -> np.ndarray:
    ids = np.asarray(device_ids)
    if ids.ndim != 1 or (ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= 1 << 32)):
        raise ChainValueError("device_ids", "must be a 1-d sequence of integers in [0, 2^32)")
    if ids.size > 1 and np.any(np.diff(ids.astype(np.int64)) <= 0):
        raise ChainValueError("device_ids", "must be strictly increasing")
    return ids.astype(np.int64)


def _signatures(signatures: Sequence[bytes]) -> bytes:
    """Signatures (65 bytes each) concatenated as the contract reads them."""
    for position, signature in enumerate(signatures):
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_BYTES:
            raise ChainValueError(f"signatures[{position}]", f"is not {SIGNATURE_BYTES} bytes")
    return b"".join(bytes(signature) for signature in signatures)


def deploy_rounds(
    chain: Chain,
    t: int,
    n: int,
    *,
    admin: str | None = None,
    aggregator: str | None = None,
    commit_blocks: int = 1000,
    verify_blocks: int = 200,
    aggregate_blocks: int = 200,
    audit_blocks: int = 200,
    audit_k: int = 16,
) -> RoundsContract:
    """Deploy ``PPBFLRounds`` (p = 2^61 - 1 is fixed in the contract); deadlines are in blocks.

    ``admin`` deploys (default: the chain's first account); ``aggregator`` defaults to the admin.
    """
    if not 1 <= t <= n <= 31:
        raise ChainValueError("t, n", f"need 1 <= t <= n <= 31, got t={t}, n={n}")
    for name, value in (("commit_blocks", commit_blocks), ("verify_blocks", verify_blocks),
                        ("aggregate_blocks", aggregate_blocks), ("audit_blocks", audit_blocks)):
        _uint(name, value, 32, low=1)
    _uint("audit_k", audit_k, 8, low=1)
    admin = admin or chain.funder
    aggregator = aggregator or admin
    artifact = load_artifact()
    address, _, block = chain.deploy_contract(
        artifact["abi"], artifact["bytecode"],
        [t, n, commit_blocks, verify_blocks, aggregate_blocks, audit_blocks, audit_k, aggregator], admin,
    )
    return RoundsContract(chain, address, artifact["abi"], deployed_at=block)


class RoundsContract:
    """A deployed ``PPBFLRounds``: typed calls, views and the audit helper (see docs/chain.md).

    ``deployed_at``: the block the contract was created in, where every event-log scan starts
    (:mod:`ppbfl.chain.logs`); :func:`deploy_rounds` takes it from the deployment receipt. Not
    given (a contract attached by address), it is found on first use by a binary search on
    ``eth_getCode`` (:func:`~ppbfl.chain.logs.deployment_block`). A given block is checked on
    first use: one after the deployment (code already at the block before it) would make scans
    miss logs, and raises ``ChainValueError("deployed_at")``; one before it only costs time.
    """

    def __init__(self, chain: Chain, address: str, abi: list[dict[str, Any]], *, deployed_at: int | None = None) -> None:
        if deployed_at is not None and (isinstance(deployed_at, bool) or not isinstance(deployed_at, int) or deployed_at < 0):
            raise ChainValueError("deployed_at", f"{deployed_at!r} is not a block number")
        self._deployed_at, self._deployed_checked = deployed_at, False
        self.chain = chain
        self.contract = chain.w3.eth.contract(address=to_checksum_address(address), abi=abi)
        self.address = address
        self.t = int(self._view("t"))
        self.n = int(self._view("n"))
        self.admin = self._view("admin")
        self.aggregator = self._view("aggregator")
        self.audit_k = int(self._view("auditK"))
        self.chain_id = int(chain.w3.eth.chain_id)

    @property
    def deployed_at(self) -> int:
        """The contract's deployment block (given and checked, or found once by :func:`~ppbfl.chain.logs.deployment_block`).

        Raises:
            ChainValueError: the given block is after the deployment (the contract has code at the block before it).
        """
        if self._deployed_at is None:
            self._deployed_at = deployment_block(self.chain.w3, self.address)
        elif not self._deployed_checked:
            block = self._deployed_at
            if block > 0 and self.chain.w3.eth.get_code(to_checksum_address(self.address), block - 1):
                raise ChainValueError("deployed_at", f"block {block} is after the contract's deployment (it has code at block {block - 1})")
            self._deployed_checked = True
        return self._deployed_at

    def _view(self, method: str, *args: Any) -> Any:
        return self.chain.call(self.contract, method, *args)

    def _send(self, method: str, args: Sequence[Any], sender: str, key: ChainKey | None = None) -> Any:
        if key is not None:  # signed here by a key the node does not hold (e.g. the admin's, ``ppbfl registry``)
            return self.chain.send_signed(self.contract, method, args, key)
        return self.chain.send(self.contract, method, args, sender)

    # ------------------------------------------------------------ registration

    def register_edge_node(
        self, index: int, account: str, tls_fingerprint: bytes, *, sender: str | None = None, key: ChainKey | None = None,
    ) -> None:
        """Register edge node ``index`` (1..n) with its account (the address of the node's own
        :class:`~ppbfl.chain.attest.ChainKey`: what its signed votes recover to) and 32-byte TLS
        certificate fingerprint (admin; sent as :meth:`register_parties` sends)."""
        _uint("index", index, 8, low=1)
        self._send("registerEdgeNode", [index, account, _bytes32("tls_fingerprint", tls_fingerprint)], sender or self.admin, key)

    def rotate_edge_node(
        self, index: int, account: str, tls_fingerprint: bytes, *, sender: str | None = None, key: ChainKey | None = None,
    ) -> int:
        """Replace edge node ``index``'s chain account and TLS certificate fingerprint (admin, only
        between rounds; sent as :meth:`register_parties` sends); returns the gas used. The old
        account's signatures stop counting (``UnknownSigner``), the old certificate's party entry
        is revoked and ``tls_fingerprint`` registered as ``(ROLE_EDGE, index)``.

        Raises:
            ChainValueError: ``index`` not 1..255, ``tls_fingerprint`` not 32 bytes;
            ChainRevertError: ``NotAdmin``, ``BadEdgeIndex`` (no edge node ``index``), ``WrongPhase``
                (a round in flight), ``AddressInUse``, ``BadParty`` (zero fingerprint),
                ``PartyExists`` (a certificate registered before, or the current one).
        """
        args = [_uint("index", index, 8, low=1), account, _bytes32("tls_fingerprint", tls_fingerprint)]
        return int(self._send("rotateEdgeNode", args, sender or self.admin, key)["gasUsed"])

    def edge_node(self, index: int) -> tuple[str, bytes]:
        """``(account, tls_fingerprint)`` of edge node ``index`` (zero address when unregistered)."""
        account, fingerprint = self._view("edgeNode", _uint("index", index, 8))
        return account, bytes(fingerprint)

    def edge_index_of(self, account: str) -> int:
        """Edge index (1..n) registered for ``account``, 0 when it is not an edge node."""
        return int(self._view("edgeIndexOf", account))

    def edge_node_fingerprint(self, index: int) -> bytes:
        """The TLS certificate fingerprint registered for edge node ``index``."""
        return self.edge_node(index)[1]

    def register_device(self, account: str, pow_bits: int, trust: float = 1.0, *, sender: str | None = None) -> int:
        """Register a device with its PoW difficulty (0..64 bits) and initial trust in [0, 1];
        returns its device id."""
        _uint("pow_bits", pow_bits, 8)
        if not 0.0 <= trust <= 1.0:
            raise ChainValueError("trust", f"{trust!r} is not in [0, 1]")
        receipt = self._send("registerDevice", [account, pow_bits, round(trust * TRUST_ONE)], sender or self.admin)
        event = self.contract.events.DeviceRegistered().process_receipt(receipt, errors=DISCARD)
        return int(event[0]["args"]["id"])

    def set_pow_bits(self, account: str, pow_bits: int, *, sender: str | None = None) -> None:
        """Change a device's PoW difficulty (admin)."""
        self._send("setPowBits", [account, _uint("pow_bits", pow_bits, 8)], sender or self.admin)

    def device(self, account: str) -> tuple[bool, int, int]:
        """``(registered, device_id, pow_bits)`` of ``account``."""
        registered, device_id, bits = self._view("device", account)
        return bool(registered), int(device_id), int(bits)

    # ------------------------------------------------------------ TLS identities

    def register_parties(
        self, parties: Sequence[tuple[bytes, int, int]], *, sender: str | None = None, key: ChainKey | None = None,
    ) -> int:
        """Register TLS identities ``(fingerprint, role, index)`` in one transaction (admin; see
        :data:`ROLES`: edges with index 1..n and their ``registerEdgeNode`` fingerprint, devices with
        their device id, coordinator and dealer with index 0); returns the gas used. Sent from
        ``sender`` (default: the admin account, which the node must hold), or signed here by ``key``.

        Raises:
            ChainValueError: a fingerprint is not 32 bytes, a role not 1..4, an index not uint32.
            ChainRevertError: ``BadParty`` / ``PartyExists`` (names the position and fingerprint).
        """
        fps = [_bytes32(f"parties[{k}].fingerprint", fp) for k, (fp, _, _) in enumerate(parties)]
        roles = [_uint(f"parties[{k}].role", role, 8, low=1) for k, (_, role, _) in enumerate(parties)]
        for k, role in enumerate(roles):
            if role not in ROLES:
                raise ChainValueError(f"parties[{k}].role", f"{role} is not one of {sorted(ROLES)}")
        indexes = [_uint(f"parties[{k}].index", index, 32) for k, (_, _, index) in enumerate(parties)]
        receipt = self._send("registerParties", [fps, roles, indexes], sender or self.admin, key)
        return int(receipt["gasUsed"])

    def revoke_party(self, fingerprint: bytes, *, sender: str | None = None, key: ChainKey | None = None) -> None:
        """Revoke the TLS certificate with ``fingerprint`` for good (admin; ``NotActiveParty`` if it
        is not active); sent as :meth:`register_parties` sends."""
        self._send("revokeParty", [_bytes32("fingerprint", fingerprint)], sender or self.admin, key)

    def party(self, fingerprint: bytes) -> tuple[int, int, bool]:
        """``(role, index, active)`` registered for the 32-byte certificate ``fingerprint`` (role 0: never registered)."""
        role, index, active = self._view("party", _bytes32("fingerprint", fingerprint))
        return int(role), int(index), bool(active)

    def party_fingerprint(self, role: int, index: int) -> bytes:
        """The fingerprint of the active certificate of party ``(role, index)`` (32 zero bytes: none)."""
        return bytes(self._view("partyFingerprint", _uint("role", role, 8), _uint("index", index, 32)))

    def device_count(self) -> int:
        """Number of registered devices (ids are 0 .. count - 1)."""
        return int(self._view("deviceCount"))

    # ------------------------------------------------------------ round: open and commit

    def latest_round(self) -> int:
        """The last opened round (0 before the first)."""
        return int(self._view("latestRound"))

    def open_round(self, round_: int, model_hash: bytes, *, sender: str | None = None) -> None:
        """Open ``round_`` (= latest + 1) for the model with hash ``model_hash``."""
        self._send("openRound", [_uint("round", round_, 64, 1), _bytes32("model_hash", model_hash)], sender or self.aggregator)

    def pow_stamp(self, device: str, round_: int, commitment: bytes, bits: int | None = None) -> int:
        """A PoW nonce for ``(device, round_, commitment)`` in this contract on this chain; ``bits``
        defaults to the device's on-chain difficulty."""
        if bits is None:
            bits = self.device(device)[2]
        return pow_stamp(self.address, self.chain_id, device, round_, _bytes32("commitment", commitment), bits)

    def sign_commit(self, key: ChainKey, round_: int, root: bytes, nonce: int, bits: int) -> bytes:
        """The device's own signed ``commitShares(round_, root, nonce, bits)`` transaction from
        ``key.address`` (its next nonce, this chain's id and fees): what the device hands a relay."""
        return commit_transaction(key, self.address, self.chain.transaction_fields(key.address), round_, root, nonce, bits)

    def relay_commit(self, raw: bytes, device: str) -> int:
        """Send a device's signed commitment transaction (:meth:`sign_commit`) unchanged; returns
        the gas used. The contract sees the device as the sender: its registration and PoW stamp
        are checked against it.

        Raises:
            PowRefusedError: the transaction succeeded but recorded the stamp's refusal (no commitment).
            ChainRevertError: the contract reverted (``StalePow``: ``bits`` below the device's
                difficulty; ``AlreadyCommitted``, ``WrongPhase``, ...).
        """
        return self._committed(self.chain.send_raw(self.contract, "commitShares", raw, device))

    def commit_shares(
        self, device: str, round_: int, root: bytes, nonce: int, bits: int | None = None, *, sender: str | None = None,
    ) -> int:
        """Commit the device's share-commitment ``root`` with its PoW ``nonce`` found at ``bits``
        (default: the device's difficulty on chain now) from an account the node signs for (a dev
        chain's unlocked ``device``); returns the gas used. Raises as :meth:`relay_commit`."""
        if bits is None:
            bits = self.device(device)[2]
        args = [_uint("round", round_, 64, 1), _bytes32("root", root), _uint("nonce", nonce, 64), _uint("bits", bits, 8)]
        return self._committed(self._send("commitShares", args, sender or device))

    def _committed(self, receipt: Any) -> int:
        """The gas of a mined ``commitShares``; :class:`PowRefusedError` if it recorded a refusal."""
        gas = int(receipt["gasUsed"])
        for event in self.contract.events.PowRefused().process_receipt(receipt, errors=DISCARD):
            args = event["args"]
            raise PowRefusedError(int(args["round"]), int(args["deviceId"]), int(args["bits"]), gas)
        return gas

    def commitment(self, round_: int, device_id: int) -> bytes:
        """Device ``device_id``'s commitment in ``round_``: ``bind_commitment(root, round_,
        device_id)`` of the root it committed (zero bytes when none). From storage while it is the
        device's latest entry, else from the round's ``SharesCommitted`` events."""
        return self.commitments_of(round_, [device_id])[0]

    def commitments_of(self, round_: int, device_ids: Sequence[int]) -> list[bytes]:
        """The (bound) commitments of ``device_ids`` in ``round_`` (zero bytes where none): one view
        call (``commitmentsOf``) while no device has an entry in a later round (the contract keeps
        one slot per device), else read from ``round_``'s ``SharesCommitted`` events."""
        ids = [_uint("device_ids", i, 32) for i in device_ids]
        try:
            return [bytes(root) for root in self._view("commitmentsOf", _uint("round", round_, 64), ids)]
        except ChainRevertError as error:
            if error.error != "CommitmentOverwritten":
                raise
        logged = self.logged_commitments(round_)
        return [logged.get(i, bytes(32)) for i in ids]

    def logged_commitments(self, round_: int) -> dict[int, bytes]:
        """Device id -> its bound commitment in ``round_``, from the ``SharesCommitted`` events (the
        record of every round; storage keeps only each device's latest)."""
        state = self.round_state(round_)
        end = state.closed_at or None  # commitments land before closeCommitments (None: the latest block)
        logs = scan_logs(self.contract.events.SharesCommitted, self.deployed_at, argument_filters={"round": round_}, end=end)
        return {int(log["args"]["deviceId"]): bytes(log["args"]["bound"]) for log in logs}

    def pow_refused(self, round_: int, device_id: int) -> bool:
        """Whether device ``device_id``'s PoW stamp was refused in ``round_`` (any round: kept per round)."""
        return bool(self._view("powRefused", _uint("round", round_, 64), _uint("device_id", device_id, 32)))

    def pow_refusals(self, round_: int) -> tuple[int, ...]:
        """The device ids whose PoW stamp the contract refused in ``round_``, ascending."""
        return tuple(int(i) for i in self._view("powRefusals", _uint("round", round_, 64)))

    def close_commitments(self, round_: int, *, sender: str | None = None) -> None:
        """End the commit phase (every device committed, or the commit deadline passed); anyone may call."""
        self._send("closeCommitments", [_uint("round", round_, 64, 1)], sender or self.aggregator)

    def _seed(self, method: str, round_: int) -> bytes:
        try:
            return bytes(self._view(method, _uint("round", round_, 64, 1)))
        except ChainRevertError as exc:
            if exc.error != "SeedNotReady" or exc.args_by_name["readyAt"] <= 1:
                raise
            # the seed is the hash of a block that must be followed by one more: on a dev chain, mine it
            self.chain.mine(max(1, exc.args_by_name["readyAt"] - self.chain.block_number))
            return bytes(self._view(method, round_))

    def challenge_seed(self, round_: int) -> bytes:
        """Randomness for the share-consistency check, fixed by the block that closed the commitments.

        On a dev chain an empty block is mined when the seed's block is still the latest."""
        return self._seed("challengeSeed", round_)

    # ------------------------------------------------------------ verify request (one per round)

    def post_verify_request(self, round_: int, request_hash: bytes, *, sender: str | None = None) -> int:
        """Fix the 32-byte hash of ``round_``'s one ``VerifyRequest`` (aggregator; after the
        commitments closed, before any scalars, once); returns the gas used.

        Raises:
            ChainValueError: ``round_`` or ``request_hash`` is malformed (names it).
            ChainRevertError: ``VerifyRequestAlreadyPosted`` (with the ``posted`` hash) on a second
                post, ``VerifyRequestAfterScalars``, ``WrongPhase``, ``DeadlinePassed``, ``ZeroRoot``,
                ``NotCoordinator``.
        """
        args = [_uint("round", round_, 64, 1), _bytes32("request_hash", request_hash)]
        return int(self._send("postVerifyRequest", args, sender or self.aggregator)["gasUsed"])

    def verify_request(self, round_: int) -> bytes:
        """The verify-request hash posted for ``round_`` (32 zero bytes: none), as :attr:`RoundState.verify_request`."""
        return self.round_state(round_).verify_request

    # ------------------------------------------------------------ verification

    @staticmethod
    def pack_scalars(device_ids: Sequence[int], values: np.ndarray) -> bytes:
        """Records ``uint32 id || s x uint64`` (big-endian) for ``values: (m, s) uint64``."""
        ids = _device_ids(device_ids)
        values = np.asarray(values)
        if values.dtype != np.uint64 or values.ndim != 2 or values.shape[0] != ids.size or values.shape[1] < 1:
            raise ChainValueError("values", f"expected ({ids.size}, s) uint64, got {values.shape} {values.dtype}")
        record = np.dtype([("id", ">u4"), ("v", ">u8", (values.shape[1],))])
        out = np.empty(ids.size, dtype=record)
        out["id"] = ids
        out["v"] = values
        return out.tobytes()

    def attest(self, key: ChainKey, kind: int, round_: int, digest: bytes) -> bytes:
        """``key``'s signature of the attestation of ``digest`` of ``kind`` (1 scalars, 2 decisions,
        3 aggregate-share root, 4 trust) in ``round_`` of this contract on this chain (what an edge node sends)."""
        return key.attest(kind, self.address, self.chain_id, round_, digest)

    def post_packed(self, kind: int, round_: int, packed: bytes, signatures: Sequence[bytes], *, sender: str | None = None) -> bool:
        """Relay packed scalars (``kind`` 1) or decisions (2) with the edge nodes' signatures of
        their keccak256, in one transaction: publish the bytes (``postScalars`` /
        ``postDecisions``) or, once published, only vote for their hash (``voteScalars`` /
        ``voteDecisions``). True when this made t edge nodes agree."""
        _uint("round", round_, 64, 1)
        name = {KIND_SCALARS: "Scalars", KIND_DECISIONS: "Decisions"}.get(kind)
        if name is None:
            raise ChainValueError("kind", f"{kind!r} is not 1 (scalars) or 2 (decisions)")
        digest = keccak(packed)
        joined = _signatures(signatures)
        if self.vote_word(round_, kind, digest) & 1:
            receipt = self._send(f"vote{name}", [round_, digest, joined], sender or self.aggregator)
        else:
            receipt = self._send(f"post{name}", [round_, packed, joined], sender or self.aggregator)
        return bool(self.contract.events[f"{name}Agreed"]().process_receipt(receipt, errors=DISCARD))

    def vote_word(self, round_: int, kind: int, digest: bytes) -> int:
        """Vote bitmap of ``digest`` (kind 1 scalars, 2 decisions): bit i = edge node i, bit 0 = published."""
        return int(self._view("voteWord", _uint("round", round_, 64), _uint("kind", kind, 8, 1), _bytes32("digest", digest)))

    def vote_scalars(self, round_: int, digest: bytes, signatures: Sequence[bytes], *, sender: str | None = None) -> bool:
        """Relay edge nodes' signed votes for published scalars by their keccak256 ``digest``; True on agreement."""
        args = [_uint("round", round_, 64, 1), _bytes32("digest", digest), _signatures(signatures)]
        receipt = self._send("voteScalars", args, sender or self.aggregator)
        return bool(self.contract.events.ScalarsAgreed().process_receipt(receipt, errors=DISCARD))

    def vote_decisions(self, round_: int, digest: bytes, signatures: Sequence[bytes], *, sender: str | None = None) -> bool:
        """Relay edge nodes' signed votes for published decisions by their keccak256 ``digest``; True on agreement."""
        args = [_uint("round", round_, 64, 1), _bytes32("digest", digest), _signatures(signatures)]
        receipt = self._send("voteDecisions", args, sender or self.aggregator)
        return bool(self.contract.events.DecisionsAgreed().process_receipt(receipt, errors=DISCARD))

    def post_scalars(
        self, round_: int, device_ids: Sequence[int], values: np.ndarray, signatures: Sequence[bytes], *, sender: str | None = None,
    ) -> bool:
        """Relay the opened scalars (``values: (m, s) uint64`` for ``device_ids``) with the
        signatures of the edge nodes that attest them (kind 1 over keccak256 of
        :meth:`pack_scalars`), as :meth:`post_packed`. True when t edge nodes agree (the round is
        then Verified)."""
        return self.post_packed(KIND_SCALARS, round_, self.pack_scalars(device_ids, values), signatures, sender=sender)

    def agreed_scalars(self, round_: int, scalars_per_device: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """``(device_ids (m,), values (m, s) uint64)``: the agreed scalars of ``round_`` (from its event)."""
        data = self._agreed_data("ScalarsPublished", round_, self.round_state(round_).scalars_hash)
        record = np.dtype([("id", ">u4"), ("v", ">u8", (scalars_per_device,))])
        if len(data) % record.itemsize:
            raise ChainValueError("scalars_per_device", f"{scalars_per_device} does not divide the posted records")
        rows = np.frombuffer(data, dtype=record)
        return rows["id"].astype(np.int64), rows["v"].astype(np.uint64)

    def _agreed_data(self, event: str, round_: int, digest: bytes) -> bytes:
        if digest == bytes(32):
            raise ChainValueError("round", f"round {round_} has no agreed {event[:-9].lower()}")
        start = self.round_state(round_).closed_at  # published after the commitments closed
        logs = scan_logs(self.contract.events[event], start, argument_filters={"round": round_, "hash": digest}, first=True)
        return bytes(logs[0]["args"]["data"])

    @staticmethod
    def pack_decisions(device_ids: IntArrayLike, reasons: IntArrayLike, weights: IntArrayLike) -> bytes:
        """13-byte records ``uint32 id || uint8 reason || uint64 weight`` (reason 0 = accepted)."""
        ids = _device_ids(device_ids)
        reasons_a = np.asarray(reasons)
        weights_a = np.asarray(weights)
        if reasons_a.shape != ids.shape or (reasons_a.size and (reasons_a.min() < 0 or reasons_a.max() > 255)):
            raise ChainValueError("reasons", f"expected {ids.size} codes in [0, 255]")
        if weights_a.shape != ids.shape or (weights_a.size and (weights_a.dtype.kind not in "iu" or weights_a.min() < 0)):
            raise ChainValueError("weights", f"expected {ids.size} non-negative uint64 weights")
        out = np.empty(ids.size, dtype=_DECISION)
        out["id"], out["reason"], out["weight"] = ids, reasons_a, weights_a.astype(np.uint64)
        return out.tobytes()

    def post_decisions(
        self, round_: int, device_ids: IntArrayLike, reasons: IntArrayLike, weights: IntArrayLike, signatures: Sequence[bytes],
        *, sender: str | None = None,
    ) -> bool:
        """Relay accept/reject decisions with the signatures of the edge nodes that attest them
        (kind 2 over keccak256 of :meth:`pack_decisions`), as :meth:`post_packed`; True when t agree."""
        packed = self.pack_decisions(device_ids, reasons, weights)
        return self.post_packed(KIND_DECISIONS, round_, packed, signatures, sender=sender)

    def decisions(self, round_: int) -> list[Decision]:
        """The agreed decisions of ``round_`` (from the DecisionsPublished event of the agreed hash)."""
        data = self._agreed_data("DecisionsPublished", round_, self.round_state(round_).decisions_hash)
        rows = np.frombuffer(data, dtype=_DECISION)
        return [Decision(int(r["id"]), int(r["reason"]), int(r["weight"])) for r in rows]

    # ------------------------------------------------------------ aggregation and audit

    def commit_aggregate_shares(
        self, round_: int, roots: Sequence[bytes], signatures: Sequence[bytes], *, sender: str | None = None,
    ) -> None:
        """Relay edge nodes' aggregate-share Merkle roots, ``roots[i]`` with ``signatures[i]``
        (its node's kind-3 attestation of the root), in one transaction; each root is recorded
        for the node that signed it."""
        args = [_uint("round", round_, 64, 1), [_bytes32("roots", root) for root in roots], _signatures(signatures)]
        self._send("commitAggregateShares", args, sender or self.aggregator)

    def aggregate_share_root(self, round_: int, edge_index: int) -> bytes:
        """The aggregate-share root edge node ``edge_index`` committed."""
        return bytes(self._view("aggregateShareRoot", _uint("round", round_, 64), _uint("edge_index", edge_index, 8)))

    def post_aggregate(self, round_: int, root: bytes, model_hash: bytes, length: int, *, sender: str | None = None) -> None:
        """The aggregator posts the aggregate's Merkle root, the new model hash and the vector length d."""
        self._send(
            "postAggregate",
            [_uint("round", round_, 64, 1), _bytes32("root", root), _bytes32("model_hash", model_hash), _uint("length", length, 32, 1)],
            sender or self.aggregator,
        )

    def audit_seed(self, round_: int) -> bytes:
        """Audit randomness, fixed by the block holding the aggregate (mines a block if needed)."""
        return self._seed("auditSeed", round_)

    def audit_coordinates(self, round_: int) -> tuple[int, ...]:
        """The ``audit_k`` coordinates an audit opens: ``keccak256(seed || i) mod d``."""
        seed = self.audit_seed(round_)
        length = self.round_state(round_).length
        return tuple(
            int.from_bytes(keccak(seed + i.to_bytes(32, "big")), "big") % length for i in range(self.audit_k)
        )

    def audit(
        self,
        round_: int,
        shares_by_edge_index: Mapping[int, np.ndarray],
        aggregate: np.ndarray,
        *,
        sender: str | None = None,
    ) -> AuditResult:
        """Open the drawn coordinates of ``aggregate`` and of the given aggregate shares on chain.

        ``shares_by_edge_index``: ``{edge index: (d,) uint64}`` for t or t + 1 edge nodes (t + 1
        lets the contract name a lying edge node or the aggregator; with more, the t + 1 lowest
        indices are used). ``sender`` defaults to the aggregator (anyone may audit).
        """
        edges = tuple(sorted(shares_by_edge_index))
        if len(edges) > self.t + 1:
            edges = edges[: self.t + 1]
        if not self.t <= len(edges) <= min(self.t + 1, self.n):
            raise ChainValueError("shares_by_edge_index", f"{len(edges)} edge nodes; need t = {self.t} or t + 1")
        coords = self.audit_coordinates(round_)
        trees = [merkle_tree(aggregate)] + [merkle_tree(shares_by_edge_index[e]) for e in edges]
        length = self.round_state(round_).length
        for tree, who in zip(trees, ("aggregate",) + edges):
            if tree.length != length:
                raise ChainValueError(f"vector of {who}", f"length {tree.length}, the posted aggregate has {length}")
        depth = tree_depth(length)
        low = depth - min(depth, FRONTIER_LEVELS)
        frontiers = [node for tree in trees for node in tree.frontier(low)]
        chunks: list[bytes] = []
        siblings: list[bytes] = []
        for c in coords:
            for tree in trees:
                proof = tree.proof(c, height=low)
                chunks.append(proof.chunk)
                siblings.extend(proof.siblings)
        receipt = self._send(
            "audit", [round_, list(edges), b"".join(chunks), siblings, frontiers], sender or self.aggregator
        )
        failed = self.contract.events.AuditFailed().process_receipt(receipt, errors=DISCARD)
        passed = bool(self.contract.events.AuditPassed().process_receipt(receipt, errors=DISCARD))
        offender = int(failed[0]["args"]["offender"]) if failed else None
        return AuditResult(passed, offender, coords, edges, int(receipt["gasUsed"]), bytes(receipt["transactionHash"]))

    # ------------------------------------------------------------ trust, anchor, liars, close

    def trust(self, device_id: int) -> float:
        """Trust score of ``device_id`` in [0, 1] (stored as Q1.15 uint16)."""
        return int(self._view("trustOf", _uint("device_id", device_id, 32))) / TRUST_ONE

    def anchor(self, round_: int, root: bytes, *, sender: str | None = None) -> None:
        """Anchor the off-chain store's Merkle root for ``round_`` (once)."""
        self._send("anchor", [_uint("round", round_, 64, 1), _bytes32("root", root)], sender or self.aggregator)

    def commit_trust(
        self, round_: int, root: bytes, slots: Sequence[int], words: Sequence[int], signatures: Sequence[bytes], *, sender: str | None = None,
    ) -> int:
        """After ``round_`` closed or failed: anchor the trust store's ``root`` and write the trust
        ``words`` (16 Q1.15 lanes each, :class:`~ppbfl.chain.votes.TrustVote`) at ``slots``, in one
        transaction, with the edge nodes' kind-4 ``signatures`` of them (at least t distinct
        registered nodes, else ``TrustNotAgreed``); returns its gas. Anyone may relay."""
        args = [
            _uint("round", round_, 64, 1), _bytes32("root", root), [_uint("slots", x, 256) for x in slots],
            [_uint("words", x, 256) for x in words], _signatures(signatures),
        ]
        receipt = self._send("commitTrust", args, sender or self.aggregator)
        return int(receipt["gasUsed"])

    def trust_commit_log(self, round_: int) -> Any:
        """The ``TrustCommitted`` event log of ``round_``'s ``commitTrust`` (web3 ``EventData``:
        ``args`` root, slots, words; ``transactionHash``, ``blockNumber``), or None if the round
        has none. Scanned from the round's latest recorded block (``commitTrust`` comes after the
        round closed or failed: after its commitments closed and its aggregate was posted, and a
        round failed by ``abortRound`` -- Timeout, Unaudited -- after its deadline; at the earliest
        the deployment block) in chunks, first match only; no scan for a round without an anchor."""
        state = self.round_state(round_)
        if state.anchor == bytes(32):
            return None
        start = max(self.deployed_at, state.closed_at, state.aggregated_at)
        if state.phase == Phase.FAILED and state.failure in (Failure.TIMEOUT, Failure.UNAUDITED):
            start = max(start, state.deadline + 1)  # abortRound needs block.number > deadline
        logs = scan_logs(self.contract.events.TrustCommitted, start, argument_filters={"round": round_}, first=True)
        return logs[0] if logs else None

    def committed_trust(self, round_: int) -> dict[int, int]:
        """Device id -> Q1.15 trust written by ``round_``'s ``commitTrust`` (every lane of the words it wrote; empty if none)."""
        log = self.trust_commit_log(round_)
        out: dict[int, int] = {}
        if log is not None:
            for slot, word in zip(log["args"]["slots"], log["args"]["words"]):
                for lane in range(16):
                    out[16 * int(slot) + lane] = (int(word) >> (16 * lane)) & 0xFFFF
        return out

    def liar_reports(self) -> list[tuple[int, int]]:
        """``(round, edge index)`` of every ``reportLiar`` since the deployment, in chain order (chunked log scan)."""
        logs = scan_logs(self.contract.events.LiarReported, self.deployed_at)
        return [(int(x["args"]["round"]), int(x["args"]["edgeIndex"])) for x in logs]

    def set_pow_range(self, min_bits: int, max_bits: int, full_trust: int = TRUST_ONE, *, sender: str | None = None) -> None:
        """Derive PoW difficulty from trust: ``max_bits`` at trust 0 to ``min_bits`` at Q1.15 trust
        ``>= full_trust`` (in ``[1, 2^15]``), linear between (``max_bits = 0``: off)."""
        args = [_uint("min_bits", min_bits, 8), _uint("max_bits", max_bits, 8), _uint("full_trust", full_trust, 16)]
        self._send("setPowRange", args, sender or self.admin)

    def pow_range(self) -> tuple[int, int, int]:
        """``(min_bits, max_bits, full_trust)`` of the trust-derived PoW difficulty (``max_bits = 0``: off)."""
        return int(self._view("powMinBits")), int(self._view("powMaxBits")), int(self._view("powFullTrust"))

    def report_liar(self, round_: int, edge_index: int, *, sender: str | None = None) -> None:
        """Record edge node ``edge_index`` as named by robust reconstruction in ``round_``."""
        self._send("reportLiar", [_uint("round", round_, 64, 1), _uint("edge_index", edge_index, 8, 1)], sender or self.aggregator)

    def close_round(self, round_: int, *, sender: str | None = None) -> None:
        """Close an aggregated round (after a passed audit, before the audit deadline)."""
        self._send("closeRound", [_uint("round", round_, 64, 1)], sender or self.aggregator)

    def abort_round(self, round_: int, *, sender: str | None = None) -> None:
        """Fail a round that is not Closed or Failed once its phase's deadline passed (anyone)."""
        self._send("abortRound", [_uint("round", round_, 64, 1)], sender or self.aggregator)

    def round_state(self, round_: int) -> RoundState:
        """The stored state of ``round_`` (``Phase.NONE`` for a round never opened)."""
        r = self._view("roundInfo", _uint("round", round_, 64))
        return RoundState(
            Phase(r[0]), Failure(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[10]), int(r[11]),
            _bits(r[12]), _bits(r[13]), _bits(r[14]), _bits(r[15]), bool(r[16]), bool(r[17]),
            bytes(r[18]), bytes(r[19]), bytes(r[20]), bytes(r[21]), bytes(r[22]), bytes(r[23]), bytes(r[24]), bytes(r[25]),
            (int(r[7]), int(r[8]), int(r[9])), bytes(r[26]), int(r[27]),
        )
