"""The messages of a ppbfl round (DESIGN §8): schema, version and validation live in :mod:`.wire`.

Flow of round ``r`` (``m`` devices, edge nodes ``1..n``, threshold ``t``, vector length ``d``):

1. once, the setup: coordinator -> edge node :class:`SetupEdge` (index, parameters, session) ->
   :class:`PRZSOffer` (the node's X25519 key, signed by its TLS key); :class:`PRZSPeers` (every
   offer, relayed) -> :class:`PRZSSealed` (the PRZS set keys it draws, sealed per member);
   :class:`PRZSDeliver` (the keys sealed for it) -> :class:`Ack` (:mod:`.przs_setup`).
2. device -> edge node ``j``: :class:`DeviceUpload` (its share vector or PRG seed, its share of the
   consistency mask, and the ``n`` leaf hashes whose Merkle root the device committed on chain);
   each device sends its own, over its own channel. Then coordinator -> edge node:
   :class:`UploadsQuery` -> :class:`UploadsReport` (which devices delivered, with the commitment
   root of what each delivered): the coordinator learns who committed from the chain and who
   delivered from the edge nodes, never from a device.
3. coordinator -> edge node: :class:`VerifyRequest` (challenge seed fixed on chain after the
   commitments, encoded public reference, device list) -> :class:`VerifyShares` (per device: the
   consistency value, the share of ``<g, r>``, and -- honest-majority mode -- the re-randomised
   share of ``||g||^2``). With nodes that hold a request quorum, first coordinator -> edge node
   :class:`EndorseRequest` (the request's hash) -> :class:`RequestEndorsement`, relayed inside the
   :class:`VerifyRequest`.
4. Beaver mode only (fewer than ``2t - 1`` edge nodes online): dealer -> edge node
   :class:`TripleShares`; coordinator -> edge node :class:`BeaverOpen` -> :class:`BeaverMasked`
   (shares of ``g - a``), :class:`BeaverCheck` (opened ``g - a``) -> :class:`EpsCheck` (signed
   projections of the node's own shares), then :class:`BeaverFinish` (every node's checks) ->
   :class:`NormShares`
   (rule ``"flame"``: the triples come with their pair products, and :class:`GramRequest` is then
   answered from them).
5. coordinator -> edge node: :class:`AggregateRequest` (every online node's scalar shares, the
   public trust scores) -> :class:`AggregateShare` (the node's own opening of the scalars, its
   decisions, and its share of ``sum_i enc(w_i c_i) g_i``, which it commits on chain and which
   anyone can audit against the posted aggregate).
6. with a chain and a trust keeper, after the round: coordinator -> edge node :class:`TrustQuery`
   (the chain, the devices' commitments) -> :class:`TrustVoteReply` (the node's own trust update
   of the round and its kind-4 signature, which the coordinator relays to ``commitTrust``).
   A node that missed anchored rounds answers :class:`TrustBehind` (its latest trust round); the
   coordinator relays each missed round as :class:`TrustCatchUp` (its records and the ``t``
   kind-4 signatures ``commitTrust`` took) -> :class:`Ack`, then asks again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np

from ppbfl.defense.decision import REASON_CODES, DeviceDecision
from ppbfl.protocol.wire import (
    Array,
    Bool,
    Bytes,
    FieldArray,
    Float,
    ListOf,
    Message,
    Text,
    UInt,
    register,
)

__all__ = [
    "Ack",
    "AggregateRecall",
    "AggregateRequest",
    "AggregateShare",
    "BeaverCheck",
    "BeaverFinish",
    "BeaverMasked",
    "BeaverOpen",
    "DeviceUpload",
    "EndorseRequest",
    "EpsCheck",
    "FlameAggregateRequest",
    "GramRequest",
    "GramShares",
    "NormShares",
    "PRZSDeliver",
    "PRZSOffer",
    "PRZSPeers",
    "PRZSSealed",
    "RecalledRound",
    "ProofUpload",
    "RequestEndorsement",
    "SetupEdge",
    "TripleRequest",
    "TripleShares",
    "IDS_REPORT_MAX_BYTES",
    "IdsReportQuery",
    "IdsReportReply",
    "TrustBehind",
    "TrustCatchUp",
    "TrustQuery",
    "TrustVoteReply",
    "UploadsQuery",
    "UploadsReport",
    "VerifyRequest",
    "VerifyShares",
]

Hash = Annotated[bytes, Bytes(length=32)]
Count = Annotated[int, UInt(bits=32)]
Word = Annotated[int, UInt(bits=64)]
MAX_PROOF_LENGTH = 256 * 61
"""Longest validity proof: ``k <= 256`` projections of at most 61 bits."""
MAX_EDGE_LIST = 64
"""Most edge nodes a setup message lists (the tier has at most 31)."""
MAX_CERT_BYTES = 8192
MAX_SIGNATURE_BYTES = 80
"""A DER ECDSA P-256 signature has at most 72 bytes."""
SEALED_KEY_BYTES = 12 + 32 + 16
"""A sealed PRZS set key: nonce, key, Poly1305 tag (:data:`ppbfl.protocol.przs_setup.SEALED_BYTES`)."""
MAX_SEALED_KEYS = 1 << 17
"""Most sealed keys in one message (a node in at most 4096 sets of at most 31 members)."""
MAX_DEVICES = 1 << 16
"""Most devices a round lists."""
IDS_REPORT_MAX_BYTES = 101 + 6 * MAX_DEVICES
"""Largest encoded IDS report (:func:`ppbfl.trust.ids_reports.report_to_bytes`): one pair per device."""
LANES = 16
"""Q1.15 trust scores per on-chain storage word (:class:`ppbfl.chain.votes.TrustVote`)."""


@register
@dataclass(frozen=True)
class Ack(Message):
    """A plain acknowledgement; ``note`` says what was done."""

    KIND: ClassVar[str] = "ack"
    VERSION: ClassVar[int] = 1
    note: Annotated[str, Text(max_len=200)]


@register
@dataclass(frozen=True)
class SetupEdge(Message):
    """Make the receiver edge node ``index`` of a ``(t, n)`` tier for length-``d`` updates.

    ``validity_k``: the number of random projections of the input-validity check
    (:mod:`ppbfl.defense.validity`; the node refuses fewer than ``MIN_ROWS``). ``session``: a fresh
    id of this setup, which the node's PRZS offer (the reply, :class:`PRZSOffer`) signs: the PRZS
    keys are agreed among the nodes (:mod:`ppbfl.protocol.przs_setup`), none travels here.
    """

    KIND: ClassVar[str] = "setup_edge"
    VERSION: ClassVar[int] = 6
    index: Count
    t: Count
    n: Count
    d: Count
    frac_bits: Annotated[int, UInt(max=40)]
    tau: Annotated[float, Float()]
    validity_k: Annotated[int, UInt(max=256)]
    session: Hash
    rule: Annotated[str, Text(max_len=16)] = "cosine"
    """The round's public decision rule: ``"cosine"`` (DESIGN §5) or ``"flame"`` (the node then
    answers :class:`GramRequest` and :class:`FlameAggregateRequest`, and refuses
    :class:`AggregateRequest`; it refuses the other kind under ``"cosine"``)."""
    flame_noise: Annotated[float, Float()] = 0.0
    """Rule ``"flame"``: the noise level ``lambda`` (>= 0); each node adds its share of Gaussian
    noise ``N(0, (lambda S)^2)`` to the aggregate (:mod:`ppbfl.defense.flame_noise`)."""
    rescale: Annotated[bool, Bool()] = False
    """Rule ``"cosine"``: FLTrust's norm rescaling, each accepted update weighted by
    ``w_i ||r|| / ||g_i||`` instead of ``w_i min(1, ||r|| / ||g_i||)`` (from the opened norms: no
    further opening; :func:`ppbfl.protocol.verification.open_and_decide`)."""
    flame_space: Annotated[str, Text(max_len=16)] = "updates"
    """Rule ``"flame"``: what is clustered, ``"updates"`` (the updates ``g_i``) or ``"models"`` (the
    local models ``G + g_i``, as in the FLAME paper: the verify request then carries the public
    global model ``G`` and the node opens ``<G, g_i>`` as ``dot_ref``; docs/flame.md)."""


@register
@dataclass(frozen=True)
class PRZSOffer(Message):
    """Edge node -> coordinator (reply to :class:`SetupEdge`): its fresh X25519 ``public_key``, its TLS
    ``certificate`` (PEM) and ``signature``, ECDSA P-256 (DER) by its TLS key over the session, its
    index, ``t``, ``n`` and the public key (:func:`ppbfl.protocol.przs_setup.offer_payload`)."""

    KIND: ClassVar[str] = "przs_offer"
    VERSION: ClassVar[int] = 1
    public_key: Annotated[bytes, Bytes(length=32)]
    certificate: Annotated[bytes, Bytes(max_len=MAX_CERT_BYTES)]
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]


@register
@dataclass(frozen=True)
class PRZSPeers(Message):
    """Coordinator -> edge node: every online node's :class:`PRZSOffer`, relayed (``indices``
    ascending, and per node its ``public_keys``, ``certificates``, ``signatures``). The node checks
    each against the registry and answers :class:`PRZSSealed`."""

    KIND: ClassVar[str] = "przs_peers"
    VERSION: ClassVar[int] = 1
    indices: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_EDGE_LIST)]
    public_keys: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=MAX_EDGE_LIST)]
    certificates: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_CERT_BYTES), max_len=MAX_EDGE_LIST)]
    signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=MAX_EDGE_LIST)]


@register
@dataclass(frozen=True)
class PRZSSealed(Message):
    """Edge node -> coordinator: the keys of the PRZS sets it leads, sealed per member: the k-th
    ciphertext (nonce, ChaCha20-Poly1305 of the 32-byte key, tag) is for set ``sets[k]`` (bitmask)
    and node ``recipients[k]``."""

    KIND: ClassVar[str] = "przs_sealed"
    VERSION: ClassVar[int] = 1
    sets: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_SEALED_KEYS)]
    recipients: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_SEALED_KEYS)]
    ciphertexts: Annotated[list[bytes], ListOf(Bytes(length=SEALED_KEY_BYTES), max_len=MAX_SEALED_KEYS)]


@register
@dataclass(frozen=True)
class PRZSDeliver(Message):
    """Coordinator -> edge node: the sealed keys addressed to it (the k-th for set ``sets[k]``, sealed
    by node ``senders[k]``); the node answers :class:`Ack` once it holds the keys of all its sets."""

    KIND: ClassVar[str] = "przs_deliver"
    VERSION: ClassVar[int] = 1
    sets: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_SEALED_KEYS)]
    senders: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_SEALED_KEYS)]
    ciphertexts: Annotated[list[bytes], ListOf(Bytes(length=SEALED_KEY_BYTES), max_len=MAX_SEALED_KEYS)]


@register
@dataclass(frozen=True)
class DeviceUpload(Message):
    """Device ``device``'s upload to one edge node for the envelope's round.

    Exactly one of ``share`` ((d,) uint64 < p) and ``seed`` (32 bytes, expanded with PRG stream
    ``stream``) is set. ``mask_share``: the node's share of the consistency mask ``rho``.
    ``leaves``: the ``n`` leaf hashes of the device's on-chain commitment (leaf ``j - 1`` is node ``j``'s).
    ``signature``: the device's signature of the leaves' root (:func:`ppbfl.protocol.attribution.sign_upload`),
    or None from a device without an identity key.
    """

    KIND: ClassVar[str] = "device_upload"
    VERSION: ClassVar[int] = 2
    device: Count
    share: Annotated[np.ndarray | None, FieldArray(ndim=1, length="d")]
    seed: Annotated[bytes | None, Bytes(length=32)]
    stream: Word
    mask_share: Annotated[int, UInt(bits=64)]
    leaves: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]
    signature: Annotated[bytes | None, Bytes(length=64)] = None


@register
@dataclass(frozen=True)
class ProofUpload(Message):
    """Device ``device``'s validity proof to one edge node for the envelope's round (sent after the
    challenge seed is fixed): its shares of the ``K`` proof bits (``bits``, (K,) uint64) and of a
    fresh mask for their consistency test (``mask_share``)."""

    KIND: ClassVar[str] = "proof_upload"
    VERSION: ClassVar[int] = 1
    device: Count
    bits: Annotated[np.ndarray, FieldArray(ndim=1)]
    mask_share: Annotated[int, UInt(bits=64)]


@register
@dataclass(frozen=True)
class UploadsQuery(Message):
    """Coordinator -> edge node: report the uploads held for the envelope's round (at most ``limit`` devices)."""

    KIND: ClassVar[str] = "uploads_query"
    VERSION: ClassVar[int] = 1
    limit: Annotated[int, UInt(max=1 << 16)]


