"""Numba kernels for prime-field arithmetic on ``uint64`` arrays.

Every kernel works on elements already reduced to ``[0, p)`` and writes fully reduced
results. Two kinds of prime are supported:

* ``p = 2^61 - 1`` (Mersenne): a product of two elements is formed from four 32x32-bit
  partial products (Numba has no 128-bit integer) and reduced with shifts and adds, using
  ``2^61 = 1 (mod p)`` and ``2^64 = 8 (mod p)``.
* any prime ``p < 2^32``: the product fits a ``uint64`` and is reduced with ``%``.

The modulus is passed to every kernel; the Mersenne branch is loop-invariant and hoisted by
LLVM. Every constant is a ``np.uint64``: mixing in Python ints would turn Numba's integer
arithmetic into ``int64``/``float64``.

Kernels take a half-open range ``[lo, hi)`` of the elements (or columns) they process, so the
caller can split one call over threads: all kernels release the GIL (``nogil=True``).
``lo``, ``hi`` and column offsets are ``np.uint64``: with signed indices Numba emits a
negative-index wrap-around check per access, which blocks LLVM's loop vectorisation (measured
5x slower). These functions do no validation; :mod:`ppbfl.field.ops` validates and dispatches.
"""

from __future__ import annotations

import numpy as np
from numba import njit

M61 = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
_MASK29 = np.uint64((1 << 29) - 1)
_SH3 = np.uint64(3)
_SH29 = np.uint64(29)
_SH32 = np.uint64(32)
_SH61 = np.uint64(61)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)



@njit(cache=True, nogil=True)
def mul_m61(a: np.uint64, b: np.uint64) -> np.uint64:
    """``a * b mod (2^61 - 1)`` for ``a, b`` in ``[0, 2^61 - 1)``, via a 32-bit split."""
    a_hi = a >> _SH32
    a_lo = a & _MASK32
    b_hi = b >> _SH32
    b_lo = b & _MASK32
    high = a_hi * b_hi  # < 2^58, weight 2^64 = 8 (mod p)
    mid = a_hi * b_lo + a_lo * b_hi  # < 2^62, weight 2^32
    low = a_lo * b_lo  # < 2^64
    s = (
        (high << _SH3)
        + (mid >> _SH29)
        + ((mid & _MASK29) << _SH32)
        + (low >> _SH61)
        + (low & M61)
    )  # < 3 * 2^61 + 2^34
    s = (s & M61) + (s >> _SH61)
    if s >= M61:
        s -= M61
    return s


@njit(cache=True, nogil=True)
def mul_small_m61(a: np.uint64, x: np.uint64) -> np.uint64:
    """``a * x mod (2^61 - 1)`` for reduced ``a`` and a small ``x < 2^32`` (two multiplies)."""
    low = (a & _MASK32) * x  # < 2^64
    high = (a >> _SH32) * x  # < 2^61, weight 2^32
    s = (low & M61) + (low >> _SH61) + (high >> _SH29) + ((high & _MASK29) << _SH32)
    s = (s & M61) + (s >> _SH61)
    if s >= M61:
        s -= M61
    return s


@njit(cache=True, nogil=True)
def mulmod(a: np.uint64, b: np.uint64, p: np.uint64) -> np.uint64:
    """``a * b mod p`` for reduced ``a, b``; ``p`` is ``2^61 - 1`` or a prime below ``2^32``."""
    if p == M61:
        return mul_m61(a, b)
    return (a * b) % p


@njit(cache=True, nogil=True)
def addmod(a: np.uint64, b: np.uint64, p: np.uint64) -> np.uint64:
    """``a + b mod p`` for reduced ``a, b`` (``p < 2^63``)."""
    s = a + b
    if s >= p:
        s -= p
    return s


@njit(cache=True, nogil=True)
def submod(a: np.uint64, b: np.uint64, p: np.uint64) -> np.uint64:
    """``a - b mod p`` for reduced ``a, b``."""
    if a >= b:
        return a - b
    return a + (p - b)


