"""The secure cosine defence (DESIGN §5) as one more :class:`~ppbfl.fl.aggregation.Aggregator`.

:class:`SecureCosineAggregator` (registry key ``ppbfl_secure``, shown as "ppbfl (secure)") runs
one round of the real defence on the plaintext updates of the simulation:

1. every device encodes its update in fixed point and Shamir-shares it among ``n`` edge nodes
   with threshold ``t`` (:func:`ppbfl.defense.share_update`, with a consistency mask);
2. the edge nodes run the share-consistency check with a challenge seed, open only
   ``<g_i, r>`` and ``||g_i||^2`` against the public root-set reference ``r`` (the very update the
   runner computes for the FLTrust baseline), weight ``w_i = max(0, cos_i)`` (``cos_i > tau``),
   clip ``c_i = min(1, ||r|| / ||g_i||)``, aggregate ``sum_i w_i c_i g_i`` on shares and robustly
   reconstruct it; it is divided by ``sum_i w_i`` in the clear
   (:meth:`ppbfl.defense.SecureCosineFilter.verify_and_aggregate`).

**Compared with plaintext FLTrust** (same reference, same ``ReLU(cos)`` trust, same
``sum_i w_i s_i g_i / sum_i w_i`` convention) the result differs only by (a) fixed point: updates,
the reference and the weights ``w_i c_i`` are rounded to ``2^-frac_bits``; (b) the norm rule:
FLTrust rescales every update to ``||r||`` (``s_i = ||r|| / ||g_i||``, also *up*), the secure
defence only clips (``c_i = min(1, ||r|| / ||g_i||)``), so the two agree exactly when every
accepted update is at least as long as ``r``; (c) ``tau``: FLTrust accepts ``cos > 0``, here
``cos > tau`` (default 0, the same rule).

**Range.** Fixed point in ``GF(2^61 - 1)`` holds a bounded range. ``max_abs`` is the public bound
on update entries (a protocol parameter every device knows, like ``t`` and ``n``); with
``frac_bits = None`` the aggregator takes the most fractional bits under which ``d`` products of
entries up to ``max_abs`` (the inner products) and the weighted sum of ``m`` updates cannot wrap
modulo ``p`` (:func:`choose_frac_bits`; about 19 bits for ``d = 1e3``, 15 for ``d = 1e5`` with the
default ``max_abs = 64``). An update entry beyond the bound is an error
(:class:`~ppbfl.fl.errors.UpdateRangeError` naming the device, entry and config key), not a silent
clip: an honest device refuses to encode it, and what a malicious one would send instead is the
attack's choice, which the simulation does not guess.

**Randomness.** The opened values and the reconstructed aggregate are exact field results, so
the output does not depend on the share randomness at all. Still, when the context carries the
experiment ``seed``, the share randomness and the consistency challenge derive from
``(seed, round)`` (SHA-256, :func:`derive_seed`) so that a run's whole transcript reproduces;
without a seed they come from the OS CSPRNG. A deployment uses fresh OS randomness on the
devices and a challenge seed fixed on chain after the share commitments (e.g. a block hash):
a challenge known in advance lets a device cancel an inconsistency.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ppbfl.defense import (
    SecureCosineFilter,
    UpdateEncodingError,
    codec_for_length,
    share_update,
)
from ppbfl.field.csprng import FieldRNG, new_seed
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.fl.aggregation import AggregationContext, Aggregator
from ppbfl.fl.errors import AggregationError, ConfigError, UpdateRangeError

__all__ = ["MIN_FRAC_BITS", "SecureCosineAggregator", "choose_frac_bits", "derive_seed", "fits"]

KEY = "defence_params.ppbfl_secure"
MIN_FRAC_BITS = 8
"""Fewest fractional bits accepted: a step of ``2^-9`` already rivals typical update entries."""


def fits(frac_bits: int, d: int, m: int, max_abs: float, field: PrimeField = GF61) -> bool:
    """Whether entries up to ``max_abs`` at ``frac_bits`` are safe for ``m`` updates of length ``d``.

    Both conditions the defence checks, in exact integers: the encoded bound ``V = rint(max_abs 2^f)``
    satisfies ``d V^2 <= (p - 1) / 2`` (no inner product wraps) and ``m 2^f V <= (p - 1) / 2``
    (the sum of ``m`` updates weighted by public weights ``<= 1`` at scale ``2^f`` does not wrap).
    """
    if not 0 <= frac_bits < field.bits - 1:
        return False
    half = field.p // 2
    largest = int(np.rint(max_abs * math.ldexp(1.0, frac_bits)))
    return d * largest * largest <= half and m * (1 << frac_bits) * largest <= half


def choose_frac_bits(d: int, m: int, max_abs: float, field: PrimeField = GF61) -> int:
    """The most fractional bits ``f`` with :func:`fits` ``(f, d, m, max_abs)``.

    Raises:
        ConfigError: not even :data:`MIN_FRAC_BITS` fit (``max_abs`` too large for ``d``, ``m``).
    """
    for f in range(field.bits - 2, MIN_FRAC_BITS - 1, -1):
        if fits(f, d, m, max_abs, field):
            return f
    raise ConfigError(
        f"{KEY}.max_abs",
        f"{max_abs!r} leaves fewer than {MIN_FRAC_BITS} fractional bits for {m} updates of length {d} in {field!r}",
    )


def derive_seed(seed: int, round_: int, label: str) -> bytes:
    """32 bytes ``SHA-256("ppbfl/secure-aggregator/<seed>/<round>/<label>")``: per-round simulation randomness."""
    return hashlib.sha256(f"ppbfl/secure-aggregator/{seed}/{round_}/{label}".encode()).digest()


@dataclass
class SecureCosineAggregator(Aggregator):
    """The secure cosine defence behind the aggregation interface (see the module docstring).

    Args (all from ``[defence_params.ppbfl_secure]``):
        t, n: Shamir threshold and number of edge nodes (default ``(3, 5)``).
        dot_mode: ``"honest_majority"`` (``n >= 2t - 1``, no dealer; default) or ``"beaver"``
            (triples from an OS-seeded trusted dealer).
        tau: accept ``cos > tau``, in ``[-1, 1)`` (default 0: FLTrust's ``ReLU``).
        max_abs: public bound on the entries of every update and of the reference (default 64).
        frac_bits: fractional bits; None (default) picks the most that are safe
            (:func:`choose_frac_bits`).

    ``aggregate`` returns ``(update (d,) float32, info)`` with ``info``: ``weights`` (m floats,
    0 for rejected devices), ``accepted`` (device indices), ``reasons`` (m strings),
    ``frac_bits`` and ``wrong_edge_nodes``.
    """

    t: int = 3
    n: int = 5
    dot_mode: Literal["honest_majority", "beaver"] = "honest_majority"
    tau: float = 0.0
    max_abs: float = 64.0
    frac_bits: int | None = None
    name = "ppbfl_secure"
    display_name = "ppbfl (secure)"
    needs_reference = True

    def __post_init__(self) -> None:
        for key in ("t", "n"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{KEY}.{key}", f"must be a positive integer, got {value!r}")
        if self.t > self.n:
            raise ConfigError(f"{KEY}.t", f"threshold {self.t} exceeds the number of edge nodes n = {self.n}")
        if self.dot_mode not in ("honest_majority", "beaver"):
            raise ConfigError(f"{KEY}.dot_mode", f"must be 'honest_majority' or 'beaver', got {self.dot_mode!r}")
        if self.dot_mode == "honest_majority" and self.n < 2 * self.t - 1:
            raise ConfigError(f"{KEY}.n", f"honest-majority mode needs n >= 2t - 1 = {2 * self.t - 1}, got {self.n}")
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not -1.0 <= self.tau < 1.0:
            raise ConfigError(f"{KEY}.tau", f"must be a number in [-1, 1), got {self.tau!r}")
        if isinstance(self.max_abs, bool) or not isinstance(self.max_abs, (int, float)) or not 0 < self.max_abs < math.inf:
            raise ConfigError(f"{KEY}.max_abs", f"must be a positive finite number, got {self.max_abs!r}")
        if self.frac_bits is not None and (
            isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int)
            or not MIN_FRAC_BITS <= self.frac_bits < GF61.bits - 1
        ):
            raise ConfigError(f"{KEY}.frac_bits", f"must be an integer in [{MIN_FRAC_BITS}, {GF61.bits - 1}), got {self.frac_bits!r}")

    def codec(self, d: int, m: int) -> FixedPointCodec:
        """The round's codec for ``m`` updates of length ``d`` (bound ``max_abs``, see :func:`fits`)."""
        if self.frac_bits is None:
            return FixedPointCodec(GF61, choose_frac_bits(d, m, float(self.max_abs)), float(self.max_abs))
        if not fits(self.frac_bits, d, m, float(self.max_abs)):
            raise ConfigError(
                f"{KEY}.frac_bits",
                f"{self.frac_bits} fractional bits with max_abs = {self.max_abs!r} could wrap modulo p for {m} updates "
                f"of length {d}; at most {choose_frac_bits(d, m, float(self.max_abs))} fit (or leave frac_bits unset)",
            )
        return FixedPointCodec(GF61, self.frac_bits, float(self.max_abs))

    def aggregate(self, updates: np.ndarray, context: AggregationContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Share, verify and aggregate ``updates`` ((m, d) float) against ``context.reference`` ((d,) float).

        Raises:
            AggregationError: no reference, or shapes disagree; UpdateRangeError: an update entry is
            beyond ``max_abs`` (also for the reference, reported as device ``-1``).
        """
        u = self._check(updates)
        if context.reference is None:
            raise AggregationError("ppbfl_secure needs context.reference (the server's root-set update)")
        reference = np.asarray(context.reference, dtype=np.float64)
        m, d = u.shape
        if reference.shape != (d,):
            raise AggregationError(f"reference has shape {reference.shape}, updates have d = {d}")
        codec = self.codec(d, m)
        bound = float(codec_for_length(codec, d).max_abs)
        outside = ~(np.abs(reference) <= bound)
        if outside.any():
            j = int(np.argmax(outside))
            raise UpdateRangeError(-1, j, float(reference[j]), bound, f"{KEY}.max_abs")
        if context.seed is None:
            share_key, challenge = new_seed(), new_seed()
        else:
            share_key = derive_seed(context.seed, context.round, "shares")
            challenge = derive_seed(context.seed, context.round, "challenge")
        submissions = []
        for i, g in enumerate(u):
            try:
                submissions.append(share_update(g, self.t, self.n, codec=codec, device=i,
                                                rng=FieldRNG(share_key, stream=i, field=codec.field)))
            except UpdateEncodingError as error:
                raise UpdateRangeError(error.device, error.index, error.value, error.max_abs, f"{KEY}.max_abs") from error
        secure = SecureCosineFilter(self.t, self.n, codec, self.dot_mode, tau=float(self.tau))
        aggregate, records = secure.verify_and_aggregate(
            [s.shares for s in submissions], reference,
            mask_shares=[s.mask_shares for s in submissions], challenge_seed=challenge,
        )
        info = {
            "weights": [r.weight for r in records.devices],
            "accepted": [r.device for r in records.devices if r.accepted],
            "reasons": [r.reason for r in records.devices],
            "frac_bits": codec.frac_bits,
            "wrong_edge_nodes": list(records.wrong_edge_nodes),
        }
        return aggregate.astype(np.float32), info
