"""The input-validity check (issue 13, :mod:`ppbfl.defense.validity`) against what it adds to.

Group ``validity device d=1e5`` (quick: d = 1e3), one device's work per round:

* ``device_share`` (baseline): what a device already does, seed-compressed Shamir sharing of its
  encoded update at (3, 5);
* ``device_prove``: what the check adds: expand ``R`` from the challenge seed, project
  (``k = 40``), bit-decompose, share the ``K`` bits and a mask.

Group ``validity edge m=100 d=1e5`` (quick: m = 20, d = 1e3), one edge node's verify step:

* ``edge_verify_today`` (baseline): the fused ``row_dots`` pass the node ran before the check
  (consistency, ``<g, r>``, ``||g||^2``);
* ``edge_validity``: what the check adds: ``v = R^T sigma`` once, one more pass of ``<v, g_i>``
  over the rows, and the ``O(K)`` work on the proofs (consistency, linear part, squares).
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
        return share(bits, T, N, rng=rng), share(rng.random(1), T, N, rng=rng)

    bit_shares, _ = benchmark(prove)
    assert bit_shares.shape == (N, PARAMS.proof_length)


@pytest.fixture(scope="module")
def rows() -> list[np.ndarray]:
    return [row.copy() for row in field_vector("validity-rows", (M, D))]


@pytest.mark.benchmark(group=EDGE)
def test_validity_edge_verify_today(benchmark, rows):
    lam, reference = field_vector("validity-lam", D), field_vector("validity-ref", D)
    benchmark(lambda: ops.row_dots(rows, lam, reference, squares=True, rows_name="shares"))


@pytest.mark.benchmark(group=EDGE)
def test_validity_edge_validity(benchmark, rows):
    stream = validity.projection_stream(SEED, PARAMS)
    bits = (field_vector("validity-bits", (M, PARAMS.proof_length)) & np.uint64(1)).astype(np.uint64)
    masks = field_vector("validity-masks", M)

    def check():
        coins = validity.proof_coins(SEED, bytes(32), PARAMS, stream=stream)
        g_dot_v = ops.row_dots(rows, coins.v, coins.v, squares=False, rows_name="shares")[0]
        consistency, linear = validity.proof_linear_shares(bits, masks, g_dot_v, coins)
        weighted = validity.weighted_bits(bits, coins)
        squares = ops.row_dots(weighted, coins.alpha, coins.alpha, rows_name="proof")[2]
        return consistency, ops.sub(linear, squares)

    consistency, z = benchmark(check)
    assert consistency.shape == z.shape == (M,)
