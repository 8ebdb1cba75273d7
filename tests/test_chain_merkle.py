"""Batched keccak, Merkle commitments and PoW stamps against independent references.

References: eth_hash (pycryptodome keccak, one call per message) and a naive recursive Merkle
tree written here from the layout in docs/chain.md. The contract's own verification of these
proofs is exercised by the audit tests in test_chain_contract.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain import (
    CHUNK,
    ChainValueError,
    keccak256_rows,
    leaf_proof,
    merkle_root,
    merkle_tree,
    pow_stamp,
    pow_valid,
    root_of_leaves,
    tree_depth,
    verify_chunk_proof,
    verify_leaf_proof,
)

P = (1 << 61) - 1


def naive_root(leaves: list[bytes]) -> bytes:
    """Recursive reference: pad to a power of two with zero hashes, hash pairs."""
    size = 1
    while size < len(leaves):
        size *= 2
    padded = leaves + [bytes(32)] * (size - len(leaves))

    def build(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return nodes[0]
        half = len(nodes) // 2
        return keccak(build(nodes[:half]) + build(nodes[half:]))

    return build(padded)


def naive_vector_root(vector: np.ndarray) -> bytes:
    values = [int(v) for v in vector] + [0] * (-len(vector) % CHUNK)
    leaves = [
        keccak(c.to_bytes(4, "big") + b"".join(v.to_bytes(8, "big") for v in values[CHUNK * c : CHUNK * c + CHUNK]))
        for c in range(len(values) // CHUNK)
    ]
    return naive_root(leaves)


@given(st.integers(0, 300), st.integers(1, 6), st.data())
@settings(max_examples=60, deadline=None)
def test_keccak_rows_match_eth_hash(length, count, data):
    blob = data.draw(st.binary(min_size=length * count, max_size=length * count))
    messages = [blob[i * length : (i + 1) * length] for i in range(count)]
    rows = np.frombuffer(blob, dtype=np.uint8).reshape(count, length)
    assert [d.tobytes() for d in keccak256_rows(rows)] == [keccak(m) for m in messages]


def test_keccak_rate_boundaries():
    for length in (135, 136, 137, 271, 272):
        message = bytes(range(256)) * 2
        message = message[:length]
        assert keccak256_rows(np.frombuffer(message, np.uint8)[None, :]).tobytes() == keccak(message)


@pytest.mark.parametrize("d", [1, 15, 16, 17, 32, 33, 100, 1000])
def test_vector_root_matches_naive_reference(d):
    vector = np.random.default_rng(d).integers(0, P, size=d, dtype=np.uint64)
    assert merkle_root(vector) == naive_vector_root(vector)
    assert merkle_tree(vector).depth == tree_depth(d)


@given(st.integers(1, 400), st.data())
@settings(max_examples=40, deadline=None)
def test_every_chunk_proof_verifies_and_opens_the_value(d, data):
    vector = np.random.default_rng(d).integers(0, P, size=d, dtype=np.uint64)
    tree = merkle_tree(vector)
    coordinate = data.draw(st.integers(0, d - 1))
    proof = tree.proof(coordinate)
    assert verify_chunk_proof(tree.root, proof, d)
    assert proof.value(coordinate) == int(vector[coordinate])


@given(st.integers(2, 300), st.data())
@settings(max_examples=40, deadline=None)
def test_tampered_proofs_fail(d, data):
    vector = np.random.default_rng(d).integers(0, P, size=d, dtype=np.uint64)
    tree = merkle_tree(vector)
    proof = tree.proof(data.draw(st.integers(0, d - 1)))
    byte = data.draw(st.integers(0, len(proof.chunk) - 1))
    bad_chunk = bytearray(proof.chunk)
    bad_chunk[byte] ^= 1
    assert not verify_chunk_proof(tree.root, type(proof)(proof.chunk_index, bytes(bad_chunk), proof.siblings), d)
    if proof.siblings:
        level = data.draw(st.integers(0, len(proof.siblings) - 1))
        siblings = list(proof.siblings)
        siblings[level] = bytes(32) if siblings[level] != bytes(32) else b"\x01" * 32
        assert not verify_chunk_proof(tree.root, type(proof)(proof.chunk_index, proof.chunk, tuple(siblings)), d)


def test_changing_one_coordinate_changes_the_root():
    vector = np.arange(1000, dtype=np.uint64)
    other = vector.copy()
    other[777] += np.uint64(1)
    assert merkle_root(vector) != merkle_root(other)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=12), st.data())
@settings(max_examples=40, deadline=None)
def test_root_of_leaves_and_leaf_proofs(leaves, data):
    root = root_of_leaves(leaves)
    assert root == naive_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = leaf_proof(leaves, index)
    assert verify_leaf_proof(root, leaves[index], index, path)
    assert not verify_leaf_proof(root, keccak(leaves[index]), index, path)


def test_bad_inputs_are_typed_errors():
    with pytest.raises(ChainValueError, match="vector"):
        merkle_root(np.arange(4, dtype=np.int64))
    with pytest.raises(ChainValueError, match="vector"):
        merkle_root(np.zeros(0, dtype=np.uint64))
    with pytest.raises(ChainValueError, match="coordinate"):
        merkle_tree(np.arange(4, dtype=np.uint64)).proof(4)
    with pytest.raises(ChainValueError, match=r"leaves\[1\]"):
        root_of_leaves([bytes(32), b"short"])
    with pytest.raises(ChainValueError, match="bits"):
        pow_stamp(*DEPLOYMENT, "0x" + "11" * 20, 1, bytes(32), 65)


DEPLOYMENT = ("0x" + "ee" * 20, 31337)  # (contract address, chain id) a stamp is bound to


@pytest.mark.parametrize("bits", [0, 1, 8, 12])
def test_pow_stamp_is_the_smallest_valid_nonce(bits):
    device, commitment = "0x" + "ab" * 20, keccak(b"root")
    nonce = pow_stamp(*DEPLOYMENT, device, 7, commitment, bits)
    assert pow_valid(*DEPLOYMENT, device, 7, commitment, nonce, bits)
    assert all(not pow_valid(*DEPLOYMENT, device, 7, commitment, k, bits) for k in range(nonce))


def test_pow_stamp_across_growing_batches_is_still_the_smallest_nonce():
    """Batches start at 2^(bits + 1) nonces and double: stamps past the first batch (about one in
    seven at any difficulty) must still be the first valid nonce."""
    device, bits = "0x" + "cd" * 20, 5
    nonces = [pow_stamp(*DEPLOYMENT, device, 3, keccak(bytes([i])), bits) for i in range(60)]
    assert max(nonces) >= 1 << (bits + 1)  # some searches went past the first batch
    for i, nonce in enumerate(nonces):
        commitment = keccak(bytes([i]))
        assert pow_valid(*DEPLOYMENT, device, 3, commitment, nonce, bits)
        assert not any(pow_valid(*DEPLOYMENT, device, 3, commitment, k, bits) for k in range(nonce))


@given(st.integers(1, 3000), st.integers(0, 6), st.data())
@settings(max_examples=30, deadline=None)
def test_truncated_proofs_end_at_the_frontier(d, top, data):
    vector = np.random.default_rng(d).integers(0, P, size=d, dtype=np.uint64)
    tree = merkle_tree(vector)
    height = max(0, tree.depth - top)
    frontier = tree.frontier(height)
    assert len(frontier) == 1 << (tree.depth - height)
    assert root_of_leaves(list(frontier)) == tree.root
    coordinate = data.draw(st.integers(0, d - 1))
    proof = tree.proof(coordinate, height=height)
    assert len(proof.siblings) == height
    full = tree.proof(coordinate)
    assert proof.siblings == full.siblings[:height]
    leaf = keccak(proof.chunk_index.to_bytes(4, "big") + proof.chunk)
    node_index = proof.chunk_index >> height
    assert verify_leaf_proof(frontier[node_index], leaf, proof.chunk_index & ((1 << height) - 1), proof.siblings)