@register
@dataclass(frozen=True)
class UploadsReport(Message):
    """Edge node -> coordinator: ``devices`` whose upload it stored (ascending) and, for each, the
    Merkle ``roots`` of the leaves that came with it (what the device must have committed);
    ``proofs``: devices whose validity proof it stored (ascending). The node closes the round's
    proofs when it answers and draws its ``coin`` (32 random bytes) for the proof checks, which it
    signs (``coin_signature``, :func:`ppbfl.protocol.signed_shares.coin_digest`): its peers get the
    coin through the coordinator. ``upload_roots``, ``upload_signatures``: for each of ``devices``,
    the root of the leaves itself (``roots`` binds it to the round and device,
    :func:`ppbfl.chain.pow.bind_commitment`) and the device's signature of it
    (:func:`ppbfl.protocol.attribution.sign_upload`, ``b""`` if none came with the upload): without a
    ledger the coordinator settles nodes reporting different roots by them (``Coordinator._members``)."""

    KIND: ClassVar[str] = "uploads_report"
    VERSION: ClassVar[int] = 4
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    roots: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)]
    proofs: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    coin: Hash
    coin_signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]
    upload_roots: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)] = dataclasses.field(default_factory=list)
    upload_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=64), max_len=1 << 16)] = dataclasses.field(default_factory=list)


