"""Light proof of work (hashcash) stamps for share commitments (DESIGN section 7).

A stamp for ``(device, round, commitment)`` is a ``uint64`` nonce with
``keccak256(abi.encodePacked(address device, uint64 round, bytes32 commitment, uint64 nonce))``
below ``2^(256 - bits)`` (``bits`` leading zero bits), exactly what ``PPBFLRounds.commitShares``
checks. The solver hashes nonces in batches with the Numba keccak (:mod:`ppbfl.chain.keccak`):
8-16 bits take milliseconds, each further bit doubles the expected work.
"""

from __future__ import annotations

import numpy as np
from eth_hash.auto import keccak
from eth_utils import to_canonical_address

from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.keccak import keccak256_rows

__all__ = ["MAX_POW_BITS", "pow_message", "pow_stamp", "pow_valid"]

#: the contract accepts difficulties up to 64 bits
MAX_POW_BITS = 64
_BATCH = 8192


def _check(device: str, round_: int, commitment: bytes, bits: int) -> bytes:
    if not 0 <= bits <= MAX_POW_BITS:
        raise ChainValueError("bits", f"{bits} is not in [0, {MAX_POW_BITS}]")
    if not 0 < round_ < 1 << 64:
        raise ChainValueError("round", f"{round_} is not a uint64 round number >= 1")
    if len(commitment) != 32:
        raise ChainValueError("commitment", f"{len(commitment)} bytes, expected 32")
    return to_canonical_address(device) + round_.to_bytes(8, "big") + bytes(commitment)


def pow_message(device: str, round_: int, commitment: bytes, nonce: int) -> bytes:
    """The 68 bytes the stamp hashes: device (20) || round (8) || commitment (32) || nonce (8)."""
    return _check(device, round_, commitment, 0) + int(nonce).to_bytes(8, "big")


def pow_valid(device: str, round_: int, commitment: bytes, nonce: int, bits: int) -> bool:
    """Reference check with eth_hash (pycryptodome keccak): does ``nonce`` meet ``bits``?"""
    _check(device, round_, commitment, bits)
    digest = int.from_bytes(keccak(pow_message(device, round_, commitment, nonce)), "big")
    return digest >> (256 - bits) == 0 if bits else True


def pow_stamp(device: str, round_: int, commitment: bytes, bits: int, start: int = 0) -> int:
    """Smallest nonce ``>= start`` whose stamp has ``bits`` leading zero bits (batched search).

    Batches start at ``2^(bits + 1)`` nonces (a hit with probability ~86 %: an 8-bit stamp hashes
    ~512 nonces, not a whole batch of 8192) and double up to 8192.
    """
    prefix = np.frombuffer(_check(device, round_, commitment, bits), dtype=np.uint8)
    if bits == 0:
        return start
    batch = min(_BATCH, 1 << (bits + 1))
    shift = np.uint64(64 - bits)
    base = start
    while base < 1 << 64:
        rows = np.empty((batch, 68), dtype=np.uint8)
        rows[:, :60] = prefix
        nonces = np.arange(base, base + batch, dtype=np.uint64)
        rows[:, 60:] = nonces.astype(">u8").view(np.uint8).reshape(batch, 8)
        top = keccak256_rows(rows)[:, :8].copy().view(">u8").ravel()
        hits = np.flatnonzero((top >> shift) == 0)
        if hits.size:
            return int(nonces[hits[0]])
        base += batch
        batch = min(_BATCH, 2 * batch)
    raise ChainValueError("bits", f"no stamp found for {bits} bits")  # pragma: no cover
