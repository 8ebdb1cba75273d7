"""Field arithmetic of ppbfl.field against independent references.

The oracle is ``galois`` (its own GF(p) implementation) for small inputs, and plain Python
integers (numpy object arrays) for the large, thread-split inputs. Edge values around the
32-bit split of the Mersenne kernel and around ``p`` are mixed into every property.
"""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppbfl.field as F
from ppbfl.errors import (
    FieldDTypeError,
    FieldRangeError,
    FieldShapeError,
    NotInvertibleError,
    UnsupportedFieldError,
)
from ppbfl.field import threads
from ppbfl.field.prime_field import GF61, MERSENNE61, PrimeField

P61 = MERSENNE61
assert P61 == 2**61 - 1

# galois fields are slow to build: once per module.
GF61_REF = galois.GF(P61)
SMALL_PRIMES = (2**31 - 1, 4294967291)  # a Mersenne prime and the largest prime below 2^32
GF_SMALL_REF = {p: galois.GF(p) for p in SMALL_PRIMES}


def _edges(p: int) -> list[int]:
    lo32 = 0xFFFFFFFF
    raw = [
        0, 1, 2, 3, p - 1, p - 2, p - 3, p // 2, p // 2 + 1,
        2**32 - 1, 2**32, 2**32 + 1, 2**31, 2**31 - 1, 2**61 - 2, 2**60, 2**60 - 1,
        # values whose 32-bit halves are all ones / all ones and zero
        ((2**29 - 1) << 32) | (lo32 - 1),  # = p - 1 for p = 2^61 - 1
        ((2**29 - 2) << 32) | lo32,
        ((2**28 - 1) << 32) | lo32,  # = 2^60 - 1
        ((2**29 - 1) << 32),
        (1 << 32) | lo32,
        (lo32 << 16) & (2**61 - 1),
        0x5555555555555555 & (2**61 - 1),
        0x0AAAAAAAAAAAAAAA,
    ]
    return sorted({v for v in raw if 0 <= v < p})


EDGES61 = _edges(P61)
SMALL_EDGES = {p: _edges(p) for p in SMALL_PRIMES}


def elements(p: int, edges: list[int]) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edges), st.integers(0, p - 1))


def vectors(p: int, edges: list[int], count: int, min_size: int = 1, max_size: int = 40):
    """``count`` equal-length lists of field elements."""
    elem = elements(p, edges)
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(*[st.lists(elem, min_size=n, max_size=n) for _ in range(count)])
    )


def u64(xs) -> np.ndarray:
    return np.array(xs, dtype=np.uint64)


def ints(arr) -> list[int]:
    return [int(v) for v in np.asarray(arr).reshape(-1)]


def check_reduced(out: np.ndarray, p: int, n: int) -> None:
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint64
    assert out.shape == (n,)
    if n:
        assert int(out.max()) < p


FAST = settings(max_examples=150, deadline=None)


# ---------------------------------------------------------------------------------------------
# GF(2^61 - 1) against galois
# ---------------------------------------------------------------------------------------------


def test_edge_values_are_in_field_and_cover_32_bit_halves():
    assert len(EDGES61) > 15
    assert all(0 <= v < P61 for v in EDGES61)
    assert P61 - 1 in EDGES61 and (2**29 - 2) << 32 | 0xFFFFFFFF in EDGES61


def test_all_pairs_of_edge_values_mul_add_sub():
    a_list = [x for x in EDGES61 for _ in EDGES61]
    b_list = [y for _ in EDGES61 for y in EDGES61]
    a, b = u64(a_list), u64(b_list)
    ga, gb = GF61_REF(a_list), GF61_REF(b_list)
    n = len(a_list)
    for ours, ref in (
        (F.mul(a, b), ga * gb),
        (F.add(a, b), ga + gb),
        (F.sub(a, b), ga - gb),
        (F.neg(a), -ga),
        (F.muladd(a, b, b), ga * gb + gb),
    ):
        check_reduced(ours, P61, n)
        assert ints(ours) == ints(ref)


