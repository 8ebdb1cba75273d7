"""The fused row kernels: ``ops.row_dots`` and ``ops.weighted_rowsum`` over separate rows.

``row_dots(rows, a, b)`` computes ``<r_i, a>``, ``<r_i, b>`` and ``<r_i, r_i>`` for every row in
one pass; it is checked against ``galois`` (small inputs), plain Python integers (large,
thread-split inputs crossing the kernels' column tiles) and the unfused operations it replaces
(``dot_public`` and ``local_products``), on every backend that loads here. Rows are given both as
a (k, d) array and as a list of separate (d,) arrays, writable and read-only mixed (what an edge
node stores: decoded uploads are read-only views, expanded seeds are fresh arrays).
"""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ppbfl.field as F
from ppbfl.errors import FieldDTypeError, FieldRangeError, FieldShapeError
from ppbfl.field import ops, threads
from ppbfl.field.prime_field import GF61, MERSENNE61, PrimeField
from ppbfl.mpc.honest_majority import local_products
from ppbfl.mpc.linear import dot_public

BACKENDS = F.available_backends()
PRIMES = (MERSENNE61, 2**31 - 1, 4294967291)
GALOIS = {p: galois.GF(p) for p in PRIMES}
EDGES = {
    p: sorted({v for v in (0, 1, 2, p - 1, p - 2, p // 2, 2**32 - 1, 2**32, 2**32 + 1, 2**31, 2**60 - 1) if v < p})
    for p in PRIMES
}


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test on each backend that loads here, restoring the active one afterwards (the
    same backend for every generated example, so hypothesis needs no per-example reset)."""
    before = F.backend_name()
    F.set_backend(request.param)
    yield request.param
    F.set_backend(before)


def test_both_backends_are_exercised():
    assert "numba" in BACKENDS and "native" in BACKENDS  # the C extension is built for the tests


def _separate(matrix: np.ndarray) -> list[np.ndarray]:
    """The rows of ``matrix`` as separate arrays, every other one read-only (as at an edge node)."""
    rows = [row.copy() for row in matrix]
    for row in rows[::2]:
        row.setflags(write=False)
    return rows


def _python_row_dots(matrix: np.ndarray, a: np.ndarray, b: np.ndarray, p: int) -> list[list[int]]:
    rows = [[int(x) for x in row] for row in matrix]
    av, bv = [int(x) for x in a], [int(x) for x in b]
    return [
        [sum(x * y for x, y in zip(row, vec)) % p for row in rows] for vec in (av, bv)
    ] + [[sum(x * x for x in row) % p for row in rows]]


@st.composite
def row_problem(draw):
    p = draw(st.sampled_from(PRIMES))
    k = draw(st.integers(0, 4))
    d = draw(st.integers(1, 40))
    value = st.one_of(st.sampled_from(EDGES[p]), st.integers(0, p - 1))
    matrix = np.array(draw(st.lists(st.lists(value, min_size=d, max_size=d), min_size=k, max_size=k)), dtype=np.uint64)
    a = np.array(draw(st.lists(value, min_size=d, max_size=d)), dtype=np.uint64)
    b = np.array(draw(st.lists(value, min_size=d, max_size=d)), dtype=np.uint64)
    return p, matrix.reshape(k, d), a, b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=row_problem())
def test_row_dots_match_galois_and_python_ints(backend, problem):
    p, matrix, a, b = problem
    field = PrimeField(p)
    gf = GALOIS[p]
    expected = np.array(_python_row_dots(matrix, a, b, p), dtype=np.uint64).reshape(3, matrix.shape[0])
    if matrix.shape[0]:
        g = gf(matrix.tolist())
        by_galois = [g @ gf(a.tolist()), g @ gf(b.tolist()), (g * g).sum(axis=1)]
        assert [[int(v) for v in row] for row in by_galois] == expected.tolist()
    for rows in (matrix, _separate(matrix)):
        got = ops.row_dots(rows, a, b, field=field)
        assert got.dtype == np.uint64 and got.shape == (3, matrix.shape[0])
        assert np.array_equal(got, expected)
        without = ops.row_dots(rows, a, b, squares=False, field=field)
        assert np.array_equal(without[:2], expected[:2]) and not without[2].any()


def test_row_dots_equal_the_unfused_operations(backend):
    gen = np.random.default_rng(7)
    matrix = gen.integers(0, MERSENNE61, size=(6, 5000), dtype=np.uint64)
    lam, ref = (gen.integers(0, MERSENNE61, size=5000, dtype=np.uint64) for _ in range(2))
    got = ops.row_dots(_separate(matrix), lam, ref)
    assert np.array_equal(got[0], dot_public(matrix, lam))
    assert np.array_equal(got[1], dot_public(matrix, ref))
    assert np.array_equal(got[2], local_products(matrix, matrix))
    assert [int(v) for v in got[1]] == [ops.dot(row, ref) for row in matrix]


N_LARGE = 300_001  # thread-split into uneven ranges, each crossing many 2048-column tiles


def test_large_split_row_dots_and_rowsum_match_python_ints(backend, monkeypatch):
    monkeypatch.setenv("PPBFL_THREADS", "4")
    assert min(threads.worker_count(), N_LARGE // threads.MIN_SPLIT) == 4  # the calls really are split
    p = MERSENNE61
    gen = np.random.default_rng(11)
    matrix = gen.integers(0, p, size=(3, N_LARGE), dtype=np.uint64)
    matrix[:, :5000] = p - 1  # worst-case partial sums in the first tiles
    a, b = (gen.integers(0, p, size=N_LARGE, dtype=np.uint64) for _ in range(2))
    rows = _separate(matrix)
    objects = matrix.astype(object)
    ao, bo = a.astype(object), b.astype(object)
    expected = [[int((row * vec).sum()) % p for row in objects] for vec in (ao, bo)] + [
        [int((row * row).sum()) % p for row in objects]
    ]
    assert ops.row_dots(rows, a, b).tolist() == expected
    weights = np.array([p - 1, 2**32 + 1, 5], dtype=np.uint64)
    want = (weights.astype(object)[:, None] * objects).sum(axis=0) % p
    assert ops.weighted_rowsum(weights, rows).astype(object).tolist() == want.tolist()
    assert np.array_equal(ops.weighted_rowsum(weights, rows), ops.weighted_rowsum(weights, matrix))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problem=row_problem())
def test_weighted_rowsum_of_separate_rows_matches_galois(backend, problem):
    p, matrix, a, _ = problem
    assume(matrix.shape[0] > 0)
    field = PrimeField(p)
    weights = a[: matrix.shape[0]] if a.shape[0] >= matrix.shape[0] else np.resize(a, matrix.shape[0])
    gf = GALOIS[p]
    expected = [int(v) for v in gf(weights.tolist()) @ gf(matrix.tolist())]
    assert ops.weighted_rowsum(weights, _separate(matrix), field=field).tolist() == expected


def test_weighted_rowsum_out_may_alias_one_of_the_rows(backend):
    gen = np.random.default_rng(3)
    rows = [gen.integers(0, MERSENNE61, size=100, dtype=np.uint64) for _ in range(3)]
    weights = np.array([2, 3, 4], dtype=np.uint64)
    expected = ops.weighted_rowsum(weights, np.stack(rows))
    result = ops.weighted_rowsum(weights, rows, out=rows[1])
    assert result is rows[1] and np.array_equal(rows[1], expected)


# ---------------------------------------------------------------------------------------------
# validation: typed errors naming the argument and the row
# ---------------------------------------------------------------------------------------------


def _rows3(d: int = 8) -> list[np.ndarray]:
    return [np.full(d, i + 1, dtype=np.uint64) for i in range(3)]


def test_bad_rows_name_the_row(backend):
    vec = np.ones(8, dtype=np.uint64)
    rows = _rows3()
    rows[1] = rows[1].astype(np.int64)
    with pytest.raises(FieldDTypeError) as info:
        ops.row_dots(rows, vec, vec, rows_name="shares")
    assert info.value.name == "shares[1]"
    rows = _rows3()
    rows[2] = np.ones(7, dtype=np.uint64)
    with pytest.raises(FieldShapeError) as shape_info:
        ops.row_dots(rows, vec, vec)
    assert shape_info.value.name == "rows[2]"
    rows = _rows3()
    rows[2] = rows[2].copy()
    rows[2][5] = GF61.p
    with pytest.raises(FieldRangeError) as range_info:
        ops.row_dots(rows, vec, vec)
    assert (range_info.value.name, range_info.value.index) == ("rows[2]", (5,))
    with pytest.raises(FieldRangeError) as weights_info:
        ops.weighted_rowsum(np.ones(3, dtype=np.uint64), rows)
    assert weights_info.value.name == "rows[2]"


def test_bad_vectors_and_containers(backend):
    vec = np.ones(8, dtype=np.uint64)
    with pytest.raises(FieldShapeError) as info:
        ops.row_dots(_rows3(), vec, np.ones(9, dtype=np.uint64))
    assert info.value.name == "b"
    bad = vec.copy()
    bad[0] = GF61.p
    with pytest.raises(FieldRangeError) as range_info:
        ops.row_dots(_rows3(), bad, vec)
    assert range_info.value.name == "a"
    with pytest.raises(FieldDTypeError):
        ops.row_dots(7, vec, vec)
    with pytest.raises(FieldShapeError) as matrix_info:
        ops.row_dots(np.ones((2, 9), dtype=np.uint64), vec, vec)
    assert matrix_info.value.name == "rows"
    with pytest.raises(FieldShapeError) as empty_info:
        ops.weighted_rowsum(np.zeros(0, dtype=np.uint64), [])
    assert empty_info.value.name == "rows"
    with pytest.raises(FieldShapeError):
        ops.weighted_rowsum(np.ones(2, dtype=np.uint64), _rows3())
    assert ops.row_dots([], vec, vec).shape == (3, 0)


def test_native_wrapper_refuses_short_rows_instead_of_reading_past_them():
    from ppbfl.field import native_kernels as nk

    rows = nk.pack_rows(_rows3(8))
    vec = np.ones(16, dtype=np.uint64)
    with pytest.raises(FieldShapeError):
        nk.row_dots_range(rows, vec, vec, True, GF61.modulus, 0, 16)
    with pytest.raises(FieldShapeError):
        nk.weighted_rowsum_range(np.ones(3, dtype=np.uint64), rows, np.empty(16, dtype=np.uint64), GF61.modulus, 0, 16)
    with pytest.raises(FieldShapeError):
        nk.weighted_rowsum_range(np.ones(2, dtype=np.uint64), rows, np.empty(8, dtype=np.uint64), GF61.modulus, 0, 8)