@register
@dataclass(frozen=True)
class VerifyRequest(Message):
    """Compute the verification scalars' shares of ``devices`` (in this order).

    ``challenge_seed``: fixed on chain after the commitments; ``reference``: the public reference
    update encoded under the no-wrap bound ((d,) uint64); ``commitments``: each device's on-chain
    share commitment (the node compares it with the root of the leaves it received); ``hm``: also return honest-majority
    shares of ``||g||^2`` and of the validity value (PRZS counter ``zero_counter``, which must be the
    round: one verify reply per node and round, a retry gets the same one);
    ``coin_nodes``, ``coins``, ``coin_signatures``: the nodes' signed coins for the proof checks
    (each node finds its own and checks the others' signatures; at least ``t`` are needed).
    ``model``, ``model_hash``: rule ``"flame"`` on local models, or rule ``"cosine"`` when the
    coordinator's caller gives the model (else empty): the round's
    public global model ``G`` ((d,) float32) and the announced model hash (keccak-256 of its
    float32 bytes, :meth:`ppbfl.protocol.ledger.ChainLedger.model_hash`); the node checks that
    ``G`` has that hash and, FLAME, that ``reference`` is ``G``'s encoding
    (:func:`ppbfl.protocol.flame_decision.check_global_model`), cosine with a reference source,
    that ``reference`` is within its tolerance of its own reference from ``G``
    (:meth:`ppbfl.protocol.edge_node.EdgeNode._check_reference`).
    ``endorsers``, ``endorsements``: the nodes that endorsed this request's hash for the round and
    their :class:`RequestEndorsement` signatures (not covered by the hash, which they sign); a node
    with a request quorum answers only with enough of them (:class:`EndorseRequest`).
    """

    KIND: ClassVar[str] = "verify_request"
    VERSION: ClassVar[int] = 5
    challenge_seed: Hash
    reference: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    commitments: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)]
    hm: Annotated[int, UInt(max=1)]
    zero_counter: Word
    coin_nodes: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    coins: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]
    coin_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=1024)]
    model: Annotated[np.ndarray, Array(dtype="<f4", ndim=1)] = dataclasses.field(default_factory=lambda: np.zeros(0, dtype="<f4"))
    model_hash: Annotated[bytes, Bytes(max_len=32)] = b""
    endorsers: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_EDGE_LIST)] = dataclasses.field(default_factory=list, kw_only=True)
    endorsements: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=MAX_EDGE_LIST)] = dataclasses.field(
        default_factory=list, kw_only=True,
    )


