"""Numba kernels of the validity check (:mod:`ppbfl.defense.validity`): they read the projection
matrix ``R`` straight from its keystream instead of materialising it. Row ``j`` of ``R`` is the
``ceil(d / 4)`` bytes from ``j * ceil(d / 4)``; entry ``i`` is the bit pair ``i % 4`` (LSB first) of
byte ``i // 4``: ``00``/``01`` -> 0, ``10`` -> +1, ``11`` -> -1.

No validation here; :mod:`ppbfl.defense.validity` checks shapes and the field (GF(2^61 - 1)).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M61 = np.uint64((1 << 61) - 1)
_LOW32 = np.int64(0xFFFFFFFF)


def _byte_table() -> np.ndarray:
    pairs = (np.arange(256)[:, None] >> (2 * np.arange(4))) & 3
    return np.array([0, 0, 1, -1], dtype=np.int64)[pairs]


_TABLE = _byte_table()  # byte -> its four entries


@njit(cache=True, nogil=True)
def _decode_row(stream: np.ndarray, start: int, d: int, out: np.ndarray) -> None:
    """Row entries in {-1, 0, 1} (int64) from the row's bytes at ``start``."""
    for b in range(d >> 2):
        entries = _TABLE[stream[start + b]]
        out[4 * b] = entries[0]
        out[4 * b + 1] = entries[1]
        out[4 * b + 2] = entries[2]
        out[4 * b + 3] = entries[3]
    for i in range(d & ~3, d):
        pair = (np.int64(stream[start + (i >> 2)]) >> (2 * (i & 3))) & 3
        out[i] = ((pair >> 1) & 1) * (1 - 2 * (pair & 1))


@njit(cache=True, nogil=True)
def project(stream: np.ndarray, g: np.ndarray, k: int, d: int) -> np.ndarray:
    """``y = R g`` over int64: (d,) int64 -> (k,) int64 (four independent accumulators per row)."""
    stride = (d + 3) >> 2
    full = d >> 2
    out = np.zeros(k, dtype=np.int64)
    for j in range(k):
        start = j * stride
        a0 = np.int64(0)
        a1 = np.int64(0)
        a2 = np.int64(0)
        a3 = np.int64(0)
        for b in range(full):
            entries = _TABLE[stream[start + b]]
            base = 4 * b
            a0 += entries[0] * g[base]
            a1 += entries[1] * g[base + 1]
            a2 += entries[2] * g[base + 2]
            a3 += entries[3] * g[base + 3]
        acc = a0 + a1 + a2 + a3
        for i in range(4 * full, d):
            acc += _TABLE[stream[start + (i >> 2)], i & 3] * g[i]
        out[j] = acc
    return out


@njit(cache=True, nogil=True)
def combine(stream: np.ndarray, sigma: np.ndarray, k: int, d: int, modulus: np.uint64) -> np.ndarray:
    """``v = R^T sigma`` mod ``p``: (k,) uint64 in ``[0, p)`` -> (d,) uint64 in ``[0, p)``, for
    ``p = 2^61 - 1`` or any ``p < 2^32``.

    ``sigma_j = hi_j 2^32 + lo_j``; the signed sums of the 32-bit halves over ``k <= 256`` rows
    stay below ``2^41`` in magnitude, so they accumulate in int64 without reduction.
    """
    stride = (d + 3) >> 2
    row = np.empty(d, dtype=np.int64)
    acc_lo = np.zeros(d, dtype=np.int64)
    acc_hi = np.zeros(d, dtype=np.int64)
    for j in range(k):
        _decode_row(stream, j * stride, d, row)
        lo = np.int64(sigma[j]) & _LOW32
        hi = np.int64(sigma[j]) >> 32
        for i in range(d):
            acc_lo[i] += row[i] * lo
            acc_hi[i] += row[i] * hi
    p = np.int64(modulus)
    out = np.empty(d, dtype=np.uint64)
    for i in range(d):
        lo_r = acc_lo[i] % p  # Python-style modulo: non-negative
        if modulus != _M61:  # p < 2^32: every sigma_j < 2^32, the high halves are 0
            out[i] = np.uint64(lo_r)
            continue
        hi_r = acc_hi[i] % p
        # hi * 2^32 mod p: hi = top * 2^29 + low, so hi * 2^32 = top * 2^61 + low * 2^32 = top + low * 2^32
        x = ((hi_r >> 29) + ((hi_r & ((1 << 29) - 1)) << 32)) % p
        out[i] = np.uint64((x + lo_r) % p)
    return out
