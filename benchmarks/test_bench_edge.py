"""An edge node's passes over its stored share rows, and the commitment leaf digest.

Group ``edge verify m=100 d=1e5`` (quick mode: m = 20, d = 1e3): the three per-device scalars an
edge node computes in ``VerifyRequest`` -- ``<g_i, lam>`` (consistency), ``<g_i, r>`` and
``<g_i, g_i>`` (honest-majority norm):

* ``fused_rows``: :func:`ppbfl.field.ops.row_dots` over the m separate stored rows (what
  ``EdgeNode._verify`` runs: decoded uploads and expanded seeds are used in place);
* ``fused_matrix``: the same kernel over one (m, d) matrix (the alternative design: the node
  stores every upload into a preallocated buffer, which costs ``copy_into_buffer`` on upload);
* ``copy_into_buffer``: copying the m rows into such a buffer (the price of that design);
* ``stack_three_passes``: the previous code, ``np.stack`` of the rows then ``dot_public`` twice
  and ``local_products`` (the baseline);
* ``matrix_three_passes``: the three unfused operations without the stack (isolates fusion).

Group ``edge aggregate m=100 d=1e5``: ``weighted_rowsum`` over the separate rows vs ``np.stack``
then ``weighted_rowsum`` (the previous code).

Group ``share leaf d=1e5``: one commitment leaf over a dense share vector, v3 (BLAKE3 payload
digest, :func:`ppbfl.protocol.commitments.share_leaf`) vs v2 (SHA-256, the previous format), and
the bare digests, with ``numpy.copyto`` of the same bytes as a memory floor.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from blake3 import blake3
from conftest import QUICK, field_vector, size_id
from eth_hash.auto import keccak

from ppbfl.field import ops
from ppbfl.mpc.honest_majority import local_products
from ppbfl.mpc.linear import dot_public
from ppbfl.protocol.commitments import share_leaf

M = 20 if QUICK else 100
D = 10**3 if QUICK else 10**5
VERIFY = f"edge verify m={M} d={size_id(D)}"
AGGREGATE = f"edge aggregate m={M} d={size_id(D)}"
LEAF = f"share leaf d={size_id(D)}"


@pytest.fixture(scope="module")
def rows() -> list[np.ndarray]:
    """m separate (d,) share rows, every other one read-only (as an edge node stores them)."""
    matrix = field_vector("edge-rows", (M, D))
    separate = [row.copy() for row in matrix]
    for row in separate[::2]:
        row.setflags(write=False)
    return separate


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    return field_vector("edge-lam", D), field_vector("edge-ref", D)


def _unfused(matrix: np.ndarray, lam: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.stack([dot_public(matrix, lam), dot_public(matrix, ref), local_products(matrix, matrix)])


@pytest.mark.benchmark(group=VERIFY)
def test_edge_verify_fused_rows(benchmark, rows, vectors):
    lam, ref = vectors
    result = benchmark(ops.row_dots, rows, lam, ref)
    assert np.array_equal(result, _unfused(np.stack(rows), lam, ref))


@pytest.mark.benchmark(group=VERIFY)
def test_edge_verify_fused_matrix(benchmark, rows, vectors):
    lam, ref = vectors
    matrix = np.stack(rows)
    result = benchmark(ops.row_dots, matrix, lam, ref)
    assert np.array_equal(result, _unfused(matrix, lam, ref))


@pytest.mark.benchmark(group=VERIFY)
def test_edge_verify_copy_into_buffer(benchmark, rows):
    buffer = np.empty((M, D), dtype=np.uint64)

    def store() -> np.ndarray:
        for i, row in enumerate(rows):
            buffer[i] = row
        return buffer

    result = benchmark(store)
    assert np.array_equal(result[-1], rows[-1])


@pytest.mark.benchmark(group=VERIFY)
def test_edge_verify_stack_three_passes(benchmark, rows, vectors):
    lam, ref = vectors
    result = benchmark(lambda: _unfused(np.stack(rows), lam, ref))
    assert np.array_equal(result, ops.row_dots(rows, lam, ref))


@pytest.mark.benchmark(group=VERIFY)
def test_edge_verify_matrix_three_passes(benchmark, rows, vectors):
    lam, ref = vectors
    matrix = np.stack(rows)
    result = benchmark(_unfused, matrix, lam, ref)
    assert np.array_equal(result, ops.row_dots(rows, lam, ref))


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    return field_vector("edge-weights", M)


@pytest.mark.benchmark(group=AGGREGATE)
def test_edge_aggregate_rows(benchmark, rows, weights):
    result = benchmark(ops.weighted_rowsum, weights, rows)
    assert np.array_equal(result, ops.weighted_rowsum(weights, np.stack(rows)))


@pytest.mark.benchmark(group=AGGREGATE)
def test_edge_aggregate_stack(benchmark, rows, weights):
    result = benchmark(lambda: ops.weighted_rowsum(weights, np.stack(rows)))
    assert np.array_equal(result, ops.weighted_rowsum(weights, rows))


def _leaf_v2(round: int, device: int, node: int, mask_share: int, share: np.ndarray) -> bytes:
    """The previous (v2) leaf: SHA-256 payload digest."""
    head = b"ppbfl/share/v2" + round.to_bytes(8, "big") + device.to_bytes(4, "big") + node.to_bytes(4, "big")
    body = b"\x00" + hashlib.sha256(np.ascontiguousarray(share, dtype="<u8")).digest()
    return keccak(head + body + mask_share.to_bytes(8, "big"))


@pytest.fixture(scope="module")
def share() -> np.ndarray:
    return field_vector("leaf-share", D)


@pytest.mark.benchmark(group=LEAF)
def test_leaf_v3_blake3(benchmark, share):
    leaf = benchmark(share_leaf, 7, 3, 2, 12345, share=share)
    assert len(leaf) == 32 and leaf != _leaf_v2(7, 3, 2, 12345, share)


@pytest.mark.benchmark(group=LEAF)
def test_leaf_v2_sha256(benchmark, share):
    leaf = benchmark(_leaf_v2, 7, 3, 2, 12345, share)
    assert len(leaf) == 32


@pytest.mark.benchmark(group=LEAF)
def test_leaf_digest_blake3(benchmark, share):
    payload = memoryview(share).cast("B")
    digest = benchmark(lambda: blake3(payload).digest())
    assert digest == blake3(share.tobytes()).digest()


@pytest.mark.benchmark(group=LEAF)
def test_leaf_digest_sha256(benchmark, share):
    digest = benchmark(lambda: hashlib.sha256(share).digest())
    assert digest == hashlib.sha256(share.tobytes()).digest()


@pytest.mark.benchmark(group=LEAF)
def test_leaf_copyto_floor(benchmark, share):
    out = np.empty_like(share)
    benchmark(np.copyto, out, share)
    assert np.array_equal(out, share)
