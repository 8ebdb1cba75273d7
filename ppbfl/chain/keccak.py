"""Batched keccak-256 (Ethereum's hash, *not* NIST SHA3-256).

Merkle trees over share vectors hash thousands of short messages; one Python call per message
(pycryptodome / eth_hash) costs ~3.5 us of overhead, the permutation itself well under 1 us.
:func:`keccak256_rows` hashes every row of a ``(m, L)`` byte matrix in one compiled Numba loop
(:mod:`ppbfl.chain._keccak_numba`). Numba is imported on the first call, not with this module:
where it is not installed (a device on the native field backend) the rows are hashed one by one
with ``eth_hash`` (pycryptodome), which is also the reference the tests compare against.

Keccak-f[1600] with rate 136 bytes and the original Keccak padding ``0x01 .. 0x80``
(FIPS 202 SHA3 uses ``0x06``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from eth_hash.auto import keccak as _keccak_one

__all__ = ["RATE", "keccak256", "keccak256_rows"]

#: bytes absorbed per permutation (1088-bit rate of keccak-256)
RATE = 136

_rows_impl: Callable[[np.ndarray], np.ndarray] | None = None


def _rows_one_by_one(data: np.ndarray) -> np.ndarray:
    """The fallback without Numba: one pycryptodome call per row, ``(m, L) uint8 -> (m, 32) uint8``."""
    digests = b"".join(_keccak_one(row.tobytes()) for row in data)
    return np.frombuffer(digests, dtype=np.uint8).reshape(data.shape[0], 32)


def _resolve() -> Callable[[np.ndarray], np.ndarray]:
    """Pick the row hasher once per process: Numba's batched kernel if Numba imports, else the fallback."""
    global _rows_impl
    try:
        from ppbfl.chain._keccak_numba import keccak256_rows_numba
    except ImportError:
        _rows_impl = _rows_one_by_one
    else:
        _rows_impl = keccak256_rows_numba
    return _rows_impl


def keccak256_rows(data: np.ndarray) -> np.ndarray:
    """keccak-256 of every row of ``data``: ``(m, L) uint8 -> (m, 32) uint8`` (digest bytes)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if data.ndim != 2:
        raise ValueError(f"data: expected a (m, L) uint8 matrix, got shape {data.shape}")
    return (_rows_impl or _resolve())(data)


def keccak256(message: bytes) -> bytes:
    """keccak-256 of one message (convenience wrapper over :func:`keccak256_rows`)."""
    return keccak256_rows(np.frombuffer(message, dtype=np.uint8).reshape(1, -1)).tobytes()
