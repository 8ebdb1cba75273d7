"""Shamir sharing and reconstruction against galois, plus privacy and error behaviour."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, chisquare

from ppbfl.errors import (
    EvaluationPointError,
    FieldDTypeError,
    FieldRangeError,
    FieldShapeError,
    InsufficientSharesError,
    SharingParameterError,
)
from ppbfl.field import GF61, FieldRNG, PrimeField
from ppbfl.field.csprng import PRG_BLOCK
from ppbfl.sharing import lagrange_coefficients, lagrange_matrix, reconstruct, share

P = GF61.p
GF = galois.GF(P)

threshold_pairs = st.integers(1, 8).flatmap(lambda t: st.tuples(st.just(t), st.integers(t, 10)))


def _secret(seed: int, d: int, field: PrimeField = GF61) -> np.ndarray:
    return FieldRNG(seed.to_bytes(32, "little"), field=field).random(d)


@settings(max_examples=40, deadline=None)
@given(tn=threshold_pairs, d=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_shares_lie_on_a_degree_t_minus_1_polynomial_through_the_secret(tn, d, seed):
    t, n = tn
    secret = _secret(seed, d)
    shares = share(secret, t, n, rng=FieldRNG(seed.to_bytes(32, "big")))
    assert shares.shape == (n, d) and shares.dtype == np.uint64
    assert int(shares.max()) < P
    x = GF(np.arange(1, n + 1))
    for j in range(min(d, 3)):
        poly = galois.lagrange_poly(x, GF(shares[:, j]))
        assert poly.degree <= t - 1
        assert int(poly(GF(0))) == int(secret[j])


@settings(max_examples=25, deadline=None)
@given(tn=threshold_pairs, d=st.integers(1, 30), seed=st.integers(0, 2**32), data=st.data())
def test_any_t_shares_reconstruct_the_secret(tn, d, seed, data):
    t, n = tn
    secret = _secret(seed, d)
    shares = share(secret, t, n)
    subset = sorted(data.draw(st.permutations(range(1, n + 1)))[: data.draw(st.integers(t, n))])
    rows = shares[[x - 1 for x in subset]]
    np.testing.assert_array_equal(reconstruct(rows, subset), secret)
    np.testing.assert_array_equal(reconstruct(rows, subset, t=t), secret)


def test_every_3_of_5_subset_reconstructs():
    secret = _secret(1, 1000)
    shares = share(secret, 3, 5)
    for subset in itertools.combinations(range(1, 6), 3):
        np.testing.assert_array_equal(reconstruct(shares[[x - 1 for x in subset]], subset), secret)


@pytest.mark.parametrize("tn", [(3, 5), (6, 10)])
def test_share_and_reconstruct_across_prg_blocks(tn):
    t, n = tn
    d = 2 * PRG_BLOCK + 17  # three blocks, the last one ragged
    secret = _secret(2, d)
    shares = share(secret, t, n)
    np.testing.assert_array_equal(reconstruct(shares[n - t :], list(range(n - t + 1, n + 1))), secret)
    # the polynomial check at the block seams, against galois
    x = GF(np.arange(1, n + 1))
    for j in (PRG_BLOCK - 1, PRG_BLOCK, 2 * PRG_BLOCK, d - 1):
        poly = galois.lagrange_poly(x, GF(shares[:, j]))
        assert poly.degree <= t - 1 and int(poly(GF(0))) == int(secret[j])


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 9), d=st.integers(1, 10), seed=st.integers(0, 2**32), data=st.data())
def test_reconstruct_is_lagrange_interpolation_at_zero(k, d, seed, data):
    points = data.draw(st.lists(st.integers(1, P - 1), min_size=k, max_size=k, unique=True))
    values = _secret(seed, k * d).reshape(k, d)  # arbitrary values: interpolation of degree k-1
    got = reconstruct(values, points)
    x = GF(np.array(points, dtype=np.uint64))
    for j in range(d):
        assert int(got[j]) == int(galois.lagrange_poly(x, GF(values[:, j]))(GF(0)))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_lagrange_matrix_matches_galois_basis_polynomials(data):
    src = data.draw(st.lists(st.integers(0, P - 1), min_size=1, max_size=7, unique=True))
    dst = data.draw(st.lists(st.integers(0, P - 1), min_size=1, max_size=4))
    matrix = lagrange_matrix(src, dst)
    x = GF(np.array(src, dtype=np.uint64))
    for i in range(len(src)):
        basis = galois.lagrange_poly(x, GF(np.eye(len(src), dtype=np.uint64)[i]))
        for r, point in enumerate(dst):
            assert int(matrix[r, i]) == int(basis(GF(point)))


def test_lagrange_coefficients_are_cached_and_read_only():
    first = lagrange_coefficients((1, 2, 3))
    assert np.shares_memory(lagrange_coefficients([1, 2, 3]), first)  # served from the cache
    assert lagrange_matrix((1, 2), (5, 6)) is lagrange_matrix([1, 2], [5, 6])
    with pytest.raises(ValueError):
        first[0] = 0


def test_small_field_sharing_matches_galois():
    field = PrimeField(65521)
    gf = galois.GF(65521)
    secret = _secret(3, 50, field)
    shares = share(secret, 4, 7, field=field, rng=FieldRNG(bytes(32), field=field))
    assert int(shares.max()) < 65521
    x = gf(np.arange(1, 8))
    for j in range(50):
        poly = galois.lagrange_poly(x, gf(shares[:, j]))
        assert poly.degree <= 3 and int(poly(gf(0))) == int(secret[j])
    np.testing.assert_array_equal(reconstruct(shares[2:6], [3, 4, 5, 6], field=field), secret)


def test_seeded_rng_gives_identical_shares():
    secret = _secret(4, 5000)
    a = share(secret, 3, 5, rng=FieldRNG(b"k" * 32))
    b = share(secret, 3, 5, rng=FieldRNG(b"k" * 32))
    c = share(secret, 3, 5, rng=FieldRNG(b"j" * 32))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shares_do_not_depend_on_the_thread_count():
    code = (
        "import hashlib, numpy as np; from ppbfl.field import FieldRNG; from ppbfl.sharing import share;"
        "s = FieldRNG(bytes(32)).random(300000);"
        "print(hashlib.sha256(share(s, 4, 7, rng=FieldRNG(b'x' * 32)).tobytes()).hexdigest())"
    )
    digests = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, PPBFL_THREADS=threads)
        digests.add(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout)
    assert len(digests) == 1


def test_preallocated_output_is_filled_in_place():
    secret = _secret(5, 100)
    out = np.zeros((5, 100), dtype=np.uint64)
    assert share(secret, 3, 5, out=out) is out
    np.testing.assert_array_equal(reconstruct(out[:3], [1, 2, 3]), secret)


def test_t_equal_1_gives_every_party_the_secret():
    secret = _secret(6, 10)
    shares = share(secret, 1, 4)
    for row in shares:
        np.testing.assert_array_equal(row, secret)


# ---------------------------------------------------------------- privacy (small field)


def _joint_counts(shares: np.ndarray, p: int) -> np.ndarray:
    return np.bincount((shares[0].astype(np.int64) * p + shares[1].astype(np.int64)), minlength=p * p)


def test_t_minus_1_shares_are_uniform_and_independent_of_the_secret():
    """Parties 1 and 2 of a (3, 5) sharing over GF(31): their joint share distribution is
    uniform on GF(31)^2 and identical for the secrets 0 and 17 (chi-square)."""
    field = PrimeField(31)
    d = 200_000
    counts = []
    for value, seed in ((0, b"a" * 32), (17, b"b" * 32)):
        shares = share(np.full(d, value, np.uint64), 3, 5, field=field, rng=FieldRNG(seed, field=field))
        counts.append(_joint_counts(shares[:2], 31))
        assert chisquare(counts[-1]).pvalue > 1e-4
    assert chi2_contingency(np.stack(counts)).pvalue > 1e-4


def test_t_shares_do_depend_on_the_secret_so_the_privacy_test_has_power():
    field = PrimeField(31)
    d = 20_000
    counts = []
    for value, seed in ((0, b"a" * 32), (17, b"b" * 32)):
        shares = share(np.full(d, value, np.uint64), 2, 5, field=field, rng=FieldRNG(seed, field=field))
        counts.append(_joint_counts(shares[:2], 31))  # 2 shares = t: they determine the secret
    assert chi2_contingency(np.stack(counts) + 1).pvalue < 1e-12


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("t", "n", "message"),
    [(0, 5, "at least 1"), (-1, 5, "at least 1"), (6, 5, "t = 6 > n = 5"), (2.0, 5, "expected an int"), (2, "5", "expected an int")],
)
def test_bad_threshold_parameters_raise(t, n, message):
    with pytest.raises(SharingParameterError, match=message):
        share(np.zeros(3, np.uint64), t, n)


def test_n_at_least_p_raises():
    with pytest.raises(SharingParameterError, match="n = 31 >= p = 31"):
        share(np.zeros(3, np.uint64), 2, 31, field=PrimeField(31))


def test_secret_validation():
    with pytest.raises(FieldDTypeError, match="secret: dtype int64"):
        share(np.zeros(3, np.int64), 2, 3)
    with pytest.raises(FieldShapeError, match="secret: shape"):
        share(np.zeros((2, 3), np.uint64), 2, 3)
    bad = np.zeros(4, np.uint64)
    bad[2] = np.uint64(P)
    with pytest.raises(FieldRangeError, match=r"secret\[2\]"):
        share(bad, 2, 3)


def test_out_of_wrong_shape_raises():
    with pytest.raises(FieldShapeError, match="out"):
        share(np.zeros(4, np.uint64), 2, 3, out=np.empty((3, 5), np.uint64))


def test_out_overlapping_the_secret_raises():
    out = np.zeros((3, 4), np.uint64)
    with pytest.raises(FieldShapeError, match="does not overlap the secret"):
        share(out[0], 2, 3, out=out)


def test_rng_of_another_field_raises():
    with pytest.raises(SharingParameterError, match="rng samples GF\\(31\\)"):
        share(np.zeros(4, np.uint64), 2, 3, rng=FieldRNG(field=PrimeField(31)))


@pytest.mark.parametrize(
    ("points", "message"),
    [([1, 1, 2], r"points\[1\] = 1 repeats points\[0\]"), ([0, 1, 2], "point 0 holds the secret"),
     ([1, 2, P], "is not in \\[1, p\\)"), ([1, 2.5, 3], "is not an int")],
)
def test_bad_points_raise(points, message):
    with pytest.raises(EvaluationPointError, match=message):
        reconstruct(np.zeros((3, 2), np.uint64), points)


def test_fewer_than_t_shares_raise():
    shares = share(_secret(7, 5), 3, 5)
    with pytest.raises(InsufficientSharesError, match="at least 3 shares, got 2"):
        reconstruct(shares[:2], [1, 2], t=3)


def test_rows_and_points_must_match():
    with pytest.raises(FieldShapeError, match="one row per point"):
        reconstruct(np.zeros((3, 2), np.uint64), [1, 2])


def test_share_values_out_of_range_raise():
    shares = share(_secret(8, 5), 2, 3)
    shares[1, 4] = np.uint64(2**63)
    with pytest.raises(FieldRangeError, match=r"shares\[1, 4\]"):
        reconstruct(shares, [1, 2, 3])


def test_empty_vectors_share_and_reconstruct_to_empty():
    empty = np.zeros(0, np.uint64)
    shares = share(empty, 3, 5)
    assert shares.shape == (5, 0)
    assert reconstruct(shares[:3], [1, 2, 3]).shape == (0,)


def test_read_only_out_raises():
    out = np.zeros((3, 4), np.uint64)
    out.setflags(write=False)
    with pytest.raises(FieldShapeError, match="writable"):
        share(np.zeros(4, np.uint64), 2, 3, out=out)