@njit(cache=True, nogil=True)
def powmod(a: np.uint64, e: np.uint64, p: np.uint64) -> np.uint64:
    """``a^e mod p`` by square-and-multiply (``a`` reduced)."""
    result = _ONE
    base = a
    while e > _ZERO:
        if e & _ONE:
            result = mulmod(result, base, p)
        base = mulmod(base, base, p)
        e = e >> _ONE
    return result


@njit(cache=True, nogil=True)
def invmod(a: np.uint64, p: np.uint64) -> np.uint64:
    """``a^-1 mod p`` by Fermat's little theorem; the caller guarantees ``a != 0``."""
    return powmod(a, p - np.uint64(2), p)


# ---------------------------------------------------------------------------------------------
# element-wise kernels over [lo, hi)
#
# Each returns the largest input element it read, so the caller can validate ``< p`` in the
# same pass instead of a separate one (inputs >= p give garbage outputs, never a crash).
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def add_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] + b[i] mod p`` for ``i`` in ``[lo, hi)``; 1-D ``uint64`` arrays."""
    top = _ZERO
    for i in range(lo, hi):
        x, y = a[i], b[i]
        top = max(top, max(x, y))
        out[i] = addmod(x, y, p)
    return top


@njit(cache=True, nogil=True)
def sub_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] - b[i] mod p`` for ``i`` in ``[lo, hi)``."""
    top = _ZERO
    for i in range(lo, hi):
        x, y = a[i], b[i]
        top = max(top, max(x, y))
        out[i] = submod(x, y, p)
    return top


@njit(cache=True, nogil=True)
def neg_range(a, out, p, lo, hi):
    """``out[i] = -a[i] mod p`` for ``i`` in ``[lo, hi)``."""
    top = _ZERO
    for i in range(lo, hi):
        x = a[i]
        top = max(top, x)
        out[i] = submod(_ZERO, x, p)
    return top


