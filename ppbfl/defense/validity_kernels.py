"""Numba kernels of the validity check (:mod:`ppbfl.defense.validity`), the same contracts as the C
kernels ``pf_ternary_*`` of ``native/ppbfl_field.c``. They read the projection matrix ``R`` straight
from its keystream instead of materialising it.

Layout: a bit string of ``d`` bits takes ``8 ceil(d / 64)`` bytes (``row_bytes``), bit ``i`` is bit
``i % 8`` of byte ``i // 8``; the stream is the sign string then the ``k`` mask strings, and
``R[j, i] = mask_j[i] * (-1 if sign[i] else 1)``. Words are assembled from bytes (little-endian
by definition); these kernels take the stream as little-endian uint32 words (``row_bytes / 4``
per string). Each loop runs over the values with ``-((word >> (i & 31)) & 1)`` as the lane mask:
one ``and`` and one ``add`` per value, which LLVM vectorises. Which loop shape vectorises in
Numba was measured: the flat loop for the sums into a scalar (a nested loop over the 32 bits of
each word: 7x slower), the nested loop for the sums into the accumulator array of ``v`` (the
flat loop: 8x slower).

No validation here; :mod:`ppbfl.defense.validity` checks shapes and the field.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M61 = np.uint64((1 << 61) - 1)
_LIMIT32 = np.uint64(0xFFFFFFFF)
_TILE = 2048  # columns of v = R^T sigma accumulated at once (a multiple of 32)


@njit(cache=True, nogil=True)
def prepare(signs: np.ndarray, g: np.ndarray, h32: np.ndarray, h64: np.ndarray) -> bool:
    """``h_i = -g_i`` where sign bit ``i`` is set, else ``g_i``: ``signs`` uint32 words, ``g`` (d,) int64
    -> ``h32`` (d,) uint32 (two's complement) when ``sum |g_i| < 2^31`` (returns True), else ``h64``
    (d,) uint64 (returns False)."""
    d = g.shape[0]
    l1 = np.uint64(0)  # sum of min(|g_i|, 2^32 - 1): exact below 2^64 for d < 2^32
    for i in range(d):
        a = np.uint64(-g[i]) if g[i] < 0 else np.uint64(g[i])
        l1 += a if a < _LIMIT32 else _LIMIT32
    small = bool(l1 < np.uint64(1 << 31))
    for i in range(d):
        s = -((np.int64(signs[i >> 5]) >> (i & 31)) & 1)
        v = (g[i] ^ s) - s
        if small:
            h32[i] = np.uint32(v & 0xFFFFFFFF)
        else:
            h64[i] = np.uint64(v)
    return small


@njit(cache=True, nogil=True)
def project32(masks: np.ndarray, row_words: int, d: int, h: np.ndarray, y: np.ndarray, lo: int, hi: int) -> None:
    """``y[j] = sum_i mask_j[i] h_i`` for rows ``[lo, hi)``; ``h`` (d,) uint32, summed modulo ``2^32``
    (exact after :func:`prepare` returned True)."""
    for j in range(lo, hi):
        base = j * row_words
        acc = np.int64(0)
        for i in range(d):
            acc += np.int64(h[i]) & -((np.int64(masks[base + (i >> 5)]) >> (i & 31)) & 1)
        y[j] = np.int64(np.int32(np.uint32(acc & 0xFFFFFFFF)))


@njit(cache=True, nogil=True)
def project64(masks: np.ndarray, row_words: int, d: int, h: np.ndarray, y: np.ndarray, lo: int, hi: int) -> None:
    """``y[j] = sum_i mask_j[i] h_i`` modulo ``2^64`` for rows ``[lo, hi)``; ``h`` (d,) uint64."""
    for j in range(lo, hi):
        base = j * row_words
        acc = np.uint64(0)
        for i in range(d):
            acc += h[i] & np.uint64(-((np.int64(masks[base + (i >> 5)]) >> (i & 31)) & 1))
        y[j] = np.int64(acc)


@njit(cache=True, nogil=True)
def combine(stream: np.ndarray, sigma: np.ndarray, k: int, d: int, modulus: np.uint64, out: np.ndarray, lo: int, hi: int) -> None:
    """``out[i] = sum_j sigma_j R[j, i] mod p`` for columns ``[lo, hi)`` (``lo`` a multiple of 2048);
    ``stream`` as uint32 words, ``sigma`` (k,) uint64 in ``[0, p)``, ``k <= 256``, ``p = 2^61 - 1``
    or ``p < 2^32``.

    Terms are ``< 2^61``; for ``p = 2^61 - 1`` the accumulators fold every 7 rows
    (``acc < 2^61 + 8 + 7 (2^61 - 1) < 2^64``); for ``p < 2^32`` 256 terms stay below ``2^40``.
    """
    row_words = 2 * ((d + 63) // 64)
    m61 = modulus == _M61
    acc = np.empty(_TILE, dtype=np.uint64)
    for t0 in range(lo, hi, _TILE):
        n = min(_TILE, hi - t0)
        acc[:n] = 0
        for j in range(k):
            base = (j + 1) * row_words + (t0 >> 5)
            s = np.int64(sigma[j])
            words = n >> 5
            for w in range(words):  # nested over the 32 bits of a word: vectorises here, the flat loop does not
                x = np.int64(stream[base + w])
                for t in range(32):
                    acc[32 * w + t] += np.uint64(s & -((x >> t) & 1))
            for c in range(32 * words, n):
                acc[c] += np.uint64(s & -((np.int64(stream[base + (c >> 5)]) >> (c & 31)) & 1))
            if m61 and j % 7 == 6:
                for c in range(n):
                    acc[c] = (acc[c] & _M61) + (acc[c] >> np.uint64(61))
        for c in range(n):
            if m61:
                a = (acc[c] & _M61) + (acc[c] >> np.uint64(61))
                if a >= _M61:
                    a -= _M61
            else:
                a = acc[c] % modulus
            i = t0 + c
            negative = (stream[i >> 5] >> np.uint32(i & 31)) & np.uint32(1)
            out[i] = modulus - a if negative and a != 0 else a
