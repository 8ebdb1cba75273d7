"""The messages of a ppbfl round (DESIGN §8): schema, version and validation live in :mod:`.wire`.

Flow of round ``r`` (``m`` devices, edge nodes ``1..n``, threshold ``t``, vector length ``d``):

1. coordinator -> edge node: :class:`SetupEdge` once (index, parameters, PRZS keys).
2. device -> edge node ``j``: :class:`DeviceUpload` (its share vector or PRG seed, its share of the
   consistency mask, and the ``n`` leaf hashes whose Merkle root the device committed on chain);
   each device sends its own, over its own channel. Then coordinator -> edge node:
   :class:`UploadsQuery` -> :class:`UploadsReport` (which devices delivered, with the commitment
   root of what each delivered): the coordinator learns who committed from the chain and who
   delivered from the edge nodes, never from a device.
3. coordinator -> edge node: :class:`VerifyRequest` (challenge seed fixed on chain after the
   commitments, encoded public reference, device list) -> :class:`VerifyShares` (per device: the
   consistency value, the share of ``<g, r>``, and -- honest-majority mode -- the re-randomised
   share of ``||g||^2``).
4. Beaver mode only (fewer than ``2t - 1`` edge nodes online): dealer -> edge node
   :class:`TripleShares`; coordinator -> edge node :class:`BeaverOpen` -> :class:`BeaverMasked`
   (shares of ``g - a``), then :class:`BeaverFinish` (opened ``g - a``) -> :class:`NormShares`.
5. coordinator -> edge node: :class:`AggregateRequest` (every online node's scalar shares, the
   public trust scores) -> :class:`AggregateShare` (the node's own opening of the scalars, its
   decisions, and its share of ``sum_i enc(w_i c_i) g_i``, which it commits on chain and which
   anyone can audit against the posted aggregate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np

from ppbfl.protocol.wire import (
    Array,
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
    "AggregateRequest",
    "AggregateShare",
    "BeaverFinish",
    "BeaverMasked",
    "BeaverOpen",
    "DeviceUpload",
    "FlameAggregateRequest",
    "GramRequest",
    "GramShares",
    "NormShares",
    "ProofUpload",
    "SetupEdge",
    "TripleRequest",
    "TripleShares",
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
    (:mod:`ppbfl.defense.validity`; the node refuses fewer than ``MIN_ROWS``).
    ``przs_sets[k]`` is the bitmask (bit ``j - 1`` for party ``j``) of a set of ``n - t + 1``
    parties containing ``index`` and ``przs_keys[k]`` its 32-byte PRZS key (trusted setup,
    delivered over the authenticated channel).
    """

    KIND: ClassVar[str] = "setup_edge"
    VERSION: ClassVar[int] = 3
    index: Count
    t: Count
    n: Count
    d: Count
    frac_bits: Annotated[int, UInt(max=40)]
    tau: Annotated[float, Float()]
    przs_sets: Annotated[list[int], ListOf(UInt(bits=32), max_len=4096)]
    przs_keys: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=4096)]
    validity_k: Annotated[int, UInt(max=256)]
    rule: Annotated[str, Text(max_len=16)] = "cosine"
    """The round's public decision rule: ``"cosine"`` (DESIGN §5) or ``"flame"`` (the node then
    answers :class:`GramRequest` and :class:`FlameAggregateRequest`, and refuses
    :class:`AggregateRequest`; it refuses the other kind under ``"cosine"``)."""
    flame_noise: Annotated[float, Float()] = 0.0
    """Rule ``"flame"``: the noise level ``lambda`` (>= 0); each node adds its share of Gaussian
    noise ``N(0, (lambda S)^2)`` to the aggregate (:mod:`ppbfl.defense.flame_noise`)."""


