"""Cryptographically secure uniform field elements from a ChaCha20 keystream.

:class:`FieldRNG` turns the ChaCha20 keystream of the ``cryptography`` package (OpenSSL) into
uniform elements of ``GF(p)``: each 64-bit little-endian keystream word is masked to
``bits(p)`` bits and words ``>= p`` are rejected, so every accepted value is exactly uniform
on ``[0, p)``. For ``p = 2^61 - 1`` the rejection probability is ``2^-61`` per word.

The key is a 32-byte seed: given a seed, the output is a deterministic function of the seed,
the ``(stream, block)`` identifier and the sequence of requests (the basis of seed-compressed
shares and of reproducible tests). Without a seed the key comes from :func:`secrets.token_bytes`.

The PRG ``seed -> vector`` (:func:`expand_seed`) is defined block-wise: coordinates
``[b * PRG_BLOCK, (b + 1) * PRG_BLOCK)`` come from the ChaCha20 stream with nonce
``(stream, block = b)``, so blocks are generated independently (in parallel) and any block
can be recomputed alone.
NumPy's generators are for simulation only and are never used here.
"""

from __future__ import annotations

import secrets

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ppbfl.errors import FieldShapeError, SeedError
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["FieldRNG", "SEED_BYTES", "PRG_BLOCK", "new_seed", "expand_seed", "expand_seed_block", "check_seed"]

SEED_BYTES = 32
PRG_BLOCK = 1 << 16  # coordinates per independently keyed block of expand_seed
_CHUNK_WORDS = 1 << 17  # 1 MiB of keystream per cipher call
_ZEROS = memoryview(bytes(8 * _CHUNK_WORDS))  # plaintext for the keystream, shared read-only


def new_seed() -> bytes:
    """A fresh 32-byte seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def check_seed(seed: object) -> bytes:
    """Return ``seed`` as bytes if it is exactly 32 bytes, else raise :class:`SeedError`."""
    if not isinstance(seed, (bytes, bytearray)):
        raise SeedError(f"seed: expected {SEED_BYTES} bytes, got {type(seed).__name__}")
    if len(seed) != SEED_BYTES:
        raise SeedError(f"seed: expected {SEED_BYTES} bytes, got {len(seed)}")
    return bytes(seed)


class FieldRNG:
    """A ChaCha20-keyed stream of uniform field elements.

    Args:
        seed: 32 bytes, or None for a fresh random key.
        stream: a 64-bit stream identifier; one seed yields independent streams for
            different identifiers.
        block: a 32-bit sub-stream identifier (the block index of :func:`expand_seed`).
        field: the field to sample (default ``GF(2^61 - 1)``).

    One stream yields at most 256 GiB of keystream (ChaCha20's 32-bit block counter). An
    instance is a sequential stream: do not share one between threads (create one per thread,
    or derive per-thread seeds with :meth:`random_bytes`).
    """

    def __init__(
        self, seed: bytes | None = None, *, stream: int = 0, block: int = 0, field: PrimeField = GF61
    ) -> None:
        key = new_seed() if seed is None else check_seed(seed)
        if not 0 <= stream < (1 << 64):
            raise FieldShapeError("stream", (stream,), "an int in [0, 2^64)")
        if not 0 <= block < (1 << 32):
            raise FieldShapeError("block", (block,), "an int in [0, 2^32)")
        # cryptography's 16-byte ChaCha20 "nonce" is RFC 7539's 32-bit little-endian block
        # counter (starting at 0) followed by the 96-bit nonce: here (block, stream).
        nonce = bytes(4) + block.to_bytes(4, "little") + stream.to_bytes(8, "little")
        self._encryptor = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor()
        self.field = field
        self._mask = np.uint64((1 << field.bits) - 1)

    def _keystream_words(self, out: np.ndarray) -> None:
        """Fill the 1-D uint64 array ``out`` with raw little-endian keystream words."""
        view = out.view(np.uint8)
        for start in range(0, view.size, len(_ZEROS)):
            stop = min(view.size, start + len(_ZEROS))
            chunk = _ZEROS[: stop - start]
            self._encryptor.update_into(chunk, view[start:stop].data)

    def random(self, size: int | tuple[int, ...]) -> np.ndarray:
        """Uniform elements of ``GF(p)``.

        Args:
            size: output shape (an int or a tuple of ints).

        Returns:
            uint64 array of that shape, values in ``[0, p)``, C-contiguous.
        """
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        if any(int(s) < 0 for s in shape):
            raise FieldShapeError("size", shape, "non-negative dimensions")
        out = np.empty(shape, dtype=np.uint64)
        flat = out.reshape(-1)
        self.fill(flat)
        return out

    def fill(self, out: np.ndarray) -> None:
        """Overwrite the C-contiguous 1-D uint64 array ``out`` with uniform elements of ``GF(p)``.

        The accepted words are taken from the keystream strictly in order, so the output does
        not depend on how a long request is cut into calls: ``fill`` of ``a`` then ``b``
        elements yields the same values as one ``fill`` of ``a + b``.
        """
        if out.dtype != np.uint64 or out.ndim != 1 or not out.flags.c_contiguous:
            raise FieldShapeError("out", out.shape, "a C-contiguous 1-D uint64 array")
        p = np.uint64(self.field.p)
        filled = 0
        while filled < out.size:
            tail = out[filled:]
            self._keystream_words(tail)
            np.bitwise_and(tail, self._mask, out=tail)
            if tail.max() < p:
                return
            kept = tail[tail < p]
            tail[: kept.size] = kept
            filled += kept.size

    def random_bytes(self, n: int) -> bytes:
        """``n`` raw keystream bytes (e.g. to derive child seeds)."""
        buf = np.empty(n, dtype=np.uint8)
        for start in range(0, n, len(_ZEROS)):
            stop = min(n, start + len(_ZEROS))
            self._encryptor.update_into(_ZEROS[: stop - start], buf[start:stop].data)
        return buf.tobytes()


def expand_seed_block(seed: bytes, block: int, width: int, *, stream: int = 0, field: PrimeField = GF61) -> np.ndarray:
    """Block ``block`` of :func:`expand_seed`: (width,) uint64, ``width <= PRG_BLOCK``."""
    return FieldRNG(seed, stream=stream, block=block, field=field).random(width)


def expand_seed(seed: bytes, size: int, *, stream: int = 0, field: PrimeField = GF61) -> np.ndarray:
    """The PRG ``seed -> vector``: ``size`` uniform field elements determined by ``seed``.

    Args:
        seed: exactly 32 bytes (else :class:`~ppbfl.errors.SeedError`).
        size: output length.
        stream: domain separator (e.g. the round number) so one seed never repeats a stream.

    Returns:
        (size,) uint64 in ``[0, p)``; the same arguments give the same bits, and coordinates
        ``[b * PRG_BLOCK, ...)`` equal :func:`expand_seed_block` of block ``b``.
    """
    key = check_seed(seed)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise FieldShapeError("size", (size,), "a non-negative int")
    out = np.empty(int(size), dtype=np.uint64)
    for block, start in enumerate(range(0, int(size), PRG_BLOCK)):
        stop = min(int(size), start + PRG_BLOCK)
        FieldRNG(key, stream=stream, block=block, field=field).fill(out[start:stop])
    return out
