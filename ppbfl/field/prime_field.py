"""The :class:`PrimeField` value object and validation of field-element arrays.

A field is identified by its prime modulus ``p``. The kernels support the Mersenne prime
``p = 2^61 - 1`` (the default, :data:`GF61`) and any prime ``p < 2^32`` (tiny devices, and
small fields for statistical tests). Elements are ``numpy.uint64`` arrays, always fully
reduced into ``[0, p)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np

from ppbfl.errors import (
    FieldDTypeError,
    FieldRangeError,
    FieldShapeError,
    NotInvertibleError,
    UnsupportedFieldError,
)

__all__ = ["PrimeField", "GF61", "MERSENNE61"]

MERSENNE61 = (1 << 61) - 1


@dataclass(frozen=True)
class PrimeField:
    """The prime field ``GF(p)`` with ``p = 2^61 - 1`` or a prime ``p < 2^32``.

    Attributes:
        p: the prime modulus.
    """

    p: int = MERSENNE61

    def __post_init__(self) -> None:
        p = self.p
        if not isinstance(p, int) or isinstance(p, bool):
            raise UnsupportedFieldError(f"p: {p!r} is not an int")
        if p != MERSENNE61 and not 2 < p < (1 << 32):
            raise UnsupportedFieldError(
                f"p = {p}: the kernels support p = 2^61 - 1 or an odd prime below 2^32"
            )
        if not gmpy2.is_prime(p, 50):
            raise UnsupportedFieldError(f"p = {p} is not prime")

    @property
    def bits(self) -> int:
        """Bit length of ``p``."""
        return self.p.bit_length()

    @property
    def modulus(self) -> np.uint64:
        """``p`` as the ``np.uint64`` scalar the kernels take."""
        return np.uint64(self.p)

    @property
    def is_mersenne61(self) -> bool:
        """True for the default Mersenne prime ``2^61 - 1``."""
        return self.p == MERSENNE61

    def __repr__(self) -> str:
        return "GF(2^61 - 1)" if self.is_mersenne61 else f"GF({self.p})"

    def inverse(self, x: int) -> int:
        """Multiplicative inverse of the scalar ``x`` (an int, reduced mod ``p`` first).

        Raises:
            NotInvertibleError: ``x = 0 (mod p)``.
        """
        x = int(x) % self.p
        if x == 0:
            raise NotInvertibleError(f"0 has no inverse in {self!r}")
        return pow(x, -1, self.p)

    def elements(
        self, a: object, name: str, ndim: int | None = None, check_range: bool = True
    ) -> np.ndarray:
        """Validate ``a`` as an array of field elements and return it C-contiguous.

        Args:
            a: a ``numpy.ndarray`` of dtype ``uint64``; no implicit casting is done, so a
                signed or float array is an error rather than a silently wrapped value.
            name: the argument name used in error messages.
            ndim: required number of dimensions, or None for any.
            check_range: check every value is ``< p`` (one read pass over ``a``).

        Raises:
            FieldDTypeError: ``a`` is not a ``uint64`` ndarray.
            FieldShapeError: ``a.ndim != ndim``.
            FieldRangeError: some value is ``>= p`` (the first such index is named).
        """
        if not isinstance(a, np.ndarray):
            raise FieldDTypeError(name, type(a).__name__, "a numpy.ndarray of uint64")
        if a.dtype != np.uint64:
            raise FieldDTypeError(name, a.dtype)
        if ndim is not None and a.ndim != ndim:
            raise FieldShapeError(name, a.shape, f"{ndim}-D")
        if check_range and a.size and int(a.max()) >= self.p:
            flat = int(np.argmax(a.reshape(-1) >= np.uint64(self.p)))
            index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
            raise FieldRangeError(name, index, int(a[index]), self.p)
        return np.ascontiguousarray(a)

    def scalar(self, x: object, name: str) -> np.uint64:
        """Validate a scalar field element (Python or NumPy int in ``[0, p)``)."""
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise FieldDTypeError(name, type(x).__name__, "an int in [0, p)")
        if not 0 <= int(x) < self.p:
            raise FieldRangeError(name, (), int(x), self.p)
        return np.uint64(int(x))


GF61 = PrimeField()