@register
@dataclass(frozen=True)
class EndorseRequest(Message):
    """Coordinator -> edge node, before the :class:`VerifyRequest` of the envelope's round: endorse
    its ``request_hash`` (:func:`ppbfl.protocol.signed_shares.request_hash`) as the one verify
    request this node answers in the round. The node endorses one hash per round (asked again for
    it: the same signature; another: refused) and answers :class:`RequestEndorsement`. Nodes
    without a chain view that have a request quorum (:attr:`ppbfl.protocol.edge_node.EdgeNode.request_quorum`)
    answer a verify request only when it carries enough endorsements of its hash (docs/security.md)."""

    KIND: ClassVar[str] = "endorse_request"
    VERSION: ClassVar[int] = 1
    request_hash: Hash


@register
@dataclass(frozen=True)
class RequestEndorsement(Message):
    """Edge node -> coordinator, the reply to :class:`EndorseRequest`: its ECDSA P-256 ``signature``
    by its TLS key over the setup session, the round, its index and the request hash
    (:func:`ppbfl.protocol.signed_shares.endorse_digest`), which the coordinator relays to every
    node inside the :class:`VerifyRequest`."""

    KIND: ClassVar[str] = "request_endorsement"
    VERSION: ClassVar[int] = 1
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]


@register
@dataclass(frozen=True)
class VerifyShares(Message):
    """One node's shares for :class:`VerifyRequest`'s devices: (m,) uint64 each.

    ``consistency``: ``<lambda, g_j> + rho_j``; ``dot_ref``: share of ``<g, r>`` (degree ``t - 1``);
    ``norm2``: re-randomised share of ``||g||^2`` (degree ``2(t - 1)``), empty unless ``hm``;
    ``mismatched``: positions of devices whose uploaded leaves do not match their on-chain commitment;
    ``proof_consistency``: ``<alpha, b_j> + mu_j`` of the proof bits; ``validity``: share of the
    validity value ``z`` (re-randomised, degree ``2(t - 1)``) if ``hm``, else empty (Beaver mode:
    ``z`` comes in :class:`NormShares`). ``signature``: the node's ECDSA signature
    over all of these (:func:`ppbfl.protocol.signed_shares.verify_digest`): its peers check it when
    the coordinator relays them. ``evidence_roots``, ``evidence_signatures``: for each
    ``mismatched`` position, the root of the leaves the node holds and the device's signature of it
    (``b""`` if none came with the upload): anyone can check the claim (they are not under the
    node's signature: only the coordinator uses them, and a device signature cannot be forged).
    """

    KIND: ClassVar[str] = "verify_shares"
    VERSION: ClassVar[int] = 5
    consistency: Annotated[np.ndarray, FieldArray(ndim=1)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=1)]
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    proof_consistency: Annotated[np.ndarray, FieldArray(ndim=1)]
    validity: Annotated[np.ndarray, FieldArray(ndim=1)]
    mismatched: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]
    evidence_roots: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)] = dataclasses.field(default_factory=list)
    evidence_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=64), max_len=1 << 16)] = dataclasses.field(default_factory=list)


