"""The input-validity check (issue 13, :mod:`ppbfl.defense.validity`) against what it adds to.

Group ``validity device d=1e5`` (quick: d = 1e3), one device's work per round:

* ``device_share`` (baseline): what a device already does, seed-compressed Shamir sharing of its
  encoded update at (3, 5);
* ``device_prove``: what ``Device.prove`` adds: expand ``R`` from the challenge seed, project
  (``k = 40``), bit-decompose, share the ``K`` bits and a mask (one call);
* ``device_encode_checks``: what ``Device.share`` adds at encode time for the check: the centred
  copy of the encoded update kept for the proof and the L2 norm against the honest bound.

Group ``validity edge m=100 d=1e5`` (quick: m = 20, d = 1e3), one edge node's verify step:

* ``edge_verify_today`` (baseline): the fused ``row_dots`` pass the node ran before the check
  (consistency, ``<g, r>``, ``||g||^2``);
* ``edge_verify_validity``: the verify step with the check, as ``EdgeNode._verify`` runs it: the
  coins (``v = R^T sigma`` once), the same pass with ``<v, g_i>`` as a fourth output, and the
  ``O(K)`` work on the proofs (consistency, linear part, squares);
* ``edge_validity_two_passes``: the previous implementation's verify step (a second pass over the
  rows for ``<v, g_i>``), kept as the comparison for the fused pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, field_vector, size_id

from ppbfl.defense import validity
from ppbfl.field import GF61, ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.sharing.seeded import share_compressed
from ppbfl.sharing.shamir import share

M = 20 if QUICK else 100
D = 10**3 if QUICK else 10**5
T, N = 3, 5
DEVICE = f"validity device d={size_id(D)}"
EDGE = f"validity edge m={M} d={size_id(D)}"
SEED = bytes(range(32))
PARAMS = validity.ValidityParams.for_length(D)


@pytest.fixture(scope="module")
def update() -> np.ndarray:
    """An encoded update well inside the bound: (d,) uint64."""
    rng = np.random.default_rng(0)  # benchmark data only
    g = rng.normal(size=D)
    g *= 0.5 * PARAMS.honest_l2() / np.linalg.norm(g)
    return (np.rint(g).astype(np.int64) % np.int64(GF61.p)).astype(np.uint64)


@pytest.mark.benchmark(group=DEVICE)
def test_validity_device_share(benchmark, update):
    benchmark(lambda: share_compressed(update, T, N, stream=1))


@pytest.mark.benchmark(group=DEVICE)
def test_validity_device_prove(benchmark, update):
    rng = FieldRNG()
    g = validity.centred(update, GF61.p)

    def prove():
        y = validity.project(validity.projection_stream(SEED, PARAMS), g, PARAMS)
        bits = validity.bit_decompose(y, PARAMS, device=0)
        return share(np.append(bits, rng.random(1)), T, N, rng=rng)

    shares = benchmark(prove)
    assert shares.shape == (N, PARAMS.proof_length + 1)
    y = validity.project(validity.projection_stream(SEED, PARAMS), g, PARAMS)
    matrix = validity.projection_matrix(validity.projection_stream(SEED, PARAMS), PARAMS)
    assert y.tolist() == (matrix.astype(np.int64) @ g).tolist()  # R decoded by NumPy (unpackbits), not the kernels


@pytest.mark.benchmark(group=DEVICE)
def test_validity_device_encode_checks(benchmark, update):
    def checks():
        return validity.centred(update, GF61.p), validity.encoded_l2(update, GF61.p)

    g, norm = benchmark(checks)
    assert norm <= PARAMS.honest_l2() and g.dtype == np.int64


@pytest.fixture(scope="module")
def rows() -> list[np.ndarray]:
    return [row.copy() for row in field_vector("validity-rows", (M, D))]


@pytest.fixture(scope="module")
def proof_inputs():
    stream = validity.projection_stream(SEED, PARAMS)
    bits = (field_vector("validity-bits", (M, PARAMS.proof_length)) & np.uint64(1)).astype(np.uint64)
    return stream, bits, field_vector("validity-masks", M), field_vector("validity-lam", D), field_vector("validity-ref", D)


def _proof_part(bits, masks, g_dot_v, coins):
    consistency, linear = validity.proof_linear_shares(bits, masks, g_dot_v, coins)
    squares = ops.row_dots(validity.weighted_bits(bits, coins), coins.alpha, coins.alpha, rows_name="proof")[2]
    return consistency, ops.sub(linear, squares)


@pytest.mark.benchmark(group=EDGE)
def test_validity_edge_verify_today(benchmark, rows, proof_inputs):
    _, _, _, lam, reference = proof_inputs
    benchmark(lambda: ops.row_dots(rows, lam, reference, squares=True, rows_name="shares"))


@pytest.mark.benchmark(group=EDGE)
def test_validity_edge_verify_validity(benchmark, rows, proof_inputs):
    stream, bits, masks, lam, reference = proof_inputs

    def verify():
        coins = validity.proof_coins(SEED, bytes(32), PARAMS, stream=stream)
        sums = ops.row_dots(rows, lam, reference, coins.v, squares=True, rows_name="shares")
        return sums, _proof_part(bits, masks, sums[3], coins)

    sums, (consistency, z) = benchmark(verify)
    assert consistency.shape == z.shape == (M,)
    coins = validity.proof_coins(SEED, bytes(32), PARAMS, stream=stream)
    assert sums[:3].tolist() == ops.row_dots(rows, lam, reference, squares=True).tolist()
    assert sums[3].tolist() == [ops.dot(row, coins.v) for row in rows[:3]] + sums[3, 3:].tolist()


@pytest.mark.benchmark(group=EDGE)
def test_validity_edge_validity_two_passes(benchmark, rows, proof_inputs):
    stream, bits, masks, lam, reference = proof_inputs

    def verify():
        coins = validity.proof_coins(SEED, bytes(32), PARAMS, stream=stream)
        sums = ops.row_dots(rows, lam, reference, squares=True, rows_name="shares")
        g_dot_v = ops.row_dots(rows, coins.v, coins.v, squares=False, rows_name="shares")[0]
        return sums, _proof_part(bits, masks, g_dot_v, coins)

    benchmark(verify)
