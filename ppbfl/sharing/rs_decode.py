"""Berlekamp–Welch decoding of Shamir share columns (Numba).

The ``k`` shares of one coordinate are a Reed–Solomon codeword: the values of a polynomial
``P`` of degree ``< t`` at distinct points ``x_1..x_k``, of which up to
``e = floor((k - t) / 2)`` may have been altered. Berlekamp–Welch finds a monic error locator
``E`` (degree ``e``) and ``Q = P E`` (degree ``< e + t``) from the ``k`` linear equations
``Q(x_i) = y_i E(x_i)``, solved by Gauss–Jordan elimination mod ``p``; then ``P = Q / E``.
A column is *decoded* when the division is exact and ``P`` disagrees with at most ``e``
shares; otherwise it has more errors than the code corrects.

This is the slow path of :func:`ppbfl.sharing.robust.robust_reconstruct`, run only on the
columns whose shares are inconsistent.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ppbfl.field.numba_kernels import addmod, invmod, mulmod, submod

__all__ = ["berlekamp_welch_columns"]

_ZERO = np.uint64(0)
_ONE = np.uint64(1)


@njit(cache=True, nogil=True)
def _decode_column(xs, ys, t, e, p, system, errors):
    """Decode one column; returns ``(ok, P(0))`` and marks wrong shares in ``errors`` (k,) bool."""
    k = xs.shape[0]
    nq = e + t
    cols = nq + e
    for i in range(k):
        x = xs[i]
        y = ys[i]
        power = _ONE
        for j in range(nq):
            system[i, j] = power
            if j < e:
                system[i, nq + j] = submod(_ZERO, mulmod(y, power, p), p)
            power = mulmod(power, x, p)
        # power is now x^(e+t); the right-hand side is y * x^e
        rhs = y
        for _ in range(e):
            rhs = mulmod(rhs, x, p)
        system[i, cols] = rhs
    # Gauss-Jordan elimination; free unknowns are set to 0
    pivot_row = np.full(cols, -1, dtype=np.int64)
    row = 0
    for c in range(cols):
        if row == k:
            break
        pivot = -1
        for r in range(row, k):
            if system[r, c] != _ZERO:
                pivot = r
                break
        if pivot < 0:
            continue
        if pivot != row:
            for cc in range(cols + 1):
                tmp = system[row, cc]
                system[row, cc] = system[pivot, cc]
                system[pivot, cc] = tmp
        inv = invmod(system[row, c], p)
        for cc in range(c, cols + 1):
            system[row, cc] = mulmod(system[row, cc], inv, p)
        for r in range(k):
            factor = system[r, c]
            if r != row and factor != _ZERO:
                for cc in range(c, cols + 1):
                    system[r, cc] = submod(system[r, cc], mulmod(factor, system[row, cc], p), p)
        pivot_row[c] = row
        row += 1
    for r in range(row, k):
        if system[r, cols] != _ZERO:
            return False, _ZERO
    solution = np.zeros(cols, dtype=np.uint64)
    for c in range(cols):
        if pivot_row[c] >= 0:
            solution[c] = system[pivot_row[c], cols]
    # P = Q / E with E = x^e + sum_{j<e} solution[nq + j] x^j
    remainder = solution[:nq].copy()
    quotient = np.zeros(t, dtype=np.uint64)
    for degree in range(nq - 1, e - 1, -1):
        lead = remainder[degree]
        shift = degree - e
        quotient[shift] = lead
        if lead != _ZERO:
            remainder[degree] = _ZERO
            for j in range(e):
                remainder[shift + j] = submod(remainder[shift + j], mulmod(lead, solution[nq + j], p), p)
    for j in range(e):
        if remainder[j] != _ZERO:
            return False, _ZERO
    wrong = 0
    for i in range(k):
        value = _ZERO
        for j in range(t - 1, -1, -1):
            value = addmod(mulmod(value, xs[i], p), quotient[j], p)
        errors[i] = value != ys[i]
        if errors[i]:
            wrong += 1
    if wrong > e:
        return False, _ZERO
    return True, quotient[0]


@njit(cache=True, nogil=True)
def berlekamp_welch_columns(xs, columns, t, e, p, secrets, errors, ok):
    """Decode every column of ``columns`` independently.

    Args:
        xs: (k,) uint64 distinct non-zero points.
        columns: (k, m) uint64 share values; column ``c`` holds one coordinate's ``k`` shares.
        t: threshold (polynomial degree ``< t``); e: errors to correct, ``2e <= k - t``.
        p: the prime (``uint64``).
        secrets: (m,) uint64 output, ``P_c(0)`` for decoded columns.
        errors: (k, m) bool output, True where a share disagrees with the decoded ``P_c``.
        ok: (m,) bool output, False where a column could not be decoded.
    """
    k, m = columns.shape
    system = np.empty((k, 2 * e + t + 1), dtype=np.uint64)
    ys = np.empty(k, dtype=np.uint64)
    column_errors = np.zeros(k, dtype=np.bool_)
    for c in range(m):
        for i in range(k):
            ys[i] = columns[i, c]
        decoded, secret = _decode_column(xs, ys, t, e, p, system, column_errors)
        ok[c] = decoded
        secrets[c] = secret
        for i in range(k):
            errors[i, c] = decoded and column_errors[i]
