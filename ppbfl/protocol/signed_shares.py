"""Signed relayed shares: what one edge node sends to its peers through the coordinator is signed by it.

A node's :class:`~ppbfl.protocol.messages.VerifyShares`, (Beaver mode)
:class:`~ppbfl.protocol.messages.NormShares` and (rule ``"flame"``)
:class:`~ppbfl.protocol.messages.GramShares` reach the other nodes inside the coordinator's
:class:`~ppbfl.protocol.messages.AggregateRequest`. Each carries an ECDSA P-256 signature by the
node's TLS key (the key whose certificate the node's PRZS offer carried and its peers checked
against the registry at setup) over a SHA-256 digest of

    domain || kind || setup session || round || node index || H(field_1) || ... || H(field_k)

(``H`` = SHA-256 of a field's little-endian uint64 bytes, length first). Before opening anything a
node checks every point's rows of the request against its signature (:func:`check_relayed`); a
row the relay altered, a reply it attributes to another node, a reply to another verify request
than this node's (each verify signature covers :func:`request_hash`), or a ``rejected`` list that is not
the union of the nodes' signed ``mismatched`` lists is refused with :class:`PeerAuthError`
naming the relay and the node whose value was altered.

The request's rows are what the signatures cover, except in Beaver mode, where a point's
``norm2`` and ``validity`` rows are its ``NormShares`` (its degree-``(t - 1)`` shares of
``||g||^2`` and of ``z``): the request carries the hashes of the verify reply's (unused) ``norm2``
and ``validity`` so that the verify signature can be checked too.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.protocol.errors import PeerAuthError, RequestNotAgreedError
from ppbfl.protocol.messages import AggregateRequest, VerifyRequest
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.round_errors import OutOfPhaseError

__all__ = [
    "check_coins", "check_endorsements", "check_eps_checks", "check_gram", "check_relayed", "coin_digest", "endorse_digest", "eps_check_digest",
    "eps_check_seed", "field_hash", "gram_digest", "norms_digest", "request_hash", "sign", "signed_by", "verifies", "verify_digest",
]

_DOMAIN = b"ppbfl/relayed/v1"


def field_hash(values: np.ndarray | Sequence[int]) -> bytes:
    """SHA-256 of a uint64 vector (its length, then its little-endian bytes): 32 bytes."""
    data = np.ascontiguousarray(np.asarray(values, dtype=np.uint64), dtype="<u8").tobytes()
    return hashlib.sha256(struct.pack(">Q", len(data) // 8) + data).digest()


def _digest(kind: bytes, session: bytes, round: int, index: int, hashed: Sequence[bytes]) -> bytes:
    return hashlib.sha256(_DOMAIN + kind + session + struct.pack(">QI", round, index) + b"".join(hashed)).digest()


def request_hash(request: VerifyRequest) -> bytes:
    """SHA-256 of every field of a :class:`VerifyRequest` but ``endorsers`` and ``endorsements``
    (the nodes' signatures of this hash, :func:`endorse_digest`) (32 bytes): what a node's verify
    signature binds its reply to, so that replies to different requests cannot pass as one round's."""
    h = hashlib.sha256(b"ppbfl/verify-request/v1")
    h.update(request.challenge_seed + field_hash(request.reference) + field_hash(request.devices) + field_hash(request.coin_nodes))
    h.update(struct.pack(">IQ", request.hm, request.zero_counter))
    for item in [*request.commitments, *request.coins, *request.coin_signatures]:
        h.update(struct.pack(">H", len(item)) + bytes(item))
    if request.model.size or request.model_hash:  # FLAME on local models: the global model too
        h.update(b"model" + hashlib.sha256(request.model.astype("<f4").tobytes()).digest() + struct.pack(">H", len(request.model_hash)))
        h.update(bytes(request.model_hash))
    return h.digest()


def verify_digest(
    session: bytes, round: int, index: int, *, consistency: np.ndarray, dot_ref: np.ndarray, norm2_hash: bytes,
    proof_consistency: np.ndarray, validity_hash: bytes, mismatched: Sequence[int], request: bytes,
) -> bytes:
    """The digest node ``index`` signs in its ``VerifyShares`` of ``round`` ((m,) uint64 fields; ``norm2``
    and ``validity`` by their :func:`field_hash`; ``request``: the :func:`request_hash` it answered)."""
    hashed = [field_hash(consistency), field_hash(dot_ref), norm2_hash, field_hash(proof_consistency), validity_hash, field_hash(mismatched), request]
    return _digest(b"verify/v2", session, round, index, hashed)


def norms_digest(session: bytes, round: int, index: int, *, norm2: np.ndarray, validity: np.ndarray) -> bytes:
    """The digest node ``index`` signs in its ``NormShares`` of ``round`` ((m,) uint64 each)."""
    return _digest(b"norms/v2", session, round, index, [field_hash(norm2), field_hash(validity)])


def coin_digest(session: bytes, round: int, index: int, coin: bytes) -> bytes:
    """The digest node ``index`` signs in its ``UploadsReport`` of ``round`` (its 32-byte proof-check ``coin``)."""
    return _digest(b"coin", session, round, index, [hashlib.sha256(coin).digest()])


def endorse_digest(session: bytes, round: int, index: int, request: bytes) -> bytes:
    """The digest node ``index`` signs in its ``RequestEndorsement`` of ``round``: the 32-byte
    :func:`request_hash` of the one verify request it answers in the round."""
    return _digest(b"endorse", session, round, index, [request])


def check_endorsements(
    nodes: Sequence[int], signatures: Sequence[bytes], *, request: bytes, session: bytes, round: int,
    keys: Mapping[int, ec.EllipticCurvePublicKey], relay: str,
) -> set[int]:
    """Check every relayed endorsement of ``request`` (a :func:`request_hash`) in ``round``; the
    set of nodes that endorsed it.

    Raises:
        RequestNotAgreedError: naming ``relay`` and the field ``endorsements``: the lists differ in
            length, a node repeats, or a signature is not that node's over this hash and round
            (forged, or replayed from another request or round).
    """
    if len(nodes) != len(signatures) or len(set(nodes)) != len(nodes):
        raise RequestNotAgreedError(relay, "endorsements", round, f"{len(signatures)} signatures of nodes {list(nodes)[:8]} (one per distinct node expected)")
    for j, signature in zip(nodes, signatures):
        if not signed_by(keys, j, signature, endorse_digest(session, round, j, request)):
            raise RequestNotAgreedError(relay, "endorsements", round, f"relayed an endorsement of {edge_party(j)} that it did not sign for this request")
    return set(nodes)


def gram_digest(session: bytes, round: int, index: int, gram: np.ndarray) -> bytes:
    """The digest node ``index`` signs in its ``GramShares`` of ``round`` ((m (m - 1) / 2,) uint64)."""
    return _digest(b"gram", session, round, index, [field_hash(gram)])


def check_gram(
    points: Sequence[int], gram: np.ndarray, signatures: Sequence[bytes], *, session: bytes, round: int,
    keys: Mapping[int, ec.EllipticCurvePublicKey], relay: str, me: str,
) -> None:
    """Check every point's relayed Gram row ((k, pairs) uint64) against its signature.

    Raises :class:`PeerAuthError` naming ``relay`` on a bad signature; :class:`OutOfPhaseError`
    (``me``) when the signatures do not match the rows in number."""
    if len(signatures) != len(points) or gram.shape[0] != len(points):
        raise OutOfPhaseError(me, f"flame aggregate request: {len(signatures)} Gram signatures, {gram.shape[0]} rows for {len(points)} points")
    for row, j in enumerate(points):
        if not signed_by(keys, j, signatures[row], gram_digest(session, round, j, gram[row])):
            raise PeerAuthError(relay, f"relayed Gram shares of {edge_party(j)} that it did not sign (altered)")


def eps_check_seed(session: bytes, round: int, devices: Sequence[int], eps: np.ndarray, proof_eps: np.ndarray) -> bytes:
    """The 32-byte seed of a Beaver round's eps check (:func:`ppbfl.mpc.beaver.masked_projections`):
    a hash of the setup session, the round, the devices the node's ``BeaverOpen`` named (in its
    order) and the relayed ``eps``, ``proof_eps`` (so it is fixed after them, every node that got
    the same values derives the same seed, and a node sent another device order than its peers
    signs checks its peers refuse)."""
    order = np.asarray(list(devices), dtype=np.uint64)
    return _digest(b"eps-check-seed/v2", session, round, 0, [field_hash(order), field_hash(eps), field_hash(proof_eps)])


def eps_check_digest(session: bytes, round: int, index: int, *, seed: bytes, checks: np.ndarray) -> bytes:
    """The digest node ``index`` signs in its ``EpsCheck`` of ``round`` (``seed``: the
    :func:`eps_check_seed` of the eps it was sent; ``checks``: (m,) uint64)."""
    return _digest(b"eps-check", session, round, index, [seed, field_hash(checks)])


def check_eps_checks(
    points: Sequence[int], checks: np.ndarray, signatures: Sequence[bytes], *, session: bytes, round: int, seed: bytes,
    keys: Mapping[int, ec.EllipticCurvePublicKey], relay: str, me: str,
) -> None:
    """Check every point's relayed eps-check row ((k, m) uint64) against its signature over ``seed``
    (this node's :func:`eps_check_seed`: a node sent other eps fails here).

    Raises :class:`PeerAuthError` naming ``relay`` on a bad signature; :class:`OutOfPhaseError`
    (``me``) when points, rows and signatures do not match in number or points repeat."""
    if len(signatures) != len(points) or checks.shape[0] != len(points) or len(set(points)) != len(points):
        raise OutOfPhaseError(me, f"beaver finish: {len(signatures)} check signatures, {checks.shape[0]} rows for points {list(points)[:8]}")
    for row, j in enumerate(points):
        if not signed_by(keys, j, signatures[row], eps_check_digest(session, round, j, seed=seed, checks=checks[row])):
            raise PeerAuthError(relay, f"relayed eps checks of {edge_party(j)} that it did not sign for the eps it sent this node")


def sign(key: ec.EllipticCurvePrivateKey, digest: bytes) -> bytes:
    """ECDSA P-256 (SHA-256, DER) signature of ``digest`` by ``key``."""
    return key.sign(digest, ec.ECDSA(hashes.SHA256()))


def verifies(key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` (DER, any bytes) is ``key``'s ECDSA P-256 signature of ``digest``: the
    one check every relayed value gets, at the coordinator before it relays and at the peers."""
    try:
        key.verify(signature, digest, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def signed_by(keys: Mapping[int, ec.EllipticCurvePublicKey], j: int, signature: bytes, digest: bytes) -> bool:
    """Whether node ``j`` has a key in ``keys`` and ``signature`` is its signature of ``digest`` (:func:`verifies`)."""
    key = keys.get(j)
    return key is not None and verifies(key, signature, digest)


def check_coins(
    nodes: Sequence[int], coins: Sequence[bytes], signatures: Sequence[bytes], *, session: bytes, round: int,
    keys: Mapping[int, ec.EllipticCurvePublicKey], relay: str,
) -> None:
    """Check every relayed proof-check coin against its node's signature (PeerAuthError naming ``relay``)."""
    for j, coin, signature in zip(nodes, coins, signatures, strict=True):
        if not signed_by(keys, j, signature, coin_digest(session, round, j, coin)):
            raise PeerAuthError(relay, f"relayed a proof-check coin of {edge_party(j)} that it did not sign")


def check_relayed(
    request: AggregateRequest, *, session: bytes, round: int, keys: Mapping[int, ec.EllipticCurvePublicKey], relay: str,
    me: str, columns: Sequence[int], verified: bytes,
) -> None:
    """Check every point's relayed rows of ``request`` against its node's signatures (see module docstring).

    ``verified``: the :func:`request_hash` of the verify request this node answered: every point's
    signature must be over the same one (a relay that sent the nodes different verify requests is
    refused here, after the fact).

    ``keys``: node index -> its signing key (from the setup); ``columns``: Beaver mode, the positions
    (in the request's device order) of the devices that got triples: the nodes signed their
    ``NormShares`` over those, the other positions must be 0. Raises :class:`PeerAuthError` naming
    ``relay`` on a bad signature or a signed mismatch missing from ``rejected``;
    :class:`OutOfPhaseError` (``me``) on malformed lists.
    """
    k = len(request.points)
    beaver = len(request.norm_signatures) > 0
    if not len(request.verify_signatures) == len(request.verify_norm2) == len(request.mismatched_by) == k:
        raise OutOfPhaseError(me, f"aggregate request: signatures, norm2 hashes and mismatched lists for {k} points expected")
    m = request.consistency.shape[1] if request.consistency.ndim == 2 else 0
    for name in ("consistency", "dot_ref", "norm2", "proof_consistency", "validity"):
        if getattr(request, name).shape != (k, m):
            raise OutOfPhaseError(me, f"aggregate request field {name!r}: shape {getattr(request, name).shape}, expected ({k}, {m})")
    if beaver and not len(request.norm_signatures) == len(request.verify_validity) == k:
        raise OutOfPhaseError(me, f"aggregate request: Beaver mode needs {k} norm signatures and {k} verify validity hashes")
    for row, j in enumerate(request.points):
        key = keys.get(j)
        if key is None:
            raise PeerAuthError(relay, f"relayed shares of {edge_party(j)}, which took no part in the setup")
        if beaver:
            validity_hash = request.verify_validity[row]
            others = np.ones(m, dtype=bool)
            others[list(columns)] = False
            norms = norms_digest(session, round, j, norm2=request.norm2[row][list(columns)], validity=request.validity[row][list(columns)])
            if request.norm2[row][others].any() or request.validity[row][others].any() or not verifies(key, request.norm_signatures[row], norms):
                raise PeerAuthError(relay, f"relayed norm shares of {edge_party(j)} that it did not sign (altered)")
        elif field_hash(request.norm2[row]) != request.verify_norm2[row]:
            raise PeerAuthError(relay, f"relayed norm2 shares of {edge_party(j)} that it did not sign (altered)")
        else:
            validity_hash = field_hash(request.validity[row])
        digest = verify_digest(
            session, round, j, consistency=request.consistency[row], dot_ref=request.dot_ref[row], norm2_hash=request.verify_norm2[row],
            proof_consistency=request.proof_consistency[row], validity_hash=validity_hash, mismatched=request.mismatched_by[row],
            request=verified,
        )
        if not verifies(key, request.verify_signatures[row], digest):
            raise PeerAuthError(relay, f"relayed verify shares of {edge_party(j)} that it did not sign (altered)")
    hidden = sorted({position for lists in request.mismatched_by for position in lists} - set(request.rejected))
    if hidden:
        raise PeerAuthError(relay, f"left devices at positions {hidden[:8]} out of 'rejected' that a node signed as mismatched")
