"""Fixed-point encoding of real vectors into ``GF(p)``.

A real ``x`` is encoded as the integer ``v = round(x * 2^f)`` (round half to even), stored
as ``v`` when ``v >= 0`` and ``p - |v|`` when negative. Sums of encodings stay at scale
``2^f``; a product (or a dot product) of two encodings carries scale ``2^(2f)`` and is decoded
with ``scale_power=2``. Field arithmetic never truncates, so a result decodes correctly as
long as its true integer value lies in ``(-p/2, p/2)``.

The codec refuses what it cannot represent: NaN, +-inf and ``|x| > max_abs`` raise
:class:`~ppbfl.errors.EncodingRangeError` naming the first offending index and value.
A value is accepted when it is finite and ``|x| <= max_abs``; every accepted value encodes to
an integer of magnitude at most ``(p - 1) / 2`` and so decodes to itself (within ``2^-(f+1)``).
``max_abs`` defaults to ``2^(floor((bits(p) - 3) / 2) - f)`` (8192 for ``p = 2^61 - 1``,
``f = 16``): one product of two such encodings is at most ``2^(bits(p) - 3)`` in magnitude, so
up to three products sum without wrapping. A protocol that sums ``L`` products picks its
bound with :meth:`FixedPointCodec.max_abs_for_dot`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ppbfl.errors import CodecParameterError, EncodingRangeError
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["FixedPointCodec"]


def _largest_float_below(ok: Callable[[float], bool], start: float) -> float:
    """Largest float ``m <= start`` with ``ok(m)``, stepping down from a close estimate."""
    m = start
    while not ok(m):
        m = math.nextafter(m, 0.0)
    return m


@dataclass(frozen=True, init=False)
class FixedPointCodec:
    """Encode float arrays to ``uint64`` field elements and back.

    Attributes:
        field: the prime field (default ``GF(2^61 - 1)``).
        frac_bits: number of fractional bits ``f`` (default 16).
        max_abs: largest encodable magnitude; ``None`` picks the default described in the
            module docstring (8192 for ``p = 2^61 - 1``, ``f = 16``).
    """

    field: PrimeField
    frac_bits: int
    max_abs: float

    def __init__(self, field: PrimeField = GF61, frac_bits: int = 16, max_abs: float | None = None) -> None:
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "frac_bits", frac_bits)
        if not isinstance(frac_bits, int) or not 0 <= frac_bits < field.bits - 1:
            raise CodecParameterError(f"frac_bits = {frac_bits!r}: expected an int in [0, {field.bits - 1})")
        limit = self._largest_safe_magnitude()
        if max_abs is None:
            max_abs = min(2.0 ** ((field.bits - 3) // 2 - frac_bits), limit)
        elif not (0 < max_abs <= limit):
            raise CodecParameterError(
                f"max_abs = {max_abs!r}: expected 0 < max_abs <= {limit!r} so that encodings decode in {field!r}"
            )
        object.__setattr__(self, "max_abs", max_abs)

    def _largest_safe_magnitude(self) -> float:
        """Largest ``|x|`` whose encoding is at most ``(p - 1) / 2`` (so it decodes to itself)."""
        half = self.field.p // 2
        return _largest_float_below(lambda m: int(np.rint(m * self.scale)) <= half, math.ldexp(float(half), -self.frac_bits))

    @property
    def scale(self) -> float:
        """``2^f``."""
        return math.ldexp(1.0, self.frac_bits)

    def max_abs_for_dot(self, length: int) -> float:
        """Largest ``|x|`` such that a dot product of two encoded ``length``-vectors decodes.

        Returns ``isqrt(((p - 1) / 2) / length) * 2^-f`` (stepped down if float rounding would
        exceed it), so ``length * rint(|x| 2^f)^2 <= (p - 1) / 2`` holds in exact integers.
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise CodecParameterError(f"length = {length!r}: expected a positive int vector length")
        half = self.field.p // 2
        largest_encoding = math.isqrt(half // length)  # largest V with length * V^2 <= half
        return _largest_float_below(
            lambda m: length * int(np.rint(m * self.scale)) ** 2 <= half,
            math.ldexp(float(largest_encoding), -self.frac_bits),  # within an ulp of the answer
        )

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Encode reals into the field.

        Args:
            x: float32/float64 (or integer) array of any shape.

        Returns:
            uint64 array of the same shape, values in ``[0, p)``.

        Raises:
            EncodingRangeError: a value is NaN, infinite, or ``|x| > max_abs``.
        """
        values = np.asarray(x, dtype=np.float64)
        ok = np.abs(values) <= self.max_abs  # False for NaN and +-inf
        if not ok.all():
            flat = int(np.argmin(ok.reshape(-1)))
            index = tuple(int(i) for i in np.unravel_index(flat, values.shape))
            raise EncodingRangeError(index, float(values[index]), float(self.max_abs), self.frac_bits)
        signed = np.rint(values * self.scale).astype(np.int64)
        out = signed.view(np.uint64)  # a negative v reads as 2^64 + v; adding p wraps to p + v
        out += (signed < 0).astype(np.uint64) * np.uint64(self.field.p)
        return out

    def decode(self, a: np.ndarray, scale_power: int = 1) -> np.ndarray:
        """Decode field elements to float64.

        Args:
            a: uint64 array in ``[0, p)`` of any shape.
            scale_power: 1 for encodings and their sums (scale ``2^f``), 2 for products and dot
                products of two encodings (scale ``2^(2f)``).

        Returns:
            float64 array: elements above ``p // 2`` are negative.
        """
        if scale_power not in (1, 2):
            raise CodecParameterError(f"scale_power = {scale_power!r}: expected 1 (encodings, sums) or 2 (products)")
        elements = self.field.elements(a, "a")
        half = np.uint64(self.field.p // 2)
        signed = elements.astype(np.int64)
        negative = elements > half
        signed[negative] = -(np.uint64(self.field.p) - elements[negative]).astype(np.int64)
        return np.ldexp(signed.astype(np.float64), -self.frac_bits * scale_power)

    def decode_scalar(self, value: int, scale_power: int = 1) -> float:
        """Decode one field element given as a Python int (e.g. an opened dot product)."""
        v = int(self.field.scalar(value, "value"))
        signed = v - self.field.p if v > self.field.p // 2 else v
        return math.ldexp(float(signed), -self.frac_bits * scale_power)
