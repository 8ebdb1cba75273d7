"""What a device commits on chain for its shares: one Merkle root over ``n`` per-node leaves.

Leaf of edge node ``j`` (keccak-256, as the chain's Merkle trees)::

    keccak(b"ppbfl/share/v3" || round (8 bytes BE) || device (4) || j (4) || kind (1)
           || blake3(payload) || mask_share (8 bytes BE))

``kind`` 0: ``payload`` is the share vector's little-endian uint64 bytes; kind 1: ``payload`` is
the node's 32-byte PRG seed followed by the stream (8 bytes BE). The payload is digested with
BLAKE3 (32-byte output; the ``blake3`` package, SIMD, single-threaded): 0.20 ms for a d = 1e5
share here against 0.50 ms for OpenSSL's SHA-256 with the CPU's SHA extensions
(``benchmarks/test_bench_edge.py``, group ``share leaf``). Only
the devices and the edge nodes ever compute a leaf: the chain stores the root and never opens a
leaf (its Merkle audits are over aggregate shares, ``ppbfl.chain.merkle``), so the payload digest
is not constrained by the EVM's precompiles. v2 leaves used SHA-256 for the payload digest.

A node that recomputes its own leaf from what it received and finds it among the committed
leaves, whose root is the device's on-chain commitment, knows it holds what the device committed
to (and the consistency check then tests that the committed shares lie on one polynomial). A
leaf reveals nothing usable about the share: the payload is a uniformly random vector or seed.
"""

from __future__ import annotations

import numpy as np
from blake3 import blake3
from eth_hash.auto import keccak

from ppbfl.chain.merkle import root_of_leaves

__all__ = ["commitment_root", "share_leaf"]

_DOMAIN = b"ppbfl/share/v3"


def share_leaf(
    round: int, device: int, node: int, mask_share: int, *, share: np.ndarray | None = None,
    seed: bytes | None = None, stream: int = 0,
) -> bytes:
    """The 32-byte leaf of node ``node``'s upload (exactly one of ``share`` (d,) uint64 and ``seed``).

    The share is digested in place (no copy unless it is not little-endian C-contiguous uint64).
    """
    head = _DOMAIN + round.to_bytes(8, "big") + device.to_bytes(4, "big") + node.to_bytes(4, "big")
    if share is not None and seed is None:
        payload = np.ascontiguousarray(share, dtype="<u8").view(np.uint8).data
        body = b"\x00" + blake3(payload).digest()
    elif seed is not None and share is None:
        body = b"\x01" + blake3(bytes(seed) + stream.to_bytes(8, "big")).digest()
    else:
        raise ValueError("share_leaf: give exactly one of share and seed")
    return keccak(head + body + int(mask_share).to_bytes(8, "big"))


def commitment_root(leaves: list[bytes]) -> bytes:
    """The device's on-chain commitment: the Merkle root (see :mod:`ppbfl.chain.merkle`) of its ``n`` leaves."""
    return root_of_leaves(leaves)
