"""Claims of an edge node against a device's committed upload: which stand, who leaves the round, who is named.

An edge node can speak against a device in four ways: it does not hold the device's upload (or its
validity proof), the upload it holds does not match the device's on-chain commitment, or its
consistency value (``<lambda, g_j> + rho_j``) is off the polynomial of the other nodes' values.
Each is either true (the device equivocated, dealt the node a bad share or never sent it) or the
node lies.

**Mismatch claims are decided by evidence** when uploads are signed: a device signs the Merkle
root of its ``n`` leaves once per round with its identity key (:func:`sign_upload`, ECDSA P-256;
leaf ``j`` binds node ``j``'s share, so the one signature binds every share), every node refuses
an unsigned upload, and a node that reports a mismatch shows the root it holds and the device's
signature of it. A device signature of a root other than the commitment proves the claim; any
other evidence names the node as a liar (:func:`verify_disputes`). Without a ledger the same
signature settles nodes that report different roots for a device (:func:`settle_roots`).

**The rest are disputes** that no third party can settle: non-delivery leaves no trace, and a
consistency value can only be recomputed from the node's share, whose opening would hand a relay
colluding with ``e + 1`` lying nodes ``t`` shares of an honest device. So a dispute is settled by
numbers (:func:`settle`). At most ``e = floor((k - t) / 2)`` of the ``k`` online nodes lie
(DESIGN §2), so a claim made by more than ``e`` nodes has an honest node behind it and the device
is out. A claim made by at most ``e`` nodes may be a lie: those nodes leave the round (the others
hold the device's committed upload, so its update is well defined without them) and the device
stays. Dropped nodes come out of one budget of ``e`` per round, spent greedily on the node named
in the most disputes (a liar who speaks against many devices goes first), and the round always
keeps at least ``t`` nodes.

What this gives: no honest device is excluded by the word of at most ``e`` nodes (when no
malicious device spends the budget first), a false mismatch claim names its node, and a node that
raises a dispute only takes itself out of the round. What it does not give: naming the node of a
dispute, because a malicious device can raise every dispute against an honest node; the price is
that such a device can take up to ``e`` honest nodes out of one round.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ppbfl.chain.pow import bind_commitment
from ppbfl.defense.consistency import check_consistency
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.protocol.parties import device_party
from ppbfl.protocol.registry import PeerRegistry

__all__ = [
    "MISMATCH", "SIGNATURE_BYTES", "CertificateKeys", "DeviceKeys", "Dispute", "RootClaims", "Settlement", "VerifyDisputes", "settle",
    "settle_roots", "sign_upload", "upload_signed", "verify_disputes",
]

SIGNATURE_BYTES = 64
"""An upload signature: ECDSA P-256 over SHA-256, ``r || s`` as two 32-byte big-endian integers."""

DeviceKeys = Callable[[int], ec.EllipticCurvePublicKey | None]
"""Device index -> the public identity key its uploads are signed with (None: not known)."""

MISMATCH = "commitment mismatch"
"""The reason of a device whose upload some node shows not to match its on-chain commitment."""


class CertificateKeys:
    """:data:`DeviceKeys` from certificate files: device ``i``'s key is the public key of
    ``folder/device-<i>.crt``, if the ``registry`` registers that certificate's fingerprint as
    ``device-<i>`` (checked on every lookup, so a revoked device has no key the next time)."""

    def __init__(self, folder: str | os.PathLike, registry: PeerRegistry) -> None:
        self.folder, self.registry = Path(folder), registry
        self._certs: dict[int, tuple[bytes, ec.EllipticCurvePublicKey]] = {}  # device -> (fingerprint, key)

    def __call__(self, device: int) -> ec.EllipticCurvePublicKey | None:
        """Device ``device``'s registered public key, or None (no certificate, not registered, not P-256)."""
        if device not in self._certs:
            path = self.folder / f"{device_party(device)}.crt"
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError):
                return None
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return None
            self._certs[device] = (cert.fingerprint(hashes.SHA256()), key)
        fingerprint, key = self._certs[device]
        identity = self.registry.identify(fingerprint)
        return key if identity is not None and identity.party == device_party(device) else None


def _statement(round: int, device: int, root: bytes) -> bytes:
    return b"ppbfl/upload/v1" + round.to_bytes(8, "big") + device.to_bytes(4, "big") + bytes(root)


