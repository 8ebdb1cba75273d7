"""The native (C, cffi) kernels against the Numba kernels and galois, and the C boundary.

The native extension is built by ``pip install`` when a C compiler is present (always in CI).
If it is missing these tests fail with the reason: a machine that cannot build it still runs
the package on Numba, but must not report the native backend as tested.
"""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.errors import FieldDTypeError, FieldShapeError
from ppbfl.field import numba_kernels as nb
from ppbfl.field.prime_field import MERSENNE61

try:
    from ppbfl.field import native_kernels as nat
except ImportError as exc:  # pragma: no cover - reported as a failure, not a skip
    nat = None
    IMPORT_ERROR = exc

P61 = MERSENNE61
P31 = 2**31 - 1
U = np.uint64
GF = {P61: galois.GF(P61), P31: galois.GF(P31)}
EDGE = [0, 1, 2, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**61 - 3, P61 - 2, P61 - 1, (2**29 - 1) << 32 | (2**32 - 1)]


def _needs_native():
    if nat is None:
        pytest.fail(f"the native extension is not built: {IMPORT_ERROR}")


def elements(p: int):
    edge = [v for v in EDGE if v < p]
    return st.one_of(st.integers(0, p - 1), st.sampled_from(edge))


def vectors(p: int, min_size=1, max_size=300):
    return st.lists(elements(p), min_size=min_size, max_size=max_size).map(lambda v: np.array(v, dtype=U))


PRIMES = st.sampled_from([P61, P31])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), p=PRIMES)
def test_elementwise_kernels_match_numba_and_galois(data, p):
    _needs_native()
    a = data.draw(vectors(p))
    b = data.draw(vectors(p, len(a), len(a)))
    c = data.draw(vectors(p, len(a), len(a)))
    s = U(data.draw(elements(p)))
    lo = data.draw(st.integers(0, len(a)))
    hi = data.draw(st.integers(lo, len(a)))
    gf = GF[p]
    cases = [
        ("add_range", (a, b), gf(a) + gf(b)),
        ("sub_range", (a, b), gf(a) - gf(b)),
        ("neg_range", (a,), -gf(a)),
        ("mul_range", (a, b), gf(a) * gf(b)),
        ("muladd_range", (a, b, c), gf(a) * gf(b) + gf(c)),
    ]
    for name, args, expected in cases:
        out_nat = np.full(len(a), 7, U)
        out_nb = np.full(len(a), 7, U)
        top_nat = getattr(nat, name)(*args, out_nat, U(p), U(lo), U(hi))
        top_nb = getattr(nb, name)(*args, out_nb, U(p), U(lo), U(hi))
        np.testing.assert_array_equal(out_nat, out_nb, err_msg=name)
        np.testing.assert_array_equal(out_nat[lo:hi], np.asarray(expected)[lo:hi].astype(U), err_msg=name)
        assert (out_nat[:lo] == 7).all() and (out_nat[hi:] == 7).all(), name  # nothing outside the range
        assert int(top_nat) == int(top_nb) == max([int(x[lo:hi].max()) for x in args] + [0]) if hi > lo else True
    out_nat = np.empty(len(a), U)
    out_nb = np.empty(len(a), U)
    nat.scalar_mul_range(a, s, out_nat, U(p), U(0), U(len(a)))
    nb.scalar_mul_range(a, s, out_nb, U(p), U(0), U(len(a)))
    np.testing.assert_array_equal(out_nat, out_nb)
    np.testing.assert_array_equal(out_nat, np.asarray(gf(a) * gf(int(s))).astype(U))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), p=PRIMES)
def test_dot_matches_numba_and_galois(data, p):
    _needs_native()
    a = data.draw(vectors(p, 0))
    b = data.draw(vectors(p, len(a), len(a)))
    value, top = nat.dot_range(a, b, U(p), U(0), U(len(a)))
    nb_value, nb_top = nb.dot_range(a, b, U(p), U(0), U(len(a)))
    assert int(value) == int(nb_value) == int(np.dot(GF[p](a), GF[p](b))) if len(a) else int(value) == 0
    assert int(top) == int(nb_top)


def test_dot_of_many_maximal_products():
    _needs_native()
    a = np.full(100_003, P61 - 1, U)
    value, _ = nat.dot_range(a, a, U(P61), U(0), U(a.size))
    assert int(value) == 100_003 % P61  # (p - 1)^2 = 1


