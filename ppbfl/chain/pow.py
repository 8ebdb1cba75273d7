"""Light proof of work (hashcash) stamps for share commitments, and the commitment binding (DESIGN section 7).

A stamp for ``(contract, chain id, device, round, commitment)`` is a ``uint64`` nonce with
``keccak256(abi.encodePacked(address contract, uint64 chainid, address device, uint64 round,
bytes32 commitment, uint64 nonce))`` below ``2^(256 - bits)`` (``bits`` leading zero bits),
exactly what ``PPBFLRounds.commitShares`` checks: a stamp is bound to its deployment, round and
device, so work done for one never counts for another. The solver hashes nonces in batches with
the Numba keccak (:mod:`ppbfl.chain.keccak`): 8-16 bits take milliseconds, each further bit
doubles the expected work.

Whatever the difficulty (at 0 bits there is no stamp), the contract stores a commitment bound
to its round and device: :func:`bind_commitment` ``= keccak256(root || uint64 round || uint32
device id)``. A root copied from another device, or replayed from an earlier round, is stored as
a different value, which no upload bound to the copier's (round, device) opens.
"""

from __future__ import annotations

import numpy as np
from eth_hash.auto import keccak
from eth_utils import to_canonical_address

from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.keccak import keccak256_rows

__all__ = ["MAX_POW_BITS", "bind_commitment", "pow_message", "pow_stamp", "pow_valid"]

#: the contract accepts difficulties up to 64 bits
MAX_POW_BITS = 64
#: bytes of a stamp's message: contract (20) || chain id (8) || device (20) || round (8) || commitment (32) || nonce (8)
MESSAGE_BYTES = 96
_BATCH = 8192


def _check(contract: str, chain_id: int, device: str, round_: int, commitment: bytes, bits: int) -> bytes:
    if not 0 <= bits <= MAX_POW_BITS:
        raise ChainValueError("bits", f"{bits} is not in [0, {MAX_POW_BITS}]")
    if not 0 < round_ < 1 << 64:
        raise ChainValueError("round", f"{round_} is not a uint64 round number >= 1")
    if not 0 <= chain_id < 1 << 64:
        raise ChainValueError("chain_id", f"{chain_id} is not a uint64")
    if len(commitment) != 32:
        raise ChainValueError("commitment", f"{len(commitment)} bytes, expected 32")
    return (
        to_canonical_address(contract) + chain_id.to_bytes(8, "big") + to_canonical_address(device)
        + round_.to_bytes(8, "big") + bytes(commitment)
    )


def bind_commitment(root: bytes, round_: int, device_id: int) -> bytes:
    """The commitment the contract stores for device ``device_id``'s ``root`` in ``round_``:
    ``keccak256(root (32) || round (8, BE) || device_id (4, BE))`` (``PPBFLRounds.bindCommitment``)."""
    if len(root) != 32:
        raise ChainValueError("root", f"{len(root)} bytes, expected 32")
    if not 0 <= round_ < 1 << 64:
        raise ChainValueError("round", f"{round_} is not a uint64")
    if not 0 <= device_id < 1 << 32:
        raise ChainValueError("device_id", f"{device_id} is not a uint32")
    return keccak(bytes(root) + round_.to_bytes(8, "big") + device_id.to_bytes(4, "big"))


def pow_message(contract: str, chain_id: int, device: str, round_: int, commitment: bytes, nonce: int) -> bytes:
    """The 96 bytes a stamp hashes: contract (20) || chain id (8) || device (20) || round (8) ||
    commitment (32) || nonce (8), integers big-endian."""
    return _check(contract, chain_id, device, round_, commitment, 0) + int(nonce).to_bytes(8, "big")


def pow_valid(contract: str, chain_id: int, device: str, round_: int, commitment: bytes, nonce: int, bits: int) -> bool:
    """Reference check with eth_hash (pycryptodome keccak): does ``nonce`` meet ``bits``?"""
    _check(contract, chain_id, device, round_, commitment, bits)
    digest = int.from_bytes(keccak(pow_message(contract, chain_id, device, round_, commitment, nonce)), "big")
    return digest >> (256 - bits) == 0 if bits else True


def pow_stamp(contract: str, chain_id: int, device: str, round_: int, commitment: bytes, bits: int, start: int = 0) -> int:
    """Smallest nonce ``>= start`` whose stamp for contract ``contract`` on chain ``chain_id`` has
    ``bits`` leading zero bits (batched search).

    Batches start at ``2^(bits + 1)`` nonces (a hit with probability ~86 %: an 8-bit stamp hashes
    ~512 nonces, not a whole batch of 8192) and double up to 8192.
    """
    prefix = np.frombuffer(_check(contract, chain_id, device, round_, commitment, bits), dtype=np.uint8)
    if bits == 0:
        return start
    batch = min(_BATCH, 1 << (bits + 1))
    shift = np.uint64(64 - bits)
    base = start
    head = MESSAGE_BYTES - 8
    while base < 1 << 64:
        rows = np.empty((batch, MESSAGE_BYTES), dtype=np.uint8)
        rows[:, :head] = prefix
        nonces = np.arange(base, base + batch, dtype=np.uint64)
        rows[:, head:] = nonces.astype(">u8").view(np.uint8).reshape(batch, 8)
        top = keccak256_rows(rows)[:, :8].copy().view(">u8").ravel()
        hits = np.flatnonzero((top >> shift) == 0)
        if hits.size:
            return int(nonces[hits[0]])
        base += batch
        batch = min(_BATCH, 2 * batch)
    raise ChainValueError("bits", f"no stamp found for {bits} bits")  # pragma: no cover
