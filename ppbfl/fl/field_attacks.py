"""Attacks below the float level: a device that knows the protocol crafts field elements.

:func:`out_of_range_shift` is the attack of issue 13 (input validity on shares). The secure
cosine defence opens ``<g, r>`` and ``||g||^2`` **modulo p**. A device may share any field vector,
so it can add a perturbation ``delta`` with huge entries, chosen so that both opened scalars are
exactly those of an honest-looking update ``g``:

    <g + delta, r> = <g, r>   and   ||g + delta||^2 = ||g||^2   (mod p)

It passes every check that looks only at the opened scalars (the cosine, the norm clip,
Cauchy-Schwarz, the sign of the norm) with the honest update's weight, while its contribution
to the aggregate carries entries of order ``p / 2`` (decoded: up to ``~2^60 / 2^(2f)``). Only a
check on the shares themselves (a range or norm proof) stops it.

The construction: ``delta`` is non-zero on three coordinates ``a, b, c`` with ``delta_a = X``
(the chosen magnitude); the linear condition fixes ``delta_b`` from ``delta_c``, and the norm
condition is then a quadratic in ``delta_c`` over ``GF(p)``, solved with a modular square root
(``p = 3 mod 4``); coordinates (then ``X + 1, X + 2, ...``) are retried until the discriminant
is a square (each try succeeds about half the time).
"""

from __future__ import annotations

import numpy as np

from ppbfl.errors import FieldShapeError, PPBFLError
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["out_of_range_shift"]


def _sqrt_mod(x: int, p: int) -> int | None:
    """A square root of ``x`` modulo a prime ``p = 3 mod 4``, or None if ``x`` is not a square."""
    root = pow(x, (p + 1) // 4, p)
    return root if root * root % p == x % p else None


def out_of_range_shift(
    g: np.ndarray, r: np.ndarray, *, magnitude: int = 1 << 50, field: PrimeField = GF61, start: int = 0,
) -> np.ndarray:
    """``g + delta`` (uint64 (d,)) with the same ``<., r>`` and ``||.||^2`` as ``g`` modulo ``p``.

    Args:
        g: (d,) uint64 field elements (an honest-looking encoded update), d >= 3.
        r: (d,) uint64 encoded public reference.
        magnitude: ``delta_a`` (as a field element; the smallest of ``magnitude, magnitude + 1, ...``
            that gives a solution).
        field: the prime field (``p = 3 mod 4``).
        start: first coordinate tried for ``a``.

    Raises:
        FieldShapeError: ``g`` and ``r`` are not both (d,) with d >= 3.
        PPBFLError: no solution (``r`` has fewer than two non-zero entries, or ``p`` is not 3 mod 4).
    """
    p = field.p
    g = np.asarray(g, dtype=np.uint64)
    r = np.asarray(r, dtype=np.uint64)
    if g.ndim != 1 or r.shape != g.shape or g.size < 3:
        raise FieldShapeError("g, r", g.shape, "two (d,) vectors with d >= 3")
    if p % 4 != 3:
        raise PPBFLError(f"out_of_range_shift needs p = 3 mod 4, got p = {p}")
    d = g.size
    gi = [int(v) for v in g]
    ri = [int(v) for v in r]
    for x, offset in (((magnitude + k) % p, offset) for k in range(64) for offset in range(d)):
        a = (start + offset) % d
        for b in range(d):
            if b == a or ri[b] == 0:
                continue
            inv_rb = pow(ri[b], p - 2, p)
            alpha = -ri[a] * x * inv_rb % p
            for c in range(d):
                if c in (a, b):
                    continue
                beta = -ri[c] * inv_rb % p
                qa = (1 + beta * beta) % p
                qb = 2 * (alpha * beta + gi[b] * beta + gi[c]) % p
                qc = (2 * gi[a] * x + x * x + 2 * gi[b] * alpha + alpha * alpha) % p
                if qa == 0:
                    if qb == 0:
                        continue
                    z = -qc * pow(qb, p - 2, p) % p
                else:
                    root = _sqrt_mod((qb * qb - 4 * qa * qc) % p, p)
                    if root is None:
                        continue
                    z = (-qb + root) * pow(2 * qa, p - 2, p) % p
                y = (alpha + beta * z) % p
                out = g.copy()
                for index, delta in ((a, x), (b, y), (c, z)):
                    out[index] = np.uint64((gi[index] + delta) % p)
                return out
    raise PPBFLError("out_of_range_shift: no solution (the reference needs two non-zero entries)")