@register
@dataclass(frozen=True)
class DeviceUpload(Message):
    """Device ``device``'s upload to one edge node for the envelope's round.

    Exactly one of ``share`` ((d,) uint64 < p) and ``seed`` (32 bytes, expanded with PRG stream
    ``stream``) is set. ``mask_share``: the node's share of the consistency mask ``rho``.
    ``leaves``: the ``n`` leaf hashes of the device's on-chain commitment (leaf ``j - 1`` is node ``j``'s).
    """

    KIND: ClassVar[str] = "device_upload"
    VERSION: ClassVar[int] = 1
    device: Count
    share: Annotated[np.ndarray | None, FieldArray(ndim=1, length="d")]
    seed: Annotated[bytes | None, Bytes(length=32)]
    stream: Word
    mask_share: Annotated[int, UInt(bits=64)]
    leaves: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]


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
    proofs when it answers and draws its ``coin`` (32 random bytes) for the proof checks."""

    KIND: ClassVar[str] = "uploads_report"
    VERSION: ClassVar[int] = 2
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    roots: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)]
    proofs: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    coin: Hash


@register
@dataclass(frozen=True)
class VerifyRequest(Message):
    """Compute the verification scalars' shares of ``devices`` (in this order).

    ``challenge_seed``: fixed on chain after the commitments; ``reference``: the public reference
    update encoded under the no-wrap bound ((d,) uint64); ``commitments``: each device's on-chain
    share commitment (the node compares it with the root of the leaves it received); ``hm``: also return honest-majority
    shares of ``||g||^2`` and of the validity value (PRZS counter ``zero_counter``, never reused);
    ``coin_nodes``, ``coins``: the nodes' coins for the proof checks (each node finds its own).
    """

    KIND: ClassVar[str] = "verify_request"
    VERSION: ClassVar[int] = 2
    challenge_seed: Hash
    reference: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    commitments: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1 << 16)]
    hm: Annotated[int, UInt(max=1)]
    zero_counter: Word
    coin_nodes: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    coins: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=1024)]


@register
@dataclass(frozen=True)
class VerifyShares(Message):
    """One node's shares for :class:`VerifyRequest`'s devices: (m,) uint64 each.

    ``consistency``: ``<lambda, g_j> + rho_j``; ``dot_ref``: share of ``<g, r>`` (degree ``t - 1``);
    ``norm2``: re-randomised share of ``||g||^2`` (degree ``2(t - 1)``), empty unless ``hm``;
    ``mismatched``: positions of devices whose uploaded leaves do not match their on-chain commitment;
    ``proof_consistency``: ``<alpha, b_j> + mu_j`` of the proof bits; ``validity``: share of the
    validity value ``z`` (re-randomised, degree ``2(t - 1)``, if ``hm``; else its degree-``(t - 1)``
    linear part, to which Beaver mode adds the squares).
    """

    KIND: ClassVar[str] = "verify_shares"
    VERSION: ClassVar[int] = 2
    consistency: Annotated[np.ndarray, FieldArray(ndim=1)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=1)]
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    proof_consistency: Annotated[np.ndarray, FieldArray(ndim=1)]
    validity: Annotated[np.ndarray, FieldArray(ndim=1)]
    mismatched: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]


@register
@dataclass(frozen=True)
class TripleRequest(Message):
    """Coordinator -> dealer: deal ``count`` square triples of length ``d`` and ``count`` of length
    ``proof_length`` (the validity proofs' bits) to ``nodes``."""

    KIND: ClassVar[str] = "triple_request"
    VERSION: ClassVar[int] = 2
    count: Count
    proof_length: Annotated[int, UInt(max=MAX_PROOF_LENGTH)]
    nodes: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]


@register
@dataclass(frozen=True)
class TripleShares(Message):
    """Dealer -> edge node: its shares of ``count`` square triples: ``a`` (count, d), ``c`` (count,),
    and of ``count`` for the proofs: ``proof_a`` (count, K), ``proof_c`` (count,)."""

    KIND: ClassVar[str] = "triple_shares"
    VERSION: ClassVar[int] = 2
    a: Annotated[np.ndarray, FieldArray(ndim=2)]
    c: Annotated[np.ndarray, FieldArray(ndim=1)]
    proof_a: Annotated[np.ndarray, FieldArray(ndim=2)]
    proof_c: Annotated[np.ndarray, FieldArray(ndim=1)]


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
class BeaverFinish(Message):
    """The opened ``eps`` ((m, d) uint64) and ``proof_eps`` ((m, K) uint64) for :class:`BeaverOpen`'s devices."""

    KIND: ClassVar[str] = "beaver_finish"
    VERSION: ClassVar[int] = 2
    eps: Annotated[np.ndarray, FieldArray(ndim=2)]
    proof_eps: Annotated[np.ndarray, FieldArray(ndim=2)]