@njit(cache=True, nogil=True)
def mul_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] * b[i] mod p`` for ``i`` in ``[lo, hi)``."""
    top = _ZERO
    for i in range(lo, hi):
        x, y = a[i], b[i]
        top = max(top, max(x, y))
        out[i] = mulmod(x, y, p)
    return top


@njit(cache=True, nogil=True)
def muladd_range(a, b, c, out, p, lo, hi):
    """``out[i] = a[i] * b[i] + c[i] mod p`` for ``i`` in ``[lo, hi)``."""
    top = _ZERO
    for i in range(lo, hi):
        x, y, z = a[i], b[i], c[i]
        top = max(top, max(x, max(y, z)))
        out[i] = addmod(mulmod(x, y, p), z, p)
    return top


@njit(cache=True, nogil=True)
def scalar_mul_range(a, s, out, p, lo, hi):
    """``out[i] = s * a[i] mod p`` for ``i`` in ``[lo, hi)``; ``s`` a reduced ``uint64``."""
    top = _ZERO
    for i in range(lo, hi):
        x = a[i]
        top = max(top, x)
        out[i] = mulmod(x, s, p)
    return top


@njit(cache=True, nogil=True)
def dot_range(a, b, p, lo, hi):
    """``(sum(a[i] * b[i] for i in [lo, hi)) mod p, largest input)`` (``hi - lo < 2^32``).

    The reduced products (``< 2^61``) are summed as two plain ``uint64`` sums of their high
    and low 32-bit halves (:func:`_dot_halves`), which cannot overflow for fewer than ``2^32``
    terms and vectorise; one reduction at the end.
    """
    acc = np.zeros(2, dtype=np.uint64)
    top = _dot_halves(a, b, p, lo, hi, acc)
    return _halves_mod(acc[0], acc[1], p), top


@njit(cache=True, nogil=True)
def weighted_rowsum_range(weights, rows, out, p, lo, hi):
    """``out[j] = sum_i weights[i] * rows[i, j] mod p`` for columns ``j`` in ``[lo, hi)``.

    ``weights``: (k,) uint64; ``rows``: (k, d) uint64 or :func:`pack_rows` of k (d,) arrays;
    ``out``: (d,) uint64, not aliasing ``rows`` or ``weights``. Returns the largest element of
    ``rows`` it read.
    """
    k = weights.shape[0]
    top = _ZERO
    for j in range(lo, hi):
        out[j] = _ZERO
    for i in range(k):
        w = weights[i]
        row = rows[i]
        for j in range(lo, hi):
            x = row[j]
            top = max(top, x)
            out[j] = addmod(out[j], mulmod(x, w, p), p)
    return top


@njit(cache=True, nogil=True)
def matmul_range(matrix, rows, out, p, lo, hi):
    """``out[r, j] = sum_i matrix[r, i] * rows[i, j] mod p`` for columns ``j`` in ``[lo, hi)``.

    ``matrix``: (m, k) uint64; ``rows``: (k, d) uint64; ``out``: (m, d) uint64. Used for
    Lagrange combination onto several points at once (seed-compressed sharing, syndromes).
    """
    m, k = matrix.shape
    for r in range(m):
        for j in range(lo, hi):
            out[r, j] = _ZERO
        for i in range(k):
            w = matrix[r, i]
            for j in range(lo, hi):
                out[r, j] = addmod(out[r, j], mulmod(rows[i, j], w, p), p)


@njit(cache=True, nogil=True)
def _horner_step(row, x, add, add_offset, p, small, col0, lo, hi):
    """``row[col0 + c] = row[col0 + c] * x + add[add_offset + c] mod p`` for ``c`` in ``[lo, hi)``."""
    if small:
        for c in range(lo, hi):
            row[col0 + c] = addmod(mul_small_m61(row[col0 + c], x), add[add_offset + c], p)
    else:
        for c in range(lo, hi):
            row[col0 + c] = addmod(mulmod(row[col0 + c], x, p), add[add_offset + c], p)


@njit(cache=True, nogil=True)
def horner_share_range(secret, coeffs, points, out, p, col0, lo, hi):
    """Evaluate random sharing polynomials at ``points`` for one block of columns.

    For block column ``c`` in ``[lo, hi)`` and ``j = col0 + c``, the polynomial is
    ``f_j(x) = secret[j] + sum_{k=1}^{t-1} coeffs[k-1, c] x^k``; writes
    ``out[i, j] = f_j(points[i]) mod p`` by Horner's rule, one whole row segment per step so
    the inner loop vectorises. Each step multiplies by a point, so for ``p = 2^61 - 1`` and
    points below ``2^32`` it uses the cheaper small-operand product.

    ``secret``: (d,) uint64; ``coeffs``: (t-1, B) uint64 for columns ``col0 .. col0+B-1``;
    ``points``: (n,) uint64 non-zero points; ``out``: (n, d) uint64; ``col0, lo, hi`` uint64.
    """
    n = points.shape[0]
    degree = coeffs.shape[0]
    small = p == M61 and n > 0 and points.max() < (_ONE << _SH32)
    for i in range(n):
        row = out[i]
        if degree == 0:
            for c in range(lo, hi):
                row[col0 + c] = secret[col0 + c]
            continue
        top = coeffs[degree - 1]
        for c in range(lo, hi):
            row[col0 + c] = top[c]
        for k in range(degree - 2, -1, -1):
            _horner_step(row, points[i], coeffs[k], _ZERO, p, small, col0, lo, hi)
        _horner_step(row, points[i], secret, col0, p, small, col0, lo, hi)


# ---------------------------------------------------------------------------------------------
# row kernels: one pass over k separate rows (a (k, d) array or a typed List of (d,) arrays)
# ---------------------------------------------------------------------------------------------


def pack_rows(rows):
    """The rows argument of :func:`row_dots_range` and :func:`weighted_rowsum_range` for ``k``
    separate ``(d,)`` uint64 C-contiguous arrays, without copying them: a ``numba.typed.List`` of
    read-only views (one element type, whether or not the arrays themselves are writable).
    ``rows``: a sequence of arrays validated by the caller (:mod:`ppbfl.field.ops`)."""
    from numba import types
    from numba.typed import List

    packed = List.empty_list(types.Array(types.uint64, 1, "C", readonly=True))
    for row in rows:
        view = row.view()
        view.flags.writeable = False
        packed.append(view)
    return packed


@njit(cache=True, nogil=True)
def _halves_mod(high, low, p):
    """``(high * 2^32 + low) mod p`` for the split sums of :func:`dot_range`."""
    return addmod(mulmod(high % p, np.uint64(1 << 32) % p, p), low % p, p)


_ROW_TILE = np.uint64(2048)


@njit(cache=True, nogil=True)
def _dot_halves(x, y, p, lo, hi, acc):
    """Add the split-half sums of ``x[j] * y[j] mod p`` over ``[lo, hi)`` to ``acc[0]`` (high
    halves) and ``acc[1]`` (low halves); return the largest input read."""
    high = _ZERO
    low = _ZERO
    top = _ZERO
    for j in range(lo, hi):
        u, v = x[j], y[j]
        top = max(top, max(u, v))
        product = mulmod(u, v, p)
        high += product >> _SH32
        low += product & _MASK32
    acc[0] += high
    acc[1] += low
    return top


@njit(cache=True, nogil=True)
def _row_dots_body(rows, a, b, c, squares, fourth, p, lo, hi):
    """The pass of :func:`row_dots_range` and :func:`row_dots4_range`: (4, k) sums and the largest input."""
    k = len(rows)
    sums = np.zeros((4, k), dtype=np.uint64)
    acc = np.zeros((4, 2), dtype=np.uint64)
    top = _ZERO
    for i in range(k):
        row = rows[i]
        acc[:] = _ZERO
        for t0 in range(lo, hi, _ROW_TILE):
            t1 = min(t0 + _ROW_TILE, hi)
            top = max(top, _dot_halves(row, a, p, t0, t1, acc[0]))
            top = max(top, _dot_halves(row, b, p, t0, t1, acc[1]))
            if squares:
                _dot_halves(row, row, p, t0, t1, acc[2])
            if fourth:
                top = max(top, _dot_halves(row, c, p, t0, t1, acc[3]))
        for r in range(4):
            sums[r, i] = _halves_mod(acc[r, 0], acc[r, 1], p)
    return sums, top


@njit(cache=True, nogil=True)
def row_dots_range(rows, a, b, squares, p, lo, hi):
    """For each row ``r_i``, over columns ``[lo, hi)`` (``hi - lo < 2^32``), in one pass:
    ``<r_i, a>``, ``<r_i, b>`` and, if ``squares``, ``<r_i, r_i>`` (else 0), all mod ``p``.

    ``rows``: a (k, d) uint64 array or :func:`pack_rows` of k (d,) arrays; ``a, b``: (d,) uint64;
    ``squares``: bool. Returns ``(sums, top)``: ``sums`` a (3, k) uint64 array (row 0 the dots
    with ``a``, row 1 with ``b``, row 2 the squares) and ``top`` the largest element of the rows,
    ``a`` and ``b`` read. Products are summed as split 32-bit halves as in :func:`dot_range`.
    Each row is walked in tiles of 2048 columns, the three products of a tile as three simple
    loops that each vectorise (one loop computing all three does not: measured 3x slower), the
    second and third reading the tile from L1.
    """
    sums, top = _row_dots_body(rows, a, b, a, squares, False, p, lo, hi)
    return sums[:3].copy(), top


@njit(cache=True, nogil=True)
def row_dots4_range(rows, a, b, c, squares, p, lo, hi):
    """:func:`row_dots_range` with a fourth (d,) uint64 vector ``c`` in the same pass: returns
    ``(sums, top)`` with ``sums`` (4, k), row 3 the dots ``<r_i, c>`` mod ``p``, and ``top`` the
    largest element of the rows, ``a``, ``b`` and ``c`` read."""
    return _row_dots_body(rows, a, b, c, squares, True, p, lo, hi)