@FAST
@given(vectors(P61, EDGES61, 2))
def test_add_sub_neg_gf61(ab):
    a_list, b_list = ab
    a, b = u64(a_list), u64(b_list)
    ga, gb = GF61_REF(a_list), GF61_REF(b_list)
    n = len(a_list)
    s, d, m = F.add(a, b), F.sub(a, b), F.neg(a)
    for arr in (s, d, m):
        check_reduced(arr, P61, n)
    assert ints(s) == ints(ga + gb)
    assert ints(d) == ints(ga - gb)
    assert ints(m) == ints(-ga)


@FAST
@given(vectors(P61, EDGES61, 3))
def test_mul_muladd_gf61(abc):
    a_list, b_list, c_list = abc
    a, b, c = u64(a_list), u64(b_list), u64(c_list)
    ga, gb, gc = GF61_REF(a_list), GF61_REF(b_list), GF61_REF(c_list)
    n = len(a_list)
    prod, fma = F.mul(a, b), F.muladd(a, b, c)
    check_reduced(prod, P61, n)
    check_reduced(fma, P61, n)
    assert ints(prod) == ints(ga * gb)
    assert ints(fma) == ints(ga * gb + gc)
    # and a plain-int cross-check of the oracle itself
    assert ints(prod) == [(x * y) % P61 for x, y in zip(a_list, b_list)]


@FAST
@given(vectors(P61, EDGES61, 1), elements(P61, EDGES61))
def test_scalar_mul_gf61(a_tuple, s):
    (a_list,) = a_tuple
    a = u64(a_list)
    out = F.scalar_mul(a, s)
    check_reduced(out, P61, len(a_list))
    assert ints(out) == ints(GF61_REF(a_list) * GF61_REF(s))
    # numpy integer scalars are accepted too
    assert ints(F.scalar_mul(a, np.uint64(s))) == ints(out)


@FAST
@given(vectors(P61, EDGES61, 2, min_size=1, max_size=60))
def test_dot_gf61(ab):
    a_list, b_list = ab
    got = F.dot(u64(a_list), u64(b_list))
    assert isinstance(got, int)
    assert 0 <= got < P61
    assert got == int(np.sum(GF61_REF(a_list) * GF61_REF(b_list)))


def test_dot_of_empty_vectors_is_zero():
    assert F.dot(u64([]), u64([])) == 0


@FAST
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.integers(1, 12).flatmap(
            lambda d: st.tuples(
                st.lists(elements(P61, EDGES61), min_size=k, max_size=k),
                st.lists(
                    st.lists(elements(P61, EDGES61), min_size=d, max_size=d), min_size=k, max_size=k
                ),
            )
        )
    )
)
def test_weighted_rowsum_gf61(wr):
    w_list, rows_list = wr
    w, rows = u64(w_list), np.array(rows_list, dtype=np.uint64)
    out = F.weighted_rowsum(w, rows)
    check_reduced(out, P61, rows.shape[1])
    ref = GF61_REF(w_list) @ GF61_REF(rows_list)
    assert ints(out) == ints(ref)


@FAST
@given(st.one_of(st.sampled_from(EDGES61[1:]), st.integers(1, P61 - 1)))
def test_inverse_gf61(x):
    inv = F.inverse(x)
    assert inv == GF61.inverse(x)
    assert isinstance(inv, int) and 0 < inv < P61
    assert inv == int(GF61_REF(x) ** -1)
    assert (inv * x) % P61 == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(-(2**70), 2**70).filter(lambda v: v % P61 != 0))
def test_inverse_reduces_out_of_range_ints_first(x):
    inv = GF61.inverse(x)
    assert 0 < inv < P61
    assert inv == int(GF61_REF(x % P61) ** -1)