@register
@dataclass(frozen=True)
class TripleRequest(Message):
    """Coordinator -> dealer: deal ``count`` square triples of length ``d`` and ``count`` of length
    ``proof_length`` (the validity proofs' bits) to ``nodes``; ``pairs`` (rule ``"flame"``): also
    the pair products ``<a_r, a_s>``, ``r < s``, of the length-``d`` triples (FLAME's Gram matrix)."""

    KIND: ClassVar[str] = "triple_request"
    VERSION: ClassVar[int] = 3
    count: Count
    proof_length: Annotated[int, UInt(max=MAX_PROOF_LENGTH)]
    nodes: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    pairs: Annotated[bool, Bool()] = False


@register
@dataclass(frozen=True)
class TripleShares(Message):
    """Dealer -> edge node: its shares of ``count`` square triples: ``a`` (count, d), ``c`` (count,),
    and of ``count`` for the proofs: ``proof_a`` (count, K), ``proof_c`` (count,); ``pairs``: its
    shares of ``<a_r, a_s>`` for ``r < s`` (count (count - 1) / 2, row-major upper triangle) when the
    request asked for them, else empty."""

    KIND: ClassVar[str] = "triple_shares"
    VERSION: ClassVar[int] = 3
    a: Annotated[np.ndarray, FieldArray(ndim=2)]
    c: Annotated[np.ndarray, FieldArray(ndim=1)]
    proof_a: Annotated[np.ndarray, FieldArray(ndim=2)]
    proof_c: Annotated[np.ndarray, FieldArray(ndim=1)]
    pairs: Annotated[np.ndarray, FieldArray(ndim=1)] = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


@register
@dataclass(frozen=True)
class BeaverOpen(Message):
    """Return shares of ``eps_i = g_i - a_i`` for ``devices`` (triple ``k`` for the ``k``-th device)."""

    KIND: ClassVar[str] = "beaver_open"
    VERSION: ClassVar[int] = 1
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]


@register
@dataclass(frozen=True)
class BeaverMasked(Message):
    """Shares of ``g_i - a_i``: (m, d) uint64, and of ``rho' b_i - a'_i``: (m, K) uint64."""

    KIND: ClassVar[str] = "beaver_masked"
    VERSION: ClassVar[int] = 2
    eps: Annotated[np.ndarray, FieldArray(ndim=2)]
    proof_eps: Annotated[np.ndarray, FieldArray(ndim=2)]


@register
@dataclass(frozen=True)
class BeaverCheck(Message):
    """Coordinator -> edge node, after :class:`BeaverMasked`: the ``eps`` ((m, d) uint64) and
    ``proof_eps`` ((m, K) uint64) the coordinator opened for :class:`BeaverOpen`'s devices. The node
    answers one per round with its :class:`EpsCheck`; nothing is computed from them yet."""

    KIND: ClassVar[str] = "beaver_check"
    VERSION: ClassVar[int] = 1
    eps: Annotated[np.ndarray, FieldArray(ndim=2)]
    proof_eps: Annotated[np.ndarray, FieldArray(ndim=2)]


@register
@dataclass(frozen=True)
class EpsCheck(Message):
    """Edge node -> coordinator: per opened device ``r``, ``<eps_r, rho> + <proof_eps_r, rho'>`` of
    the node's **own** shares of ``g_r - a_r`` and ``rho' b_r - a'_r`` (the ones it sent in
    :class:`BeaverMasked`), ``rho, rho'`` expanded from a hash of the :class:`BeaverCheck`'s
    ``eps`` and ``proof_eps`` ((m,) uint64), and its ``signature`` over them and that hash
    (:func:`ppbfl.protocol.signed_shares.eps_check_digest`)."""

    KIND: ClassVar[str] = "eps_check"
    VERSION: ClassVar[int] = 1
    checks: Annotated[np.ndarray, FieldArray(ndim=1)]
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]


@register
@dataclass(frozen=True)
class BeaverFinish(Message):
    """Finish the Beaver products with the ``eps``, ``proof_eps`` of the node's :class:`BeaverCheck`
    (not sent again): every ``points``' :class:`EpsCheck`, ``checks`` (k, m) uint64 and
    ``check_signatures``. The node checks the signatures, opens the checks robustly and compares
    them with its checked ``eps``, ``proof_eps`` before it computes anything from them: an ``eps``
    that is not the opening of the nodes' shares is refused."""

    KIND: ClassVar[str] = "beaver_finish"
    VERSION: ClassVar[int] = 3
    points: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    checks: Annotated[np.ndarray, FieldArray(ndim=2)]
    check_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=1024)]


