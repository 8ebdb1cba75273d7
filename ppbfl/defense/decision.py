"""The public decision of a verification round: opened scalars in, per-device weights out.

Every edge node (and any auditor) runs the same pure functions on the same opened values
(``||g_i||^2`` and ``<g_i, r>`` in fixed point, scale ``2^(2f)``), so they all reach the same
accept/reject decisions and the same public fixed-point aggregation weights without trusting
anyone's word. :class:`~ppbfl.fl.federation.SecureCosineFilter` (through the protocol) and the protocol's
:class:`~ppbfl.protocol.edge_node.EdgeNode` both use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.defense.errors import AggregateRangeError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import PrimeField

__all__ = [
    "REASON_CODES",
    "DeviceDecision",
    "aggregation_weights",
    "decide_public_reference",
    "encoded_norm2",
    "norm_reason",
    "reason_code",
    "signed",
    "weigh",
]

REASON_CODES: dict[str, int] = {
    "accepted": 0,
    "malformed shares": 1,
    "inconsistent shares": 2,
    "zero norm": 3,
    "out-of-range shares": 4,
    "negative cosine": 5,
    "zero cosine": 6,
    "cosine <= tau": 7,
    "zero trust": 8,
    "missing upload": 9,
    "commitment mismatch": 10,
    "out of range": 11,
    "missing proof": 12,
    "outside majority cluster": 13,
}
"""Stable numeric codes of the rejection reasons (the chain records the code; the text before
the first ``:`` of a reason is its key)."""


def reason_code(reason: str) -> int:
    """The :data:`REASON_CODES` code of a reason string (its text before the first ``:``)."""
    return REASON_CODES[reason.split(":")[0]]


def encoded_norm2(reference: np.ndarray, p: int) -> int:
    """``||r||^2`` (exact int, scale ``2^(2f)``) of an encoded reference ((d,) uint64, signed encoding)."""
    r = reference.astype(np.int64)
    r[reference > np.uint64(p // 2)] -= np.int64(p)
    return int(np.dot(r, r))  # <= (p - 1) / 2 under the no-wrap bound: no int64 overflow


def signed(value: int, p: int) -> int:
    """The signed representative of a field element: ``value - p`` above ``p // 2``."""
    return value - p if value > p // 2 else value


def norm_reason(norm2: int) -> str | None:
    """Why a signed opened ``||g||^2`` rejects the device (``None`` if it is positive)."""
    if norm2 == 0:
        return "zero norm"
    if norm2 < 0:
        return "out-of-range shares: negative squared norm"
    return None


def weigh(
    cos: float, norm2: int, ref_norm2: int, trust: float, tau: float, *, rescale: bool = False
) -> tuple[float, float, str]:
    """``(weight, clip, reason)`` of a device with cosine ``cos``, ``||g||^2 = norm2 > 0`` and
    ``||r||^2 = ref_norm2`` (both scale ``2^(2f)``): ``w = max(0, cos) * trust`` if ``cos > tau``
    and ``trust > 0`` (else 0 with the reason), ``clip = min(1, ||r|| / ||g||)``, or with
    ``rescale`` FLTrust's ``||r|| / ||g||`` (every update scaled to the reference norm, also up;
    at most ``||r||`` in encoded units, since ``norm2 >= 1``)."""
    ratio = math.sqrt(ref_norm2 / norm2)
    clip = ratio if rescale else min(1.0, ratio)
    if cos < 0:
        return 0.0, clip, "negative cosine"
    if cos == 0:
        return 0.0, clip, "zero cosine"
    if cos <= tau:
        return 0.0, clip, "cosine <= tau"
    if trust == 0:
        return 0.0, clip, "zero trust"
    return cos * float(trust), clip, "accepted"


