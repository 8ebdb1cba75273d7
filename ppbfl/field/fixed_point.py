"""Fixed-point encoding of real vectors into ``GF(p)``.

A real ``x`` is encoded as the integer ``v = round(x * 2^f)`` (round half to even), stored
as ``v`` when ``v >= 0`` and ``p - |v|`` when negative. Sums of encodings stay at scale
``2^f``; a product (or a dot product) of two encodings carries scale ``2^(2f)`` and is decoded
with ``scale_power=2``. Field arithmetic never truncates, so a result decodes correctly as
long as its true integer value lies in ``(-p/2, p/2)``.

The codec refuses what it cannot represent: NaN, +-inf and ``|x| > max_abs`` raise
:class:`~ppbfl.errors.EncodingRangeError` naming the first offending index and value.
``max_abs`` defaults to ``2^(floor((bits(p) - 3) / 2) - f)`` (8192 for ``p = 2^61 - 1``,
``f = 16``): one product of two such encodings stays below ``2^(bits(p) - 3)``, leaving room
to sum four. A protocol that sums many products picks a tighter bound with
:meth:`FixedPointCodec.max_abs_for_dot`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dataclass_field

import numpy as np

from ppbfl.errors import EncodingRangeError, FieldShapeError
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["FixedPointCodec"]


@dataclass(frozen=True)
class FixedPointCodec:
    """Encode float arrays to ``uint64`` field elements and back.

    Attributes:
        field: the prime field (default ``GF(2^61 - 1)``).
        frac_bits: number of fractional bits ``f`` (default 16).
        max_abs: largest encodable magnitude; ``None`` picks the default described in the
            module docstring (8192 for ``p = 2^61 - 1``, ``f = 16``).
    """

    field: PrimeField = GF61
    frac_bits: int = 16
    max_abs: float | None = dataclass_field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits < self.field.bits - 1:
            raise FieldShapeError("frac_bits", (), f"an int in [0, {self.field.bits - 1})")
        limit = self._largest_safe_magnitude()
        if self.max_abs is None:
            default = 2.0 ** ((self.field.bits - 3) // 2 - self.frac_bits)
            object.__setattr__(self, "max_abs", min(default, limit))
        elif not (0 < self.max_abs <= limit):
            raise EncodingRangeError((), float(self.max_abs), limit, self.frac_bits)

    def _largest_safe_magnitude(self) -> float:
        """Largest ``|x|`` whose encoding is below ``p / 2`` (so it decodes to itself)."""
        return math.ldexp((self.field.p // 2) - 1, -self.frac_bits)

    @property
    def scale(self) -> float:
        """``2^f``."""
        return math.ldexp(1.0, self.frac_bits)

    def max_abs_for_dot(self, length: int) -> float:
        """Largest ``|x|`` such that a dot product of two encoded ``length``-vectors decodes.

        Bound: ``length * (|x| 2^f)^2 < p / 2``.
        """
        if length < 1:
            raise FieldShapeError("length", (length,), "a positive vector length")
        return math.sqrt((self.field.p // 2) / length) / self.scale

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
        scaled = np.rint(values * self.scale)
        bound = np.rint(self.max_abs * self.scale)
        ok = np.abs(scaled) <= bound  # False for NaN and +-inf
        if not ok.all():
            flat = int(np.argmin(ok.reshape(-1)))
            index = tuple(int(i) for i in np.unravel_index(flat, values.shape))
            raise EncodingRangeError(index, float(values[index]), float(self.max_abs), self.frac_bits)
        signed = scaled.astype(np.int64)
        out = signed.astype(np.uint64)
        negative = signed < 0
        out[negative] = np.uint64(self.field.p) - (-signed[negative]).astype(np.uint64)
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
            raise FieldShapeError("scale_power", (scale_power,), "1 or 2")
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