@register
@dataclass(frozen=True)
class NormShares(Message):
    """Degree-``(t - 1)`` shares from Beaver triples: ``||g_i||^2`` and ``||rho' b_i||^2``, (m,) uint64 each."""

    KIND: ClassVar[str] = "norm_shares"
    VERSION: ClassVar[int] = 2
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    proof_squares: Annotated[np.ndarray, FieldArray(ndim=1)]


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
    """

    KIND: ClassVar[str] = "aggregate_request"
    VERSION: ClassVar[int] = 2
    points: Annotated[list[int], ListOf(UInt(bits=32), max_len=1024)]
    consistency: Annotated[np.ndarray, FieldArray(ndim=2)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=2)]
    norm2: Annotated[np.ndarray, FieldArray(ndim=2)]
    norm2_degree: Count
    trust: Annotated[np.ndarray, Array(dtype="<f8", ndim=1)]
    rejected: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]
    proof_consistency: Annotated[np.ndarray, FieldArray(ndim=2)]
    validity: Annotated[np.ndarray, FieldArray(ndim=2)]


@register
@dataclass(frozen=True)
class AggregateShare(Message):
    """One node's result: its openings (``norm2``, ``dot_ref``: (m,) uint64), its decisions
    (``reasons``: reason codes, ``weights``: (m,) uint64 fixed-point ``enc(w_i c_i)``, 0 if
    rejected), the float ``total_weight`` ``sum_i w_i`` and its aggregate share ((d,) uint64)."""

    KIND: ClassVar[str] = "aggregate_share"
    VERSION: ClassVar[int] = 1
    norm2: Annotated[np.ndarray, FieldArray(ndim=1)]
    dot_ref: Annotated[np.ndarray, FieldArray(ndim=1)]
    reasons: Annotated[list[int], ListOf(UInt(bits=8), max_len=1 << 16)]
    weights: Annotated[np.ndarray, FieldArray(ndim=1)]
    total_weight: Annotated[float, Float()]
    share: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]


@register
@dataclass(frozen=True)
class GramRequest(Message):
    """Coordinator -> edge node (rule ``"flame"``, honest-majority mode): return this node's
    re-randomised shares of ``<g_i, g_j>`` for every pair ``i < j`` of the verify request's
    devices. The node takes the PRZS counter from the round itself (never from the request);
    ``devices`` must repeat the verify request's device list."""

    KIND: ClassVar[str] = "gram_request"
    VERSION: ClassVar[int] = 1
    devices: Annotated[list[int], ListOf(UInt(bits=32), max_len=1 << 16)]


@register
@dataclass(frozen=True)
class GramShares(Message):
    """One node's shares (degree ``2(t - 1)``, PRZS-masked) of the upper triangle of the Gram
    matrix, row-major over pairs ``i < j`` (``m (m - 1) / 2`` uint64)."""

    KIND: ClassVar[str] = "gram_shares"
    VERSION: ClassVar[int] = 1
    gram: Annotated[np.ndarray, FieldArray(ndim=1)]


@register
@dataclass(frozen=True)
class FlameAggregateRequest(AggregateRequest):
    """:class:`AggregateRequest` for rule ``"flame"``: the same fields plus ``gram``, the (k,
    m (m - 1) / 2) matrix of every point's :class:`GramShares` (degree ``norm2_degree``). The node
    opens the norms and the Gram entries of the devices that pass screening, runs FLAME's
    clustering (:mod:`ppbfl.protocol.flame_decision`) and returns its :class:`AggregateShare`."""

    KIND: ClassVar[str] = "flame_aggregate_request"
    VERSION: ClassVar[int] = 1
    gram: Annotated[np.ndarray, FieldArray(ndim=2)]