@settings(max_examples=40, deadline=None)
@given(data=st.data(), p=PRIMES, k=st.integers(1, 7), m=st.integers(1, 5), d=st.integers(1, 200))
def test_rowsum_and_matmul_match_numba_and_galois(data, p, k, m, d):
    _needs_native()
    rows = np.stack([data.draw(vectors(p, d, d)) for _ in range(k)])
    weights = data.draw(vectors(p, k, k))
    matrix = np.stack([data.draw(vectors(p, k, k)) for _ in range(m)])
    lo = data.draw(st.integers(0, d))
    hi = data.draw(st.integers(lo, d))
    out_nat, out_nb = np.zeros(d, U), np.zeros(d, U)
    assert int(nat.weighted_rowsum_range(weights, rows, out_nat, U(p), U(lo), U(hi))) == int(
        nb.weighted_rowsum_range(weights, rows, out_nb, U(p), U(lo), U(hi))
    )
    np.testing.assert_array_equal(out_nat, out_nb)
    np.testing.assert_array_equal(out_nat[lo:hi], np.asarray(GF[p](weights) @ GF[p](rows))[lo:hi].astype(U))
    mm_nat, mm_nb = np.zeros((m, d), U), np.zeros((m, d), U)
    nat.matmul_range(matrix, rows, mm_nat, U(p), U(lo), U(hi))
    nb.matmul_range(matrix, rows, mm_nb, U(p), U(lo), U(hi))
    np.testing.assert_array_equal(mm_nat, mm_nb)
    np.testing.assert_array_equal(mm_nat[:, lo:hi], np.asarray(GF[p](matrix) @ GF[p](rows))[:, lo:hi].astype(U))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), p=PRIMES, degree=st.integers(0, 6), n=st.integers(1, 10), width=st.integers(1, 64))
def test_horner_share_matches_numba_and_galois(data, p, degree, n, width):
    _needs_native()
    col0 = data.draw(st.integers(0, 20))
    d = col0 + width + data.draw(st.integers(0, 5))
    secret = data.draw(vectors(p, d, d))
    coeffs = np.stack([data.draw(vectors(p, width, width)) for _ in range(degree)]) if degree else np.empty((0, width), U)
    points = np.arange(1, n + 1, dtype=U)
    lo = data.draw(st.integers(0, width))
    hi = data.draw(st.integers(lo, width))
    out_nat, out_nb = np.zeros((n, d), U), np.zeros((n, d), U)
    nat.horner_share_range(secret, coeffs, points, out_nat, U(p), U(col0), U(lo), U(hi))
    nb.horner_share_range(secret, coeffs, points, out_nb, U(p), U(col0), U(lo), U(hi))
    np.testing.assert_array_equal(out_nat, out_nb)
    gf = GF[p]
    for c in range(lo, min(hi, lo + 3)):
        poly = galois.Poly(list(reversed([int(secret[col0 + c])] + [int(coeffs[k, c]) for k in range(degree)])), field=gf)
        np.testing.assert_array_equal(out_nat[:, col0 + c], np.asarray(poly(gf(points))).astype(U))


# ------------------------------------------------------------------ the C boundary


def test_wrong_dtype_is_a_typed_error_before_c():
    _needs_native()
    a = np.arange(10, dtype=np.int64)
    with pytest.raises(FieldDTypeError, match="a: dtype int64"):
        nat.add_range(a, np.zeros(10, U), np.zeros(10, U), U(P61), U(0), U(10))
    with pytest.raises(FieldDTypeError, match=r"b: dtype list is not a numpy.ndarray"):
        nat.mul_range(np.zeros(10, U), [1, 2], np.zeros(10, U), U(P61), U(0), U(10))


def test_non_contiguous_is_a_typed_error_before_c():
    _needs_native()
    strided = np.zeros(20, U)[::2]
    with pytest.raises(FieldShapeError, match=r"out: .*C-contiguous"):
        nat.neg_range(np.zeros(10, U), strided, U(P61), U(0), U(10))
    with pytest.raises(FieldShapeError, match=r"rows: .*C-contiguous"):
        nat.weighted_rowsum_range(np.ones(3, U), np.zeros((10, 3), U).T, np.zeros(10, U), U(P61), U(0), U(10))


def test_ranges_past_the_end_are_typed_errors_not_overflows():
    _needs_native()
    with pytest.raises(FieldShapeError, match=r"b: shape \(5,\), expected at least 10"):
        nat.add_range(np.zeros(10, U), np.zeros(5, U), np.zeros(10, U), U(P61), U(0), U(10))
    with pytest.raises(FieldShapeError, match="0 <= lo <= hi"):
        nat.add_range(np.zeros(10, U), np.zeros(10, U), np.zeros(10, U), U(P61), U(6), U(2))
    with pytest.raises(FieldShapeError, match=r"rows: shape \(2, 4\), expected at least 3 along axis 0"):
        nat.weighted_rowsum_range(np.ones(3, U), np.zeros((2, 4), U), np.zeros(4, U), U(P61), U(0), U(4))
    with pytest.raises(FieldShapeError, match="out"):
        nat.horner_share_range(np.zeros(8, U), np.zeros((2, 4), U), np.arange(1, 4, dtype=U), np.zeros((3, 5), U),
                               U(P61), U(2), U(0), U(4))
    with pytest.raises(FieldShapeError, match="to match matrix"):
        nat.matmul_range(np.zeros((2, 3), U), np.zeros((4, 5), U), np.zeros((2, 5), U), U(P61), U(0), U(5))


def test_read_only_output_is_a_typed_error_before_c():
    _needs_native()
    out = np.zeros(10, U)
    out.setflags(write=False)
    with pytest.raises(FieldShapeError, match=r"out: .*writable"):
        nat.add_range(np.zeros(10, U), np.zeros(10, U), out, U(P61), U(0), U(10))