@register
@dataclass(frozen=True)
class NormShares(Message):
    """Degree-``(t - 1)`` shares from Beaver triples, (m,) uint64 each: ``||g_i||^2`` and the validity
    value ``z_i`` (the verify's linear part minus the Beaver square ``||rho' b_i||^2``: the node never
    sends either part alone), and the node's ``signature`` over both
    (:func:`ppbfl.protocol.signed_shares.norms_digest`)."""

    KIND: ClassVar[str] = "norm_shares"
    VERSION: ClassVar[int] = 4
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    validity: Annotated[np.ndarray, FieldArray(ndim=1)]
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]


@register
@dataclass(frozen=True)
class AggregateRequest(Message):
    """Open the scalars, decide, and return this node's aggregate share.

    ``points``: the online nodes whose shares follow, in row order; ``consistency``, ``dot_ref``,
    ``norm2``: (k, m) uint64 share matrices (row = node, column = device of the verify request);
    ``norm2_degree``: ``2(t - 1)`` (honest majority) or ``t - 1`` (Beaver); ``trust``: (m,)
    float64 public trust scores in ``[0, 1]``; ``rejected``: positions of devices some node
    reported as not matching their commitment (rejected by everyone, scalars not opened);
    ``proof_consistency``, ``validity``: (k, m) share matrices of the validity proofs' consistency
    values and of ``z`` (degree ``norm2_degree``).

    What lets each node check the rows against their nodes' signatures
    (:mod:`ppbfl.protocol.signed_shares`), per point: ``verify_signatures`` (its ``VerifyShares``
    signature), ``verify_norm2`` (SHA-256 of that reply's ``norm2``), ``mismatched_by`` (its
    ``mismatched`` list); Beaver mode only (else empty): ``norm_signatures`` (its ``NormShares``
    signature; its ``norm2`` and ``validity`` rows are that reply's) and ``verify_validity``
    (SHA-256 of its ``VerifyShares.validity``, which the ``validity`` row then replaces).

    The chain the node signs its votes for (keyword-only): ``chain_contract``, the 20-byte address
    of the round contract, and ``chain_id``; empty and 0 when the deployment has no ledger (the
    node then signs nothing). A wrong context only makes the node's signatures useless on chain.
    """

    KIND: ClassVar[str] = "aggregate_request"
    VERSION: ClassVar[int] = 5
    points: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    consistency: Annotated[np.ndarray, FieldArray(ndim=2)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=2)]
    norm2: Annotated[np.ndarray, FieldArray(ndim=2)]
    norm2_degree: Count
    trust: Annotated[np.ndarray, Array(dtype="<f8", ndim=1)]
    rejected: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    proof_consistency: Annotated[np.ndarray, FieldArray(ndim=2)]
    validity: Annotated[np.ndarray, FieldArray(ndim=2)]
    verify_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=1024)]
    verify_norm2: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]
    mismatched_by: Annotated[list[list[int]], ListOf(ListOf(UInt(bits=32), max_len=1 << 16), max_len=1024)]
    norm_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=1024)]
    verify_validity: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]
    chain_contract: Annotated[bytes, Bytes(max_len=20)] = dataclasses.field(default=b"", kw_only=True)
    chain_id: Word = dataclasses.field(default=0, kw_only=True)


@register
@dataclass(frozen=True)
class AggregateShare(Message):
    """One node's result: its openings (``norm2``, ``dot_ref``: (m,) uint64), its decisions
    (``reasons``: reason codes, ``weights``: (m,) uint64 fixed-point ``enc(w_i c_i)``, 0 if
    rejected), the float ``total_weight`` ``sum_i w_i``, its aggregate share ((d,) uint64) and,
    when the request named a chain, ``chain_signatures``: the node's own 65-byte signatures of its
    scalars, decisions and aggregate-share root for that contract and round
    (:class:`ppbfl.chain.votes.RoundVotes`), which the relay submits unchanged; else empty."""

    KIND: ClassVar[str] = "aggregate_share"
    VERSION: ClassVar[int] = 2
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=1)]
    reasons: Annotated[list[int], ListOf(UInt(bits=8), max_len=1 << 16)]
    weights: Annotated[np.ndarray, FieldArray(ndim=1)]
    total_weight: Annotated[float, Float()]
    share: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]
    chain_signatures: Annotated[list[bytes], ListOf(Bytes(length=65), max_len=3)] = dataclasses.field(default_factory=list, kw_only=True)


