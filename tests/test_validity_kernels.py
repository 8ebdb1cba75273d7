"""The validity check's kernels (issue 13) against plain Python integers, on every backend that
loads here: the ternary projections ``y = R g`` and ``v = R^T sigma`` read from the keystream
(C ``pf_ternary_*`` and Numba), in 32-bit lanes (``sum |g| < 2^31``) and in 64-bit lanes, split
over threads or not; and ``row_dots`` with the fourth vector (``<g, v>`` in the verify pass)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppbfl.defense import validity
from ppbfl.defense.errors import DefenseParameterError
from ppbfl.errors import FieldRangeError, FieldShapeError
from ppbfl.field import backend as F
from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField

P = GF61.p
SMALL_P = 4_294_967_291  # the largest prime below 2^32
BACKENDS = F.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    before = F.backend_name()
    F.set_backend(request.param)
    yield request.param
    F.set_backend(before)


def test_both_backends_are_exercised():
    assert set(BACKENDS) == {"native", "numba"}


def _reference_matrix(stream: bytes, d: int, k: int) -> list[list[int]]:
    """``R`` decoded from the documented layout with Python ints: ``k + 1`` strings of
    ``8 ceil(d / 64)`` bytes (signs, then one mask per row), bit ``i`` = bit ``i % 8`` of byte ``i // 8``."""
    width = 8 * ((d + 63) // 64)

    def bit(string: int, i: int) -> int:
        return (stream[string * width + i // 8] >> (i % 8)) & 1

    return [[bit(j + 1, i) * (-1 if bit(0, i) else 1) for i in range(d)] for j in range(k)]


@given(d=st.integers(1, 140), k=st.integers(1, 9), seed=st.binary(min_size=32, max_size=32), wide=st.booleans(), data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_projections_match_python_ints(backend, d, k, seed, wide, data):
    params = validity.ValidityParams(d, k, 20, P)
    stream = validity.projection_stream(seed, params)
    matrix = _reference_matrix(stream.tobytes(), d, k)
    assert validity.projection_matrix(stream, params).tolist() == matrix
    bound = (P // 2) if wide else (1 << 31) // (d + 1)  # wide: sums past 2^31 (the 64-bit lanes)
    g = data.draw(st.lists(st.integers(-bound, bound), min_size=d, max_size=d))
    expected = [sum(r * x for r, x in zip(row, g)) for row in matrix]
    got = validity.project(stream, np.array(g, dtype=np.int64), params).tolist()
    if sum(abs(x) for x in g) < 1 << 63:
        assert got == expected
    else:  # documented: the sums are exact below 2^63 (every encodable update); beyond, modulo 2^64
        assert [(a - b) % (1 << 64) for a, b in zip(got, expected)] == [0] * k


@given(d=st.integers(1, 140), k=st.integers(1, 20), seed=st.binary(min_size=32, max_size=32), small=st.booleans(), data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_combination_matches_python_ints(backend, d, k, seed, small, data):
    p = SMALL_P if small else P
    params = validity.ValidityParams(d, k, 20, p)
    stream = validity.projection_stream(seed, params)
    matrix = _reference_matrix(stream.tobytes(), d, k)
    sigma = data.draw(st.lists(st.sampled_from([0, 1, p - 1, p - 2]) | st.integers(0, p - 1), min_size=k, max_size=k))
    expected = [sum(sigma[j] * matrix[j][i] for j in range(k)) % p for i in range(d)]
    assert validity.projection_combination(stream, np.array(sigma, dtype=np.uint64), params).tolist() == expected


def test_large_calls_split_over_threads_match_python_ints(backend):
    """k d above the threading threshold, d not a multiple of 32 or of the 2048-column tiles, and
    the fold every 7 rows with sigma at its largest (p - 1)."""
    d, k = 70_001, 256
    params = validity.ValidityParams(d, k, 20, P)
    stream = validity.projection_stream(bytes(32), params)
    rng = np.random.default_rng(9)  # test data only
    g = rng.integers(-1000, 1001, d)
    matrix = validity.projection_matrix(stream, params)
    first = _reference_matrix(stream.tobytes()[: 3 * 8 * ((d + 63) // 64)], d, 2)  # rows 0 and 1, independently decoded
    assert matrix[:2].tolist() == first
    y = validity.project(stream, g, params)
    assert y.tolist() == (matrix.astype(np.int64) @ g).tolist()
    sigma = np.full(k, P - 1, dtype=np.uint64)
    sigma[::3] = rng.integers(0, P, len(sigma[::3]), dtype=np.uint64)
    v = validity.projection_combination(stream, sigma, params)
    columns = [0, 1, 2047, 2048, 31 * 2048 + 5, d - 1]
    assert [int(v[i]) for i in columns] == [sum(int(sigma[j]) * int(matrix[j, i]) for j in range(k)) % P for i in columns]


def test_project_rejects_a_stream_of_the_wrong_length():
    params = validity.ValidityParams(100, 3, 20, P)
    with pytest.raises(DefenseParameterError, match="stream: shape"):
        validity.project(np.zeros(10, dtype=np.uint8), np.zeros(100, dtype=np.int64), params)


@given(
    k=st.integers(0, 5), d=st.integers(1, 60), small=st.booleans(), squares=st.booleans(), separate=st.booleans(), data=st.data(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_row_dots_with_a_fourth_vector_match_python_ints(backend, k, d, small, squares, separate, data):
    p = SMALL_P if small else P
    field = PrimeField(p) if small else GF61
    element = st.sampled_from([0, 1, p - 1]) | st.integers(0, p - 1)
    rows = [data.draw(st.lists(element, min_size=d, max_size=d)) for _ in range(k)]
    a, b, c = (data.draw(st.lists(element, min_size=d, max_size=d)) for _ in range(3))
    matrix = np.array(rows, dtype=np.uint64).reshape(k, d)
    operand = [row.copy() for row in matrix] if separate else matrix
    vectors = [np.array(x, dtype=np.uint64) for x in (a, b, c)]
    if separate and k == 0:
        got = ops.row_dots([], *vectors, squares=squares, field=field)
    else:
        got = ops.row_dots(operand, *vectors, squares=squares, field=field)

    def dot(x, y):
        return sum(i * j for i, j in zip(x, y)) % p

    expected = [[dot(r, a) for r in rows], [dot(r, b) for r in rows], [dot(r, r) if squares else 0 for r in rows], [dot(r, c) for r in rows]]
    assert got.shape == (4, k) and got.tolist() == expected


def test_row_dots_fourth_vector_split_over_threads_and_checked(backend, monkeypatch):
    d = 140_000  # above 2 * MIN_SPLIT: the pass is split over the kernel threads
    monkeypatch.setenv("PPBFL_THREADS", "2")
    rng = np.random.default_rng(2)  # test data only
    rows = [rng.integers(0, P, d, dtype=np.uint64) for _ in range(2)]
    a, b, c = (rng.integers(0, P, d, dtype=np.uint64) for _ in range(3))
    got = ops.row_dots(rows, a, b, c)
    expected = [sum(int(x) * int(y) for x, y in zip(rows[i], c)) % P for i in range(2)]
    assert got[3].tolist() == expected
    assert got[:3].tolist() == ops.row_dots(rows, a, b).tolist()
    bad = c.copy()
    bad[d - 1] = P
    with pytest.raises(FieldRangeError) as error:
        ops.row_dots(rows, a, b, bad)
    assert error.value.name == "c"
    with pytest.raises(FieldShapeError) as shape:
        ops.row_dots(rows, a, b, c[:-1])
    assert shape.value.name == "c"