def test_inverse_of_edges():
    for x in EDGES61[1:]:
        assert F.inverse(x) == int(GF61_REF(x) ** -1)


# ---------------------------------------------------------------------------------------------
# small prime fields against galois
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", SMALL_PRIMES)
def test_small_field_edges_all_pairs(p):
    field = PrimeField(p)
    edges = SMALL_EDGES[p]
    a_list = [x for x in edges for _ in edges]
    b_list = [y for _ in edges for y in edges]
    a, b = u64(a_list), u64(b_list)
    G = GF_SMALL_REF[p]
    ga, gb = G(a_list), G(b_list)
    assert ints(F.mul(a, b, field=field)) == ints(ga * gb)
    assert ints(F.add(a, b, field=field)) == ints(ga + gb)
    assert ints(F.sub(a, b, field=field)) == ints(ga - gb)
    assert ints(F.muladd(a, b, a, field=field)) == ints(ga * gb + ga)


@pytest.mark.parametrize("p", SMALL_PRIMES)
def test_small_field_ops_against_galois(p):
    field = PrimeField(p)
    G = GF_SMALL_REF[p]
    edges = SMALL_EDGES[p]

    @settings(max_examples=80, deadline=None)
    @given(vectors(p, edges, 3), elements(p, edges))
    def prop(abc, s):
        a_list, b_list, c_list = abc
        a, b, c = u64(a_list), u64(b_list), u64(c_list)
        ga, gb, gc = G(a_list), G(b_list), G(c_list)
        n = len(a_list)
        results = {
            "add": (F.add(a, b, field=field), ga + gb),
            "sub": (F.sub(a, b, field=field), ga - gb),
            "neg": (F.neg(a, field=field), -ga),
            "mul": (F.mul(a, b, field=field), ga * gb),
            "muladd": (F.muladd(a, b, c, field=field), ga * gb + gc),
            "scalar_mul": (F.scalar_mul(a, s, field=field), ga * G(s)),
        }
        for name, (ours, ref) in results.items():
            check_reduced(ours, p, n)
            assert ints(ours) == ints(ref), name
        assert F.dot(a, b, field=field) == int(np.sum(ga * gb))
        rows = np.stack([a, b, c])
        w = u64([s, 1, p - 1])
        assert ints(F.weighted_rowsum(w, rows, field=field)) == ints(
            G([s, 1, p - 1]) @ G([a_list, b_list, c_list])
        )
        if s:
            inv = F.inverse(s, field=field)
            assert inv == int(G(s) ** -1)

    prop()


# ---------------------------------------------------------------------------------------------
# large, thread-split calls against Python integers
# ---------------------------------------------------------------------------------------------

N_LARGE = 300_001  # not a multiple of the worker count: uneven split bounds