@register
@dataclass(frozen=True)
class GramRequest(Message):
    """Coordinator -> edge node (rule ``"flame"``): return this node's shares of ``<g_i, g_j>`` for
    every pair ``i < j`` of the verify request's devices; ``devices`` must repeat the verify
    request's device list. Honest-majority mode: re-randomised local products (the node takes the
    PRZS counter from the round itself, never from the request). Beaver mode (the node answered a
    :class:`BeaverFinish` this round): from the opened ``g - a`` and the dealt pair products,
    degree ``t - 1`` (:func:`ppbfl.mpc.beaver.gram_from_opened`; 0 for pairs outside the opening)."""

    KIND: ClassVar[str] = "gram_request"
    VERSION: ClassVar[int] = 1
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]


@register
@dataclass(frozen=True)
class GramShares(Message):
    """One node's shares (degree ``2(t - 1)``, PRZS-masked; Beaver mode: degree ``t - 1``) of the
    upper triangle of the Gram matrix, row-major over pairs ``i < j`` (``m (m - 1) / 2`` uint64), and the node's ECDSA
    ``signature`` over them (:func:`ppbfl.protocol.signed_shares.gram_digest`): its peers check it
    when the coordinator relays them."""

    KIND: ClassVar[str] = "gram_shares"
    VERSION: ClassVar[int] = 2
    gram: Annotated[np.ndarray, FieldArray(ndim=1)]
    signature: Annotated[bytes, Bytes(max_len=MAX_SIGNATURE_BYTES)]


@register
@dataclass(frozen=True)
class FlameAggregateRequest(AggregateRequest):
    """:class:`AggregateRequest` for rule ``"flame"``: the same fields plus ``gram``, the (k,
    m (m - 1) / 2) matrix of every point's :class:`GramShares` (degree ``norm2_degree``), and
    ``gram_signatures``, each point's signature of its row. The node checks every relayed row
    against its signature, opens the norms and the Gram entries of the devices that pass
    screening, runs FLAME's clustering (:mod:`ppbfl.protocol.flame_decision`) and returns its
    :class:`AggregateShare`."""

    KIND: ClassVar[str] = "flame_aggregate_request"
    VERSION: ClassVar[int] = 3
    gram: Annotated[np.ndarray, FieldArray(ndim=2)]
    gram_signatures: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_SIGNATURE_BYTES), max_len=1024)]


@register
@dataclass(frozen=True)
class TrustQuery(Message):
    """Coordinator -> edge node, after the envelope's round: sign your own trust update of it.

    ``chain_contract`` (20-byte address) and ``chain_id``: the chain the node's kind-4 signature is
    for; ``devices`` (distinct) and ``commitments``: each device's share commitment on chain
    (32 bytes, in the order of ``devices``), which the node's trust records hold. The node
    computes the update from the decisions it signed itself (:meth:`ppbfl.protocol.edge_node.EdgeNode.trust_vote`);
    nothing here changes it but the commitments and ``refused``, and a wrong one only makes its
    vote not count (``refused`` is in the signed digest, which ``commitTrust`` checks against the
    contract's own record of the round's refusals).
    """

    KIND: ClassVar[str] = "trust_query"
    VERSION: ClassVar[int] = 3
    chain_contract: Annotated[bytes, Bytes(length=20)]
    chain_id: Word
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_DEVICES)]
    commitments: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=MAX_DEVICES)]
    previous: Word = 0
    """The latest round before this one whose trust the chain anchored (0: none): a node whose
    own latest trust round is earlier answers :class:`TrustBehind` instead of voting."""
    refused: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_DEVICES)] = dataclasses.field(default_factory=list)
    """The devices whose PoW stamp the contract refused in the round (``powRefusals``), ascending."""
    ids_reports: Annotated[list[bytes], ListOf(Bytes(max_len=IDS_REPORT_MAX_BYTES), max_len=MAX_EDGE_LIST)] = dataclasses.field(
        default_factory=list,
    )
    """The edge nodes' signed IDS reports of the round (:func:`ppbfl.trust.ids_reports.report_to_bytes`),
    relayed: the node checks each against its registered edge accounts and combines them itself."""


@register
@dataclass(frozen=True)
class IdsReportQuery(Message):
    """Coordinator -> edge node: sign your own IDS report of the envelope's round for the chain
    ``chain_contract`` (20 bytes) / ``chain_id``; the counts come from the node's own detector
    (:attr:`ppbfl.protocol.edge_node.EdgeNode.ids_source`), never from the query."""

    KIND: ClassVar[str] = "ids_report_query"
    VERSION: ClassVar[int] = 1
    chain_contract: Annotated[bytes, Bytes(length=20)]
    chain_id: Word


@register
@dataclass(frozen=True)
class IdsReportReply(Message):
    """Edge node -> coordinator: its signed IDS ``report`` of the round (:func:`ppbfl.trust.ids_reports.report_to_bytes`)."""

    KIND: ClassVar[str] = "ids_report_reply"
    VERSION: ClassVar[int] = 1
    report: Annotated[bytes, Bytes(max_len=IDS_REPORT_MAX_BYTES)]