@dataclass(frozen=True)
class DeviceDecision:
    """One device's public verdict: ``cosine`` (nan if not computed), ``norm2`` (signed, scale
    ``2^(2f)``; None if not opened), ``weight``, ``clip``, ``reason`` (``"accepted"`` or why not)."""

    cosine: float
    norm2: int | None
    weight: float
    clip: float
    reason: str

    @property
    def accepted(self) -> bool:
        """Whether the device's update enters the aggregate (``weight > 0``)."""
        return self.weight > 0


def decide_public_reference(
    norm2: int, dot_ref: int, ref_norm2: int, trust: float, tau: float, p: int, *, rescale: bool = False
) -> DeviceDecision:
    """Decide one device from its opened ``||g||^2`` and ``<g, r>`` (ints in ``[0, p)``).

    ``ref_norm2``: ``||r||^2`` of the encoded public reference (exact int, scale ``2^(2f)``).
    Rejects non-positive norms and Cauchy--Schwarz violations as out-of-range shares (necessary,
    not sufficient, conditions for in-range entries), then applies :func:`weigh` (``rescale``:
    FLTrust's norm rescaling instead of clipping).
    """
    n2 = signed(norm2, p)
    why = norm_reason(n2)
    if why is not None:
        return DeviceDecision(float("nan"), n2, 0.0, 1.0, why)
    dr = signed(dot_ref, p)
    if dr * dr > n2 * ref_norm2:
        return DeviceDecision(float("nan"), n2, 0.0, 1.0, "out-of-range shares: violates Cauchy-Schwarz")
    cos = dr / (math.sqrt(n2) * math.sqrt(ref_norm2))
    weight, clip, reason = weigh(cos, n2, ref_norm2, trust, tau, rescale=rescale)
    return DeviceDecision(cos, n2, weight, clip, reason)


def aggregation_weights(
    weights: Sequence[float], clips: Sequence[float], codec: FixedPointCodec, max_abs: float,
    norms2: Sequence[int] | None = None,
) -> np.ndarray:
    """Public fixed-point weights ``enc(w_i c_i) = rint(w_i c_i 2^f)`` ((k,) uint64, ``codec.frac_bits``
    bits) of the accepted devices, checked so that the weighted sum of the encoded updates cannot
    wrap modulo ``p``: ``sum_i enc(w_i c_i) * B_i <= (p - 1) / 2`` in exact integers, where ``B_i``
    bounds device ``i``'s encoded entries: ``rint(max_abs 2^f)`` (``max_abs``: the per-entry bound the
    updates were encoded under), or with ``norms2`` (the opened ``||g_i||^2``, scale ``2^(2f)``) the
    smaller of that and ``isqrt(norm2_i) + 1`` (no entry exceeds the L2 norm). Under FLTrust's
    rescaling ``c_i = ||r|| / ||g_i||`` the second bound makes each term at most about
    ``w_i ||r|| 2^(2f) (1 + 1 / ||g_i||_enc)``: a tiny update's large factor cannot make the sum wrap
    (at most twice the term of an update as long as ``r``).

    Raises:
        AggregateRangeError: a weight is beyond ``(p - 1) / 2`` or the weighted sum could wrap.
    """
    field: PrimeField = codec.field
    f = codec.frac_bits
    half = field.p // 2
    products = np.asarray([w * c for w, c in zip(weights, clips)], dtype=np.float64)
    if not np.all(np.isfinite(products)) or np.any(products < 0) or np.any(np.rint(np.ldexp(products, f)) > half):
        raise AggregateRangeError(f"aggregation weights {products.tolist()} are not encodable at {f} fractional bits in {field!r}")
    enc = np.rint(np.ldexp(products, f)).astype(np.uint64)
    largest = round(float(max_abs) * 2.0**f)
    bounds = [largest] * len(enc) if norms2 is None else [min(largest, math.isqrt(int(n)) + 1) for n in norms2]
    if sum(int(w) * b for w, b in zip(enc, bounds)) > half:
        raise AggregateRangeError(
            f"{len(enc)} weighted updates of entries up to {max_abs!r} could wrap modulo p; "
            "use a larger field or fewer fractional bits"
        )
    return enc