def sign_upload(key: ec.EllipticCurvePrivateKey, round: int, device: int, root: bytes) -> bytes:
    """Device ``device``'s signature (:data:`SIGNATURE_BYTES` bytes) of its upload in ``round``: over
    the Merkle ``root`` (32 bytes) of the ``n`` leaves it sends every node. Leaf ``j`` binds node
    ``j``'s share, so one signature per round binds every share the device sent."""
    r, s = decode_dss_signature(key.sign(_statement(round, device, root), ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def upload_signed(key: ec.EllipticCurvePublicKey, round: int, device: int, root: bytes, signature: bytes | None) -> bool:
    """Whether ``signature`` is ``key``'s :func:`sign_upload` of ``root`` for ``(round, device)``."""
    if signature is None or len(signature) != SIGNATURE_BYTES:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, _statement(round, device, root), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Dispute:
    """Edge nodes ``nodes`` speak against device ``device``: ``claim`` says what they say (it becomes
    part of a dropped node's reason) and ``reason`` is the device's reason if the claim stands."""

    device: int
    nodes: tuple[int, ...]
    claim: str
    reason: str


@dataclass(frozen=True)
class Settlement:
    """Outcome of :func:`settle`: ``dropped`` (node -> why it leaves the round) and ``upheld`` (the
    disputes that stand: their devices are out)."""

    dropped: dict[int, str] = field(default_factory=dict)
    upheld: tuple[Dispute, ...] = ()


def settle(disputes: Sequence[Dispute], online: Sequence[int], t: int, budget: int) -> Settlement:
    """Decide ``disputes`` among the ``online`` nodes of a threshold-``t`` round.

    A dispute whose nodes are all dropped (or no longer ``online``: a node named a liar has left)
    no longer excludes its device; nodes not ``online`` are left out of the others. Nodes are dropped one at
    a time, the one in the most open disputes first (ties: the lowest index), while fewer than
    ``budget`` nodes were dropped, at least ``t`` stay online, and the node is in a dispute that
    dropping at most the remaining budget can resolve. A dispute with more than ``budget`` nodes
    stands at once.

    Args:
        disputes: the round's disputes (``nodes`` subsets of ``online``; empty ones are ignored).
        online: the nodes taking part (``k`` of them).
        t: the threshold.
        budget: how many nodes may still be dropped this round (callers pass what is left of
            ``floor((k0 - t) / 2)``, ``k0`` the nodes online when the round's disputes began).
    """
    alive = list(online)
    open_ = [
        Dispute(d.device, tuple(j for j in d.nodes if j in alive), d.claim, d.reason)
        for d in disputes if set(d.nodes) & set(alive)
    ]
    dropped: dict[int, list[Dispute]] = {}
    while len(dropped) < budget and len(alive) - len(dropped) > t:
        left = budget - len(dropped)
        counts = Counter(
            j for d in open_ for j in d.nodes
            if j not in dropped and len(set(d.nodes) - set(dropped)) <= left
        )
        if not counts:
            break
        node = min(counts, key=lambda j: (-counts[j], j))
        dropped[node] = [d for d in open_ if node in d.nodes]
    upheld = tuple(d for d in open_ if not set(d.nodes) <= set(dropped))
    reasons = {}
    for j, against in dropped.items():
        claims: dict[str, list[int]] = {}
        for d in against:
            claims.setdefault(d.claim, []).append(d.device)
        said = "; ".join(f"{claim}: devices {devices[:16]}" for claim, devices in claims.items())
        reasons[j] = f"{said} (disputes nobody can settle: dropped for this round, the devices stay)"
    return Settlement(reasons, upheld)


@dataclass(frozen=True)
class VerifyDisputes:
    """What the verify step's claims come to: ``disputes`` to :func:`settle`, ``proven`` (columns
    whose mismatch a device signature proves: the device is out) and ``liars`` (node -> why: a
    mismatch claim its own evidence refutes)."""

    disputes: list[Dispute]
    proven: list[int]
    liars: dict[int, str]


def verify_disputes(
    round: int, devices: Sequence[int], commitments: Sequence[bytes], claims: Mapping[int, Mapping[int, tuple[bytes, bytes]]],
    points: Sequence[int], consistency: np.ndarray, proof_consistency: np.ndarray, t: int, *,
    device_keys: DeviceKeys | None = None, field: PrimeField = GF61,
) -> VerifyDisputes:
    """The claims of the verify step, one dispute per device at most.

    Args:
        round: the round.
        devices: the verified devices, in column order (m of them), and their on-chain ``commitments``.
        claims: node -> column it reports as not matching its commitment -> its evidence (the root
            of the leaves it holds, the device's signature of that root).
        points: the nodes whose values are the rows of ``consistency`` / ``proof_consistency``.
        consistency, proof_consistency: (k, m) uint64 in ``[0, p)``: each node's consistency value
            of each device's update and of its validity proof.
        t: the threshold (the values are a degree-``(t - 1)`` sharing when everyone is honest).
        device_keys: the devices' identity keys when every node requires signed uploads: a mismatch
            claim is then decided by its evidence (a device signature of a root other than the
            commitment proves it; anything else names the claimant). None: claims are disputes.

    Otherwise a device whose consistency values fail the test but decode within
    ``floor((k - t) / 2)`` errors (:func:`~ppbfl.defense.consistency.check_consistency`'s
    ``suspects``) is disputed by the suspects. Values that do not decode raise no dispute: the
    screen rejects the device.
    """
    points = tuple(int(j) for j in points)
    disputes, proven, liars = [], [], {}
    for k, device in enumerate(devices):
        claimants = tuple(j for j in points if k in claims.get(j, {}))
        if claimants and device_keys is not None:
            key = device_keys(device)
            for j in claimants:
                root, signature = claims[j][k]
                if key is not None and len(root) == 32 and bind_commitment(root, round, device) != commitments[k] and upload_signed(key, round, device, root, signature):
                    proven.append(k)
                else:
                    liars[j] = f"claimed a commitment mismatch of device {device} that its evidence does not show"
            if k in proven:
                continue
        elif claimants:
            disputes.append(Dispute(device, claimants, "claims a commitment mismatch", MISMATCH))
            continue
        for values, claim, reason in (
            (consistency, "consistency value off the device's polynomial", "inconsistent shares"),
            (proof_consistency, "validity-proof consistency value off the device's polynomial", "inconsistent shares: validity proof"),
        ):
            check = check_consistency(values[:, k], t, points=points, field=field)
            if not check.consistent:
                if check.suspects:
                    disputes.append(Dispute(device, check.suspects, claim, reason))
                break
    return VerifyDisputes(disputes, sorted(set(proven)), liars)


@dataclass(frozen=True)
class RootClaims:
    """What :func:`settle_roots` makes of nodes reporting different roots for one device: ``root``
    (the device's: None if it is out, with ``reason``) and ``liars`` (node -> why)."""

    root: bytes | None
    reason: str
    liars: dict[int, str]


def settle_roots(
    round: int, device: int, reports: Mapping[int, tuple[bytes, bytes, bytes]], key: ec.EllipticCurvePublicKey,
) -> RootClaims:
    """The root of ``device``'s upload in ``round`` when, without a ledger, edge nodes report different ones.

    Args:
        round, device: the round and the device.
        reports: node -> (the commitment it reports, as the chain would bind it
            (:func:`~ppbfl.chain.pow.bind_commitment`); the root of the leaves it holds; the device's
            signature of that root, ``b""`` if none), from its ``UploadsReport``.
        key: the device's identity key (every node refuses an upload it did not sign).

    A reported commitment is the device's if the device signed its root for ``(round, device)``
    (:func:`upload_signed`). One signed commitment: it is the device's, and every node that reported
    without the device's signature of it is a liar. Two signed commitments: the device equivocated
    and is out (:data:`MISMATCH`), nobody is named. None: every reporting node is a liar (an honest
    node holds the signature) and the device is out.
    """
    signed = {
        j: bound for j, (bound, root, signature) in reports.items()
        if len(root) == 32 and bind_commitment(root, round, device) == bound and upload_signed(key, round, device, root, signature)
    }
    roots = set(signed.values())
    if len(roots) > 1:
        return RootClaims(None, MISMATCH, {})
    liars = {
        j: f"reported root {bound.hex()[:16]}.. of device {device} in round {round} without the device's signature of it"
        for j, (bound, _, _) in reports.items() if j not in signed
    }
    if not roots:
        return RootClaims(None, "missing upload: no edge node shows the device's signature of the root it reports", liars)
    return RootClaims(roots.pop(), "", liars)