@register
@dataclass(frozen=True)
class TrustVoteReply(Message):
    """Edge node -> coordinator: its trust update of the round as ``commitTrust`` takes it: the
    node's trust-store Merkle ``root``, the storage ``slots`` (ascending) and ``words`` (each 32
    bytes big-endian: 16 Q1.15 lanes), and ``signature``, its 65-byte kind-4 signature of them
    (:class:`ppbfl.chain.votes.TrustVote`), which the relay submits unchanged. At most one slot
    per 16 devices: the receiver bounds ``slots`` by its round's device count."""

    KIND: ClassVar[str] = "trust_vote_reply"
    VERSION: ClassVar[int] = 1
    root: Hash
    slots: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_DEVICES // LANES)]
    words: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=MAX_DEVICES // LANES)]
    signature: Annotated[bytes, Bytes(length=65)]


@register
@dataclass(frozen=True)
class AggregateRecall(Message):
    """Coordinator -> edge node, for the envelope's round: send your aggregate reply of that round again.

    The node answers with :class:`RecalledRound`: the :class:`AggregateShare` it gave for the
    round, unchanged (it keeps the latest two, across restarts: :mod:`ppbfl.protocol.edge_state`),
    with the per-device decisions it signed, so the coordinator role learns nothing it was not
    sent or shown before. A coordinator that restarted between a round's close on chain and its
    model file or trust records rebuilds the aggregate from ``t`` of them and runs the trust step
    (:mod:`ppbfl.protocol.resume`)."""

    KIND: ClassVar[str] = "aggregate_recall"
    VERSION: ClassVar[int] = 1


@register
@dataclass(frozen=True)
class RecalledRound(AggregateShare):
    """Edge node -> coordinator, the reply to :class:`AggregateRecall`: the node's
    :class:`AggregateShare` of the round as it sent it, and its decisions in that round: the
    ``devices`` (chain device ids, in the order of ``reasons``), each one's ``cosine`` (NaN where
    not computed) and float weight ``w_i`` (what the trust records hold)."""

    KIND: ClassVar[str] = "recalled_round"
    VERSION: ClassVar[int] = 1
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_DEVICES)]
    cosine: Annotated[np.ndarray, Array(dtype="<f8", ndim=1, finite=False)]
    weight: Annotated[np.ndarray, Array(dtype="<f8", ndim=1)]

    def decided(self) -> dict[int, DeviceDecision]:
        """Device id -> the decision as the trust step takes it (cosine, weight, the reason's name;
        ``norm2`` and ``clip`` are not kept: None and 1)."""
        names = {code: name for name, code in REASON_CODES.items()}
        return {
            i: DeviceDecision(float(c), None, float(w), 1.0, names.get(code, "malformed shares"))
            for i, c, w, code in zip(self.devices, self.cosine, self.weight, self.reasons)
        }

    def __post_init__(self) -> None:
        m = len(self.devices)
        if not len(self.reasons) == self.cosine.shape[0] == self.weight.shape[0] == self.weights.shape[0] == m:
            raise ValueError(f"{m} devices, {len(self.reasons)} reasons, {self.cosine.shape[0]} cosines, {self.weight.shape[0]} weights")


TRUST_ROW_BYTES = 103
"""Bytes of one trust record on the wire: its leaf row (:data:`ppbfl.trust.record.LEAF_DTYPE`)."""


@register
@dataclass(frozen=True)
class TrustBehind(Message):
    """Edge node -> coordinator, the reply to a :class:`TrustQuery` whose ``previous`` round is
    after the node's own latest trust round ``last`` (0: none): relay the anchored rounds after
    ``last`` (:class:`TrustCatchUp`), then ask again."""

    KIND: ClassVar[str] = "trust_behind"
    VERSION: ClassVar[int] = 1
    last: Word


@register
@dataclass(frozen=True)
class TrustCatchUp(Message):
    """Coordinator -> edge node: the envelope's round's trust records as the chain anchored them,
    to adopt (:meth:`ppbfl.trust.witness.TrustWitness.adopt`).

    ``chain_contract`` (20 bytes) and ``chain_id``: the chain the signatures are for; ``records``:
    one canonical 103-byte leaf row per registered device (the node refuses another count);
    ``signatures``: the 65-byte kind-4 signatures of the round's vote that ``commitTrust`` took.
    The node recomputes the root and words from the records and needs ``t`` of its registered
    edge accounts among the signers: nothing here is the relay's word."""

    KIND: ClassVar[str] = "trust_catch_up"
    VERSION: ClassVar[int] = 1
    chain_contract: Annotated[bytes, Bytes(length=20)]
    chain_id: Word
    records: Annotated[list[bytes], ListOf(Bytes(length=TRUST_ROW_BYTES), max_len=MAX_DEVICES)]
    signatures: Annotated[list[bytes], ListOf(Bytes(length=65), max_len=MAX_EDGE_LIST)]
