"""Seed-compressed sharing: bit-identical expansion, valid Shamir sharing, typed errors."""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.errors import EvaluationPointError, FieldShapeError, SeedError
from ppbfl.field import GF61, FieldRNG
from ppbfl.field.csprng import PRG_BLOCK, expand_seed
from ppbfl.sharing import reconstruct, share_compressed

GF = galois.GF(GF61.p)


def _secret(d: int, seed: int = 0) -> np.ndarray:
    return FieldRNG(seed.to_bytes(32, "little")).random(d)


@settings(max_examples=30, deadline=None)
@given(t=st.integers(1, 6), extra=st.integers(0, 4), d=st.integers(1, 50), data=st.data())
def test_expanded_compressed_shares_are_a_valid_sharing(t, extra, d, data):
    n = t + extra
    secret = _secret(d, data.draw(st.integers(0, 1000)))
    sharing = share_compressed(secret, t, n, stream=data.draw(st.integers(0, 2**64 - 1)))
    assert sharing.dense.shape == (n - t + 1, d)
    assert len(sharing.seeds) == t - 1
    expanded = sharing.expand()
    x = GF(np.arange(1, n + 1))
    for j in range(min(d, 3)):
        poly = galois.lagrange_poly(x, GF(expanded[:, j]))
        assert poly.degree <= t - 1 and int(poly(GF(0))) == int(secret[j])
    subset = sorted(data.draw(st.permutations(range(1, n + 1)))[:t])
    np.testing.assert_array_equal(reconstruct(expanded[[i - 1 for i in subset]], subset), secret)


def test_seeded_parties_expand_bit_identical_vectors():
    secret = _secret(PRG_BLOCK + 100)
    seeds = [bytes([7]) * 32, bytes([9]) * 32]
    sharing = share_compressed(secret, 3, 5, seeded_points=[1, 4], seeds=seeds, stream=12)
    assert sharing.dense_points == (2, 3, 5)
    for point, seed in zip((1, 4), seeds):
        own = expand_seed(seed, secret.size, stream=12)
        np.testing.assert_array_equal(sharing.share_for(point), own)
        np.testing.assert_array_equal(sharing.expand()[point - 1], own)
    again = share_compressed(secret, 3, 5, seeded_points=[1, 4], seeds=seeds, stream=12)
    np.testing.assert_array_equal(again.dense, sharing.dense)
    other_stream = share_compressed(secret, 3, 5, seeded_points=[1, 4], seeds=seeds, stream=13)
    assert not np.array_equal(other_stream.dense, sharing.dense)


def test_compressed_and_expanded_reconstruct_across_blocks():
    secret = _secret(3 * PRG_BLOCK - 5, 3)
    sharing = share_compressed(secret, 6, 10)
    expanded = sharing.expand()
    np.testing.assert_array_equal(reconstruct(expanded[4:], list(range(5, 11))), secret)
    np.testing.assert_array_equal(expanded[[x - 1 for x in sharing.dense_points]], sharing.dense)


def test_bad_seeds_and_points_raise():
    secret = _secret(10)
    with pytest.raises(SeedError, match="expected 32 bytes, got 31"):
        share_compressed(secret, 3, 5, seeds=[bytes(31), bytes(32)])
    with pytest.raises(SeedError, match="got str"):
        share_compressed(secret, 3, 5, seeds=["x" * 32, bytes(32)])
    with pytest.raises(FieldShapeError, match="one seed per seeded point"):
        share_compressed(secret, 3, 5, seeds=[bytes(32)])
    with pytest.raises(EvaluationPointError, match=r"expected 2 distinct parties in 1..5"):
        share_compressed(secret, 3, 5, seeded_points=[1, 6])
    with pytest.raises(EvaluationPointError, match="repeats"):
        share_compressed(secret, 3, 5, seeded_points=[2, 2])
    with pytest.raises(EvaluationPointError, match="not a party"):
        share_compressed(secret, 3, 5).share_for(9)
