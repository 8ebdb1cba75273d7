"""The Numba keccak-f[1600] kernels behind :func:`ppbfl.chain.keccak.keccak256_rows`.

Imported by :mod:`ppbfl.chain.keccak` on its first call when Numba is installed (a device
without Numba hashes with pycryptodome instead). Lanes are little-endian 64-bit words, state
index ``x + 5 y``; see :mod:`ppbfl.chain.keccak` for the padding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["keccak256_rows_numba"]

#: bytes absorbed per permutation (1088-bit rate of keccak-256)
RATE = 136

_RC = np.array(
    [
        0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
        0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
        0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
        0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
        0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
        0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
    ],
    dtype=np.uint64,
)
# rotation offset of lane x + 5 y (rho)
_ROT = np.array(
    [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14],
    dtype=np.uint64,
)
# pi: lane x + 5 y moves to y + 5 ((2 x + 3 y) mod 5)
_PI = np.array([y + 5 * ((2 * x + 3 * y) % 5) for y in range(5) for x in range(5)], dtype=np.int64)



@njit(cache=True, nogil=True)
def _permute(a: np.ndarray, c: np.ndarray, b: np.ndarray, rc: np.ndarray, rot: np.ndarray, pi: np.ndarray) -> None:
    """Keccak-f[1600] on the 25 lanes ``a`` in place (``c``: 5 and ``b``: 25 lanes of scratch)."""
    one = np.uint64(1)
    s63 = np.uint64(63)
    s64 = np.uint64(64)
    for rnd in range(24):
        for x in range(5):
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]
        for x in range(5):
            cx = c[(x + 1) % 5]
            d = c[(x + 4) % 5] ^ ((cx << one) | (cx >> s63))
            for y in range(0, 25, 5):
                a[x + y] ^= d
        for i in range(25):
            r = rot[i]
            v = a[i]
            b[pi[i]] = v if r == 0 else ((v << r) | (v >> (s64 - r)))
        for y in range(0, 25, 5):
            for x in range(5):
                a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y])
        a[0] ^= rc[rnd]


@njit(cache=True, nogil=True)
def _absorb_rows(lanes: np.ndarray, blocks: int, out: np.ndarray, rc: np.ndarray, rot: np.ndarray, pi: np.ndarray) -> None:
    """Hash row ``i`` of the padded lanes ``(m, blocks * 17)`` into ``out[i]`` (4 lanes)."""
    a = np.zeros(25, dtype=np.uint64)
    c = np.zeros(5, dtype=np.uint64)
    b = np.zeros(25, dtype=np.uint64)
    for i in range(lanes.shape[0]):
        a[:] = 0
        for blk in range(blocks):
            base = blk * 17
            for j in range(17):
                a[j] ^= lanes[i, base + j]
            _permute(a, c, b, rc, rot, pi)
        for j in range(4):
            out[i, j] = a[j]


def keccak256_rows_numba(data: np.ndarray) -> np.ndarray:
    """keccak-256 of every row of a C-contiguous ``(m, L) uint8`` matrix -> ``(m, 32) uint8``."""
    m, length = data.shape
    blocks = length // RATE + 1
    buf = np.zeros((m, blocks * RATE), dtype=np.uint8)
    buf[:, :length] = data
    buf[:, length] ^= 0x01
    buf[:, blocks * RATE - 1] ^= 0x80
    lanes = buf.view(np.dtype("<u8"))
    out = np.empty((m, 4), dtype=np.dtype("<u8"))
    _absorb_rows(lanes, blocks, out, _RC, _ROT, _PI)
    return out.view(np.uint8).reshape(m, 32)
