"""Merkle commitments of share vectors, matching ``PPBFLRounds``'s on-chain verification.

A vector of ``d`` field elements (``uint64`` in ``[0, p)``) is cut into ``ceil(d / 16)``
chunks of :data:`CHUNK` = 16 values; the last chunk is zero-padded (the length is not part of
the root: the contract takes ``d`` from the aggregator's post and derives the tree depth from it).

* leaf ``c`` = ``keccak256(uint32 c || v[16c] || ... || v[16c + 15])``, all big-endian
  (132 bytes: one keccak block), i.e. ``abi.encodePacked(uint32(c), bytes chunk)``;
* node = ``keccak256(left || right)``; a level with an odd number of nodes is padded with the
  all-zero subtree of that height (``Z_0 = 0x00..00``, ``Z_{h+1} = keccak256(Z_h || Z_h)``),
  i.e. the leaves are padded with zero hashes up to a power of two;
* depth = ``ceil(log2(ceil(d / 16)))`` (a one-chunk vector's root is its leaf).

A proof of coordinate ``i`` opens its whole chunk (128 bytes) plus ``depth`` sibling hashes.
:func:`root_of_leaves` builds the same kind of tree over given 32-byte leaves (a device's one
commitment over its ``n`` per-edge-node roots).

Leaf bytes are prepared with NumPy and hashed in one batch (:mod:`ppbfl.chain.keccak`);
committing ``d = 1e5`` takes a few milliseconds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.keccak import keccak256_rows

__all__ = [
    "CHUNK",
    "ChunkProof",
    "VectorTree",
    "leaf_proof",
    "merkle_proof",
    "merkle_root",
    "merkle_tree",
    "root_of_leaves",
    "tree_depth",
    "verify_chunk_proof",
    "verify_leaf_proof",
]

#: field elements per Merkle leaf
CHUNK = 16
_CHUNK_BYTES = 8 * CHUNK
_ZERO = bytes(32)


@dataclass(frozen=True)
class ChunkProof:
    """Opening of one chunk of a committed vector.

    ``chunk``: the 128 bytes of the chunk (16 big-endian uint64); ``siblings``: ``depth``
    32-byte hashes, leaf level first.
    """

    chunk_index: int
    chunk: bytes
    siblings: tuple[bytes, ...]

    def value(self, coordinate: int) -> int:
        """The committed value of ``coordinate`` (which must lie in this chunk)."""
        offset = coordinate - CHUNK * self.chunk_index
        if not 0 <= offset < CHUNK:
            raise ChainValueError("coordinate", f"{coordinate} is not in chunk {self.chunk_index}")
        return int.from_bytes(self.chunk[8 * offset : 8 * offset + 8], "big")


def tree_depth(length: int) -> int:
    """Depth of the tree over a vector of ``length`` elements (``ceil(log2(ceil(length / 16)))``)."""
    if length < 1:
        raise ChainValueError("length", f"{length} < 1")
    leaves = -(-length // CHUNK)
    return (leaves - 1).bit_length()


@functools.cache
def _zero_hashes(depth: int) -> tuple[bytes, ...]:
    """The roots of all-zero subtrees of heights ``0..depth`` (computed once per depth)."""
    zeros = [_ZERO]
    for _ in range(depth):
        zeros.append(keccak256_rows(np.frombuffer(zeros[-1] * 2, dtype=np.uint8).reshape(1, 64)).tobytes())
    return tuple(zeros)


def _levels(leaves: np.ndarray) -> list[np.ndarray]:
    """All levels ``(count_h, 32) uint8`` from the leaves up to the root (odd levels zero-padded)."""
    levels = [leaves]
    depth = (len(leaves) - 1).bit_length()
    zeros = _zero_hashes(depth)
    for h in range(depth):
        level = levels[-1]
        if len(level) % 2:
            level = np.vstack([level, np.frombuffer(zeros[h], dtype=np.uint8)[None, :]])
        levels.append(keccak256_rows(level.reshape(-1, 64)))
    return levels


def _check_vector(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector)
    if vector.dtype != np.uint64:
        raise ChainValueError("vector", f"dtype {vector.dtype} is not uint64")
    if vector.ndim != 1 or vector.size == 0:
        raise ChainValueError("vector", f"shape {vector.shape}, expected (d,) with d >= 1")
    return vector


@dataclass(frozen=True)
class VectorTree:
    """The Merkle tree of one vector: ``root`` and chunk proofs (``levels[0]`` are the leaves)."""

    length: int
    chunks: np.ndarray  # (num_chunks, 128) uint8
    levels: tuple[np.ndarray, ...]

    @property
    def root(self) -> bytes:
        """The 32-byte root committed on chain."""
        return self.levels[-1][0].tobytes()

    @property
    def depth(self) -> int:
        """Number of sibling hashes in a proof."""
        return len(self.levels) - 1

    def proof(self, coordinate: int, height: int | None = None) -> ChunkProof:
        """Opening of the chunk holding ``coordinate`` (0-based, ``< length``).

        ``height`` (default: the depth) stops the path at that tree height: the proof then
        ends at a node of :meth:`frontier` instead of the root."""
        if not 0 <= coordinate < self.length:
            raise ChainValueError("coordinate", f"{coordinate} is not in [0, {self.length})")
        height = self.depth if height is None else height
        if not 0 <= height <= self.depth:
            raise ChainValueError("height", f"{height} is not in [0, {self.depth}]")
        index = coordinate // CHUNK
        zeros = _zero_hashes(self.depth)
        siblings = []
        position = index
        for h, level in enumerate(self.levels[:height]):
            sibling = position ^ 1
            siblings.append(level[sibling].tobytes() if sibling < len(level) else zeros[h])
            position >>= 1
        return ChunkProof(index, self.chunks[index].tobytes(), tuple(siblings))


    def frontier(self, height: int) -> tuple[bytes, ...]:
        """All ``2^(depth - height)`` nodes at tree ``height`` (0 = leaves), zero-padded, left to right."""
        if not 0 <= height <= self.depth:
            raise ChainValueError("height", f"{height} is not in [0, {self.depth}]")
        level = [row.tobytes() for row in self.levels[height]]
        width = 1 << (self.depth - height)
        return tuple(level + [_zero_hashes(height)[height]] * (width - len(level)))


def merkle_tree(vector: np.ndarray) -> VectorTree:
    """Build the tree of ``vector: (d,) uint64`` (values are committed as given, big-endian)."""
    vector = _check_vector(vector)
    count = -(-vector.size // CHUNK)
    padded = np.zeros(count * CHUNK, dtype=">u8")
    padded[: vector.size] = vector
    chunks = padded.view(np.uint8).reshape(count, _CHUNK_BYTES)
    rows = np.empty((count, 4 + _CHUNK_BYTES), dtype=np.uint8)
    rows[:, :4] = np.arange(count, dtype=">u4").view(np.uint8).reshape(count, 4)
    rows[:, 4:] = chunks
    return VectorTree(vector.size, chunks, tuple(_levels(keccak256_rows(rows))))


def merkle_root(vector: np.ndarray) -> bytes:
    """32-byte Merkle root of ``vector: (d,) uint64`` (see the module docstring for the layout)."""
    return merkle_tree(vector).root


def merkle_proof(vector: np.ndarray, coordinate: int) -> ChunkProof:
    """Proof for ``vector[coordinate]`` (builds the tree; use :func:`merkle_tree` for many proofs)."""
    return merkle_tree(vector).proof(coordinate)


def _fold(node: bytes, index: int, siblings: Sequence[bytes]) -> bytes:
    for sibling in siblings:
        pair = node + sibling if index % 2 == 0 else sibling + node
        node = keccak256_rows(np.frombuffer(pair, dtype=np.uint8).reshape(1, 64)).tobytes()
        index >>= 1
    return node


def verify_chunk_proof(root: bytes, proof: ChunkProof, length: int) -> bool:
    """True when ``proof`` opens a chunk of a ``length``-element vector committed as ``root``."""
    if len(proof.chunk) != _CHUNK_BYTES or len(proof.siblings) != tree_depth(length):
        return False
    if not 0 <= proof.chunk_index < -(-length // CHUNK):
        return False
    leaf_bytes = proof.chunk_index.to_bytes(4, "big") + proof.chunk
    leaf = keccak256_rows(np.frombuffer(leaf_bytes, dtype=np.uint8).reshape(1, -1)).tobytes()
    return _fold(leaf, proof.chunk_index, proof.siblings) == bytes(root)


def _check_leaves(leaves: Sequence[bytes]) -> np.ndarray:
    if len(leaves) == 0:
        raise ChainValueError("leaves", "no leaves")
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, (bytes, bytearray)) or len(leaf) != 32:
            raise ChainValueError(f"leaves[{i}]", "is not 32 bytes")
    return np.frombuffer(b"".join(bytes(x) for x in leaves), dtype=np.uint8).reshape(len(leaves), 32)


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over the given 32-byte ``leaves`` (same node rule and zero padding)."""
    return _levels(_check_leaves(leaves))[-1][0].tobytes()


def leaf_proof(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """Sibling path (leaf level first) of ``leaves[index]`` in :func:`root_of_leaves`' tree."""
    levels = _levels(_check_leaves(leaves))
    if not 0 <= index < len(leaves):
        raise ChainValueError("index", f"{index} is not in [0, {len(leaves)})")
    zeros = _zero_hashes(len(levels) - 1)
    path = []
    for h, level in enumerate(levels[:-1]):
        sibling = (index >> h) ^ 1
        path.append(level[sibling].tobytes() if sibling < len(level) else zeros[h])
    return tuple(path)


def verify_leaf_proof(root: bytes, leaf: bytes, index: int, siblings: Sequence[bytes]) -> bool:
    """True when ``siblings`` prove ``leaf`` at ``index`` under ``root``."""
    if not 0 <= index < 1 << len(siblings) and not (index == 0 and not siblings):
        return False
    return _fold(bytes(leaf), index, siblings) == bytes(root)