@pytest.fixture
def four_workers(monkeypatch):
    """Force a split into 4 ranges whatever the CPU count of the test machine."""
    monkeypatch.setenv("PPBFL_THREADS", "4")
    parts = min(threads.worker_count(), N_LARGE // threads.MIN_SPLIT)
    assert parts == 4  # precondition: the calls below really are split
    return parts


def _large_operands(p: int, count: int, seed: int) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    arrays = []
    edges = np.array(_edges(p), dtype=np.uint64)
    for _ in range(count):
        arr = gen.integers(0, p, size=N_LARGE, dtype=np.uint64)
        # edge values sprinkled over every worker's range, and at the range bounds
        idx = gen.choice(N_LARGE, size=2000, replace=False)
        arr[idx] = gen.choice(edges, size=idx.size)
        arr[[0, N_LARGE - 1, N_LARGE // 4, N_LARGE // 2, 3 * N_LARGE // 4]] = p - 1
        arrays.append(arr)
    return arrays


@pytest.mark.parametrize("p", [P61, 4294967291])
def test_large_split_mul_muladd_dot_against_python_ints(four_workers, p):
    field = PrimeField(p)
    a, b, c = _large_operands(p, 3, seed=p % 1000)
    ao, bo, co = (x.astype(object) for x in (a, b, c))

    prod = F.mul(a, b, field=field)
    check_reduced(prod, p, N_LARGE)
    ref_prod = (ao * bo) % p
    assert np.array_equal(prod, ref_prod.astype(np.uint64))

    fma = F.muladd(a, b, c, field=field)
    check_reduced(fma, p, N_LARGE)
    assert np.array_equal(fma, ((ao * bo + co) % p).astype(np.uint64))

    assert F.dot(a, b, field=field) == int(sum(ao * bo) % p)

    s = p - 2
    assert np.array_equal(F.scalar_mul(a, s, field=field), ((ao * s) % p).astype(np.uint64))
    assert np.array_equal(F.add(a, b, field=field), ((ao + bo) % p).astype(np.uint64))
    assert np.array_equal(F.sub(a, b, field=field), ((ao - bo) % p).astype(np.uint64))


@pytest.mark.parametrize("p", [P61, 4294967291])
@pytest.mark.parametrize("n", [1, 7, 1000, N_LARGE])
def test_dot_of_many_maximal_products(four_workers, p, n):
    """Every reduced product equal to p - 1 (all 32-bit halves of the partial sums near full)."""
    field = PrimeField(p)
    a = np.full(n, p - 1, dtype=np.uint64)
    ones = np.ones(n, dtype=np.uint64)
    assert F.dot(a, ones, field=field) == (n * (p - 1)) % p
    assert F.dot(ones, a, field=field) == (n * (p - 1)) % p
    # products p - 2 = (p - 1) * 2 and an all-ones-low-half product
    b = np.full(n, 2, dtype=np.uint64)
    assert F.dot(a, b, field=field) == (n * (p - 2)) % p
    c = np.full(n, min(p - 1, 2**32 - 1), dtype=np.uint64)
    assert F.dot(c, ones, field=field) == (n * int(c[0])) % p


def test_large_split_weighted_rowsum_against_python_ints(four_workers):
    rows = np.stack(_large_operands(P61, 3, seed=7))
    w = u64([P61 - 1, 2**32 + 1, 12345678901234567])
    out = F.weighted_rowsum(w, rows)
    check_reduced(out, P61, N_LARGE)
    ro = rows.astype(object)
    ref = (int(w[0]) * ro[0] + int(w[1]) * ro[1] + int(w[2]) * ro[2]) % P61
    assert np.array_equal(out, ref.astype(np.uint64))


def test_large_split_aliasing_out(four_workers):
    a, b = _large_operands(P61, 2, seed=11)
    ref = ((a.astype(object) * b.astype(object)) % P61).astype(np.uint64)
    got = F.mul(a, b, out=a)
    assert got is a
    assert np.array_equal(a, ref)


# ---------------------------------------------------------------------------------------------
# out= and aliasing
# ---------------------------------------------------------------------------------------------

ALIAS_A = [P61 - 1, 2**32 + 1, 0, 1, 2**60, 0xFFFFFFFF, 12345]
ALIAS_B = [P61 - 2, 2**32 - 1, 5, P61 - 1, 2**60 + 3, 0xFFFFFFFF, 0]
ALIAS_C = [3, P61 - 1, P61 - 1, 0, 2**31, 1, 77]


def _ref(op: str, a, b=None, c=None):
    ga, gb, gc = GF61_REF(a), GF61_REF(b or a), GF61_REF(c or a)
    return ints({"add": ga + gb, "sub": ga - gb, "mul": ga * gb, "neg": -ga, "muladd": ga * gb + gc}[op])


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("alias", ["a", "b"])
def test_binary_out_aliases_input(op, alias):
    a, b = u64(ALIAS_A), u64(ALIAS_B)
    target = a if alias == "a" else b
    got = getattr(F, op)(a, b, out=target)
    assert got is target
    assert ints(target) == _ref(op, ALIAS_A, ALIAS_B)


def test_neg_out_aliases_input():
    a = u64(ALIAS_A)
    assert F.neg(a, out=a) is a
    assert ints(a) == _ref("neg", ALIAS_A)


@pytest.mark.parametrize("alias", ["a", "b", "c"])
def test_muladd_out_aliases_input(alias):
    arrs = {"a": u64(ALIAS_A), "b": u64(ALIAS_B), "c": u64(ALIAS_C)}
    got = F.muladd(arrs["a"], arrs["b"], arrs["c"], out=arrs[alias])
    assert got is arrs[alias]
    assert ints(got) == _ref("muladd", ALIAS_A, ALIAS_B, ALIAS_C)


def test_same_array_for_every_operand():
    a = u64(ALIAS_A)
    F.mul(a, a, out=a)
    assert ints(a) == [(x * x) % P61 for x in ALIAS_A]


def test_scalar_mul_out_aliases_input():
    a = u64(ALIAS_A)
    assert F.scalar_mul(a, P61 - 1, out=a) is a
    assert ints(a) == [(-x) % P61 for x in ALIAS_A]


def test_weighted_rowsum_out_aliases_a_row():
    rows_list = [ALIAS_A, ALIAS_B, ALIAS_C]
    w_list = [P61 - 1, 2**32 + 1, 7]
    rows = np.array(rows_list, dtype=np.uint64)
    expected = ints(GF61_REF(w_list) @ GF61_REF(rows_list))
    out = rows[0]  # a C-contiguous view of the first row
    got = F.weighted_rowsum(u64(w_list), rows, out=out)
    assert ints(got) == expected


def test_weighted_rowsum_out_aliases_weights():
    k = 3
    rows_list = [ALIAS_A[:k], ALIAS_B[:k], ALIAS_C[:k]]
    w_list = [P61 - 1, 2**32 + 1, 7]
    w = u64(w_list)
    expected = ints(GF61_REF(w_list) @ GF61_REF(rows_list))
    got = F.weighted_rowsum(w, np.array(rows_list, dtype=np.uint64), out=w)
    assert ints(got) == expected


def test_out_with_garbage_contents_is_overwritten():
    a, b = u64(ALIAS_A), u64(ALIAS_B)
    out = np.full(len(ALIAS_A), np.iinfo(np.uint64).max, dtype=np.uint64)
    assert F.add(a, b, out=out) is out
    assert ints(out) == _ref("add", ALIAS_A, ALIAS_B)


def test_validation_happens_before_writing_out():
    a = u64(ALIAS_A)
    before = a.copy()
    bad = u64(ALIAS_B)
    bad[3] = P61
    with pytest.raises(FieldRangeError):
        F.add(a, bad, out=a)
    assert np.array_equal(a, before)


def test_out_validation():
    a, b = u64(ALIAS_A), u64(ALIAS_B)
    with pytest.raises(FieldShapeError, match=r"^out:"):
        F.add(a, b, out=np.zeros(len(ALIAS_A) + 1, dtype=np.uint64))
    with pytest.raises(FieldDTypeError, match=r"^out:.*int64"):
        F.add(a, b, out=np.zeros(len(ALIAS_A), dtype=np.int64))
    with pytest.raises(FieldShapeError, match=r"^out:"):
        F.add(a, b, out=np.zeros(2 * len(ALIAS_A), dtype=np.uint64)[::2])  # not contiguous
    with pytest.raises(FieldShapeError, match=r"^out:"):
        F.weighted_rowsum(u64([1]), np.zeros((1, 4), dtype=np.uint64), out=np.zeros(5, dtype=np.uint64))


# ---------------------------------------------------------------------------------------------
# typed errors naming the argument
# ---------------------------------------------------------------------------------------------

GOOD = u64([1, 2, 3])


def _calls_with(bad, position: str):
    """(callable, expected-name) pairs that pass ``bad`` as the argument named ``position``."""
    args = {"a": GOOD, "b": GOOD, "c": GOOD}
    args[position] = bad
    calls = [
        (lambda: F.add(args["a"], args["b"]), ("a", "b")),
        (lambda: F.sub(args["a"], args["b"]), ("a", "b")),
        (lambda: F.mul(args["a"], args["b"]), ("a", "b")),
        (lambda: F.muladd(args["a"], args["b"], args["c"]), ("a", "b", "c")),
        (lambda: F.dot(args["a"], args["b"]), ("a", "b")),
        (lambda: F.neg(args["a"]), ("a",)),
        (lambda: F.scalar_mul(args["a"], 5), ("a",)),
    ]
    return [call for call, names in calls if position in names]


BAD_DTYPES = [
    (np.array([1, 2, 3], dtype=np.int64), "int64"),
    (np.array([1.0, 2.0, 3.0]), "float64"),
    (np.array([1, 2, 3], dtype=np.uint32), "uint32"),
    ([1, 2, 3], "list"),
    ((1, 2, 3), "tuple"),
]


@pytest.mark.parametrize("position", ["a", "b", "c"])
@pytest.mark.parametrize("bad,type_name", BAD_DTYPES, ids=[t for _, t in BAD_DTYPES])
def test_wrong_dtype_raises_naming_argument(position, bad, type_name):
    calls = _calls_with(bad, position)
    assert calls
    for call in calls:
        with pytest.raises(FieldDTypeError, match=rf"^{position}: dtype {type_name}") as info:
            call()
        assert info.value.name == position
        assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("position", ["a", "b", "c"])
def test_wrong_ndim_raises_naming_argument(position):
    for call in _calls_with(np.ones((3, 1), dtype=np.uint64), position):
        with pytest.raises(FieldShapeError, match=rf"^{position}: shape \(3, 1\), expected 1-D") as info:
            call()
        assert info.value.name == position


@pytest.mark.parametrize("position", ["b", "c"])
def test_mismatched_lengths_name_the_argument(position):
    for call in _calls_with(u64([1, 2, 3, 4]), position):
        with pytest.raises(FieldShapeError, match=rf"^{position}: shape \(4,\)") as info:
            call()
        assert info.value.shape == (4,)


@pytest.mark.parametrize("position", ["a", "b", "c"])
@pytest.mark.parametrize("bad_value", [P61, P61 + 1, 2**61, 2**64 - 1])
def test_value_not_below_p_names_argument_and_index(position, bad_value):
    bad = u64([5, P61 - 1, bad_value, 7])
    args = {"a": u64([1, 2, 3, 4]), "b": u64([1, 2, 3, 4]), "c": u64([1, 2, 3, 4])}
    args[position] = bad
    calls = {
        "a": [lambda: F.add(args["a"], args["b"]), lambda: F.neg(args["a"]),
              lambda: F.scalar_mul(args["a"], 3), lambda: F.dot(args["a"], args["b"])],
        "b": [lambda: F.mul(args["a"], args["b"]), lambda: F.sub(args["a"], args["b"]),
              lambda: F.dot(args["a"], args["b"])],
        "c": [lambda: F.muladd(args["a"], args["b"], args["c"])],
    }[position]
    for call in calls:
        with pytest.raises(FieldRangeError) as info:
            call()
        err = info.value
        assert err.name == position
        assert err.index == (2,)
        assert err.value == bad_value
        assert err.p == P61
        assert f"{position}[2] = {bad_value}" in str(err)
        assert str(P61) in str(err)


def test_range_error_reports_first_offending_index():
    bad = u64([1, P61, 2, P61 + 5])
    with pytest.raises(FieldRangeError, match=r"a\[1\] = 2305843009213693951") as info:
        F.neg(bad)
    assert info.value.index == (1,)


def test_range_error_small_field():
    field = PrimeField(2**31 - 1)
    with pytest.raises(FieldRangeError, match=r"b\[0\] = 2147483647 .*2147483647") as info:
        F.mul(u64([1]), u64([2**31 - 1]), field=field)
    assert info.value.p == 2**31 - 1


def test_weighted_rowsum_errors_name_arguments():
    w = u64([1, 2])
    rows = np.ones((2, 3), dtype=np.uint64)
    with pytest.raises(FieldShapeError, match=r"^rows: shape \(3, 3\)"):
        F.weighted_rowsum(w, np.ones((3, 3), dtype=np.uint64))
    with pytest.raises(FieldShapeError, match=r"^rows: shape \(6,\), expected 2-D"):
        F.weighted_rowsum(w, np.ones(6, dtype=np.uint64))
    with pytest.raises(FieldShapeError, match=r"^weights: shape \(2, 1\), expected 1-D"):
        F.weighted_rowsum(np.ones((2, 1), dtype=np.uint64), rows)
    with pytest.raises(FieldDTypeError, match=r"^weights: dtype int64"):
        F.weighted_rowsum(np.ones(2, dtype=np.int64), rows)
    with pytest.raises(FieldDTypeError, match=r"^rows: dtype float64"):
        F.weighted_rowsum(w, np.ones((2, 3)))
    bad_rows = rows.copy()
    bad_rows[1, 2] = P61
    with pytest.raises(FieldRangeError, match=r"rows\[1, 2\] = 2305843009213693951") as info:
        F.weighted_rowsum(w, bad_rows)
    assert info.value.index == (1, 2)
    with pytest.raises(FieldRangeError, match=r"weights\[1\]"):
        F.weighted_rowsum(u64([1, P61]), rows)


@pytest.mark.parametrize("s", [P61, P61 + 1, -1, 2**64])
def test_scalar_mul_scalar_out_of_range(s):
    with pytest.raises(FieldRangeError, match=r"^s\[\] = ") as info:
        F.scalar_mul(GOOD, s)
    assert info.value.name == "s"
    assert info.value.value == s


@pytest.mark.parametrize("s", [1.0, True, "3", None, np.float64(2.0)])
def test_scalar_mul_scalar_wrong_type(s):
    with pytest.raises(FieldDTypeError, match=r"^s: dtype") as info:
        F.scalar_mul(GOOD, s)
    assert info.value.name == "s"


@pytest.mark.parametrize("x", [0, P61, -P61, 2 * P61])
def test_inverse_of_zero_raises(x):
    with pytest.raises(NotInvertibleError, match="0 has no inverse"):
        F.inverse(x)
    with pytest.raises(ZeroDivisionError):
        GF61.inverse(x)


def test_inverse_of_zero_small_field():
    with pytest.raises(NotInvertibleError):
        F.inverse(65521, field=PrimeField(65521))


@pytest.mark.parametrize(
    "p,pattern",
    [
        (15, "not prime"),
        (2**31 + 1, "not prime"),  # 3 * 715827883
        (4294967297, "2\\^61 - 1"),  # 2^32 + 1 (too large, also composite)
        (4294967311, "2\\^61 - 1"),  # smallest prime above 2^32
        (2**61 + 1, "2\\^61 - 1"),
        (2**89 - 1, "2\\^61 - 1"),  # a larger Mersenne prime
        (2**127 - 1, "2\\^61 - 1"),
        (2, "2\\^61 - 1"),  # even prime: not supported
        (1, "2\\^61 - 1"),
        (0, "2\\^61 - 1"),
        (-7, "2\\^61 - 1"),
        (7.0, "not an int"),
        (True, "not an int"),
        ("7", "not an int"),
    ],
)
def test_unsupported_prime(p, pattern):
    with pytest.raises(UnsupportedFieldError, match=pattern):
        PrimeField(p)


@pytest.mark.parametrize("p", [3, 5, 65521, 2**31 - 1, 4294967291, P61])
def test_supported_primes(p):
    field = PrimeField(p)
    assert field.p == p
    assert field.modulus == np.uint64(p) and field.modulus.dtype == np.uint64
    assert field.bits == p.bit_length()
    assert field.is_mersenne61 == (p == P61)


def test_elements_returns_validated_array_and_checks_ndim():
    a = u64([[1, 2], [3, 4]])
    assert GF61.elements(a, "x") is a
    with pytest.raises(FieldShapeError, match=r"^x: shape \(2, 2\), expected 1-D"):
        GF61.elements(a, "x", ndim=1)
    bad = u64([[1, 2], [3, P61]])
    with pytest.raises(FieldRangeError, match=r"x\[1, 1\]") as info:
        GF61.elements(bad, "x")
    assert info.value.index == (1, 1)
    # the range check can be skipped (used for out=)
    assert GF61.elements(bad, "x", check_range=False) is bad
    # non-contiguous input comes back as a contiguous copy with the same values
    strided = u64(list(range(10)))[::2]
    got = GF61.elements(strided, "x")
    assert got.flags.c_contiguous and ints(got) == [0, 2, 4, 6, 8]


OPS_WITH_OUT = {
    "add": lambda a, b, out: F.add(a, b, out=out),
    "mul": lambda a, b, out: F.mul(a, b, out=out),
    "muladd": lambda a, b, out: F.muladd(a, b, b, out=out),
    "scalar_mul": lambda a, b, out: F.scalar_mul(a, 5, out=out),
}


@pytest.mark.parametrize("op", sorted(OPS_WITH_OUT))
@pytest.mark.parametrize("out_kind", ["fresh", "separate", "aliasing_a"])
def test_bad_value_in_a_thread_split_call_raises_and_never_modifies_inputs(op, out_kind):
    """A value >= p deep inside a call split over the thread pool is caught whether the check
    rides along the kernel (fresh or separate output) or runs first (output aliasing an input),
    and the inputs are never modified."""
    n = 4 * threads.MIN_SPLIT + 3
    a = np.arange(n, dtype=np.uint64)
    b = np.arange(n, dtype=np.uint64)[::-1].copy()
    a[n - 2] = np.uint64(P61 + 9)
    a_before, b_before = a.copy(), b.copy()
    out = {"fresh": None, "separate": np.zeros(n, dtype=np.uint64), "aliasing_a": a}[out_kind]
    with pytest.raises(FieldRangeError) as info:
        OPS_WITH_OUT[op](a, b, out)
    assert info.value.value == P61 + 9
    assert info.value.index[-1] == n - 2
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("aliased_row", [0, 1])
def test_weighted_rowsum_bad_value_with_out_aliasing_a_row_leaves_rows_untouched(aliased_row):
    n = 4 * threads.MIN_SPLIT + 3
    rows = np.stack([np.arange(n, dtype=np.uint64), np.arange(n, dtype=np.uint64)[::-1]])
    rows[1, 5] = np.uint64(P61)
    before = rows.copy()
    with pytest.raises(FieldRangeError, match=r"rows\[1, 5\]"):
        F.weighted_rowsum(u64([1, 2]), rows, out=rows[aliased_row])
    np.testing.assert_array_equal(rows, before)


def test_dot_catches_a_bad_value_in_a_thread_split_call():
    n = 4 * threads.MIN_SPLIT
    a = np.ones(n, dtype=np.uint64)
    b = a.copy()
    b[threads.MIN_SPLIT * 3 + 1] = np.uint64(2**64 - 1)
    with pytest.raises(FieldRangeError, match=rf"b\[{threads.MIN_SPLIT * 3 + 1}\]"):
        F.dot(a, b)


def test_read_only_out_raises_naming_out():
    out = np.zeros(4, dtype=np.uint64)
    out.setflags(write=False)
    with pytest.raises(FieldShapeError, match=r"out: .*writable"):
        F.add(u64([1, 2, 3, 4]), u64([1, 2, 3, 4]), out=out)
