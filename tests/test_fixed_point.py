"""The fixed-point codec against exact rational arithmetic (``fractions.Fraction``).

Reference encoding: ``v = round(x * 2^f)`` with Python's round-half-to-even on the exact
rational value of ``x``, stored as ``v mod p``. Decoding is compared with the exact rational
``v / 2^(f * scale_power)``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppbfl.field as F
from ppbfl.errors import CodecParameterError, EncodingRangeError, FieldDTypeError, FieldRangeError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, MERSENNE61, PrimeField

P61 = MERSENNE61
SMALL = PrimeField(2**31 - 1)
FAST = settings(max_examples=150, deadline=None)

CODECS = {
    "gf61-f16": FixedPointCodec(),
    "gf61-f0": FixedPointCodec(frac_bits=0),
    "gf61-f8": FixedPointCodec(frac_bits=8),
    "gf61-f24": FixedPointCodec(frac_bits=24),
    "gf31-f8": FixedPointCodec(field=SMALL, frac_bits=8),
}


def ref_encode_int(x: float, f: int) -> int:
    """Exact ``round_half_even(x * 2^f)`` as a Python int."""
    return round(Fraction(x) * 2**f)


def ref_encode(x: float, codec: FixedPointCodec) -> int:
    return ref_encode_int(x, codec.frac_bits) % codec.field.p


@cache
def max_abs_for_dot(n: int) -> float:
    """The library's bound for the default codec (cached: one computation per length)."""
    return FixedPointCodec().max_abs_for_dot(n)


def ref_max_abs_for_dot(n: int, p: int = P61, f: int = 16) -> float:
    """Independent reference: the largest float m with n * rint(m 2^f)^2 <= (p - 1) / 2.

    V = isqrt(((p - 1) / 2) // n) is the largest admissible encoded integer; rint rounds half to
    even, so m = (V + 1/2) / 2^f itself still encodes to V when V is even, else the float just
    below it is the largest.
    """
    half = p // 2
    v = math.isqrt(half // n)
    edge = math.ldexp(v + 0.5, -f)  # exact: v < 2^52
    assert Fraction(edge) == Fraction(2 * v + 1, 2 ** (f + 1))
    return edge if v % 2 == 0 else math.nextafter(edge, 0.0)


def floats_within(bound: float, width: int = 64) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)


# ---------------------------------------------------------------------------------------------
# defaults and construction
# ---------------------------------------------------------------------------------------------


def test_default_max_abs_is_8192_for_gf61_f16():
    codec = FixedPointCodec()
    assert codec.field == GF61 and codec.frac_bits == 16
    assert codec.max_abs == 8192.0
    assert codec.scale == 65536.0


def test_small_field_default_max_abs_formula():
    # 2^(floor((bits(p) - 3) / 2) - f) with bits(2^31 - 1) = 31, f = 8: 2^(14 - 8)
    assert FixedPointCodec(field=SMALL, frac_bits=8).max_abs == 64.0


@pytest.mark.parametrize("frac_bits", [-1, 60, 61, 1.5, "16"])
def test_bad_frac_bits(frac_bits):
    with pytest.raises(CodecParameterError, match="frac_bits"):
        FixedPointCodec(frac_bits=frac_bits)


@pytest.mark.parametrize("max_abs", [0.0, -1.0, float("nan"), float("inf"), 2.0**44 + 1])
def test_bad_max_abs(max_abs):
    with pytest.raises(CodecParameterError, match="max_abs"):
        FixedPointCodec(max_abs=max_abs)


def test_every_accepted_max_abs_round_trips_at_its_extremes():
    """Whatever ``max_abs`` the constructor accepts, ``+-max_abs`` must decode to itself.

    The constructor's limit is "the largest |x| whose encoding is below p / 2". For
    GF(2^61 - 1), f = 16 that is (2^60 - 2) / 2^16, which is not a float64: the candidates
    below straddle it. A candidate the constructor refuses is fine; one it accepts must work.
    """
    accepted = []
    for max_abs in (2.0**44, float(np.nextafter(2.0**44, 0.0)), 2.0**43 + 0.5, 2.0**43):
        try:
            codec = FixedPointCodec(frac_bits=16, max_abs=max_abs)
        except CodecParameterError:
            continue
        accepted.append(max_abs)
        x = np.array([max_abs, -max_abs])
        dec = codec.decode(codec.encode(x))
        assert np.array_equal(dec, x), (max_abs, dec)
    assert 2.0**43 in accepted
    # 2^44 - 2^-9 encodes to 2^60 - 2^7 <= (p - 1) / 2: the safe range reaches it
    assert float(np.nextafter(2.0**44, 0.0)) in accepted


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CODECS))
def test_encode_matches_exact_rounding_and_round_trips_float64(name):
    codec = CODECS[name]
    f, p = codec.frac_bits, codec.field.p

    @FAST
    @given(st.lists(floats_within(codec.max_abs), min_size=1, max_size=30))
    def prop(xs):
        x = np.array(xs, dtype=np.float64)
        enc = codec.encode(x)
        assert enc.dtype == np.uint64 and enc.shape == x.shape
        assert int(enc.max()) < p
        assert [int(v) for v in enc] == [ref_encode(v, codec) for v in xs]
        dec = codec.decode(enc)
        assert dec.dtype == np.float64 and dec.shape == x.shape
        # half an ulp of the fixed-point grid (the grid point is exactly representable)
        assert np.all(np.abs(dec - x) <= math.ldexp(1.0, -(f + 1)))
        for d, v in zip(dec, xs):
            assert Fraction(float(d)) == Fraction(ref_encode_int(v, f), 2**f)

    prop()


@FAST
@given(st.lists(floats_within(8192.0, width=32), min_size=1, max_size=30))
def test_round_trip_float32(xs):
    codec = FixedPointCodec()
    x = np.array(xs, dtype=np.float32)
    enc = codec.encode(x)
    assert enc.dtype == np.uint64 and int(enc.max()) < P61
    dec = codec.decode(enc)
    exact = x.astype(np.float64)
    assert np.all(np.abs(dec - exact) <= 2.0**-17)
    assert [int(v) for v in enc] == [ref_encode(float(v), codec) for v in x]


def test_round_trip_negatives_and_edge_values():
    codec = FixedPointCodec()
    ulp = 2.0**-16
    xs = [0.0, -0.0, ulp, -ulp, ulp / 2, -ulp / 2, 3 * ulp / 2, -3 * ulp / 2, 1.5, -1.5,
          -1.0, -8192.0, 8192.0, -8191.99999, 1e-30, -1e-30, 5e-324, -5e-324, 0.1, -0.1]
    enc = codec.encode(np.array(xs))
    assert [int(v) for v in enc] == [ref_encode(v, codec) for v in xs]
    # negatives are stored as p - |v|
    assert int(enc[xs.index(-1.0)]) == P61 - 2**16
    assert int(enc[xs.index(-8192.0)]) == P61 - 2**29
    assert int(enc[xs.index(-0.0)]) == 0
    # round half to even: 0.5 ulp -> 0, 1.5 ulp -> 2
    assert int(enc[xs.index(ulp / 2)]) == 0
    assert int(enc[xs.index(3 * ulp / 2)]) == 2
    assert int(enc[xs.index(-3 * ulp / 2)]) == P61 - 2
    dec = codec.decode(enc)
    assert np.all(np.abs(dec - np.array(xs)) <= 2.0**-17)
    assert np.all(np.sign(dec[dec != 0]) == np.sign(np.array(xs)[dec != 0]))


def test_multidimensional_round_trip_keeps_shape():
    codec = FixedPointCodec()
    x = np.linspace(-100, 100, 24).reshape(2, 3, 4)
    enc = codec.encode(x)
    assert enc.shape == (2, 3, 4)
    assert np.all(np.abs(codec.decode(enc) - x) <= 2.0**-17)


def test_integer_input_is_accepted():
    codec = FixedPointCodec()
    enc = codec.encode(np.array([-3, 0, 7], dtype=np.int64))
    assert [int(v) for v in enc] == [P61 - 3 * 2**16, 0, 7 * 2**16]


def test_sum_of_encodings_decodes_at_scale_one():
    codec = FixedPointCodec()
    x = np.array([1.25, -3.5, 100.0, -0.0625])
    y = np.array([-2.5, 1.5, -4000.0, 0.0625])
    total = codec.decode(F.add(codec.encode(x), codec.encode(y)))
    assert np.array_equal(total, x + y)  # all exactly representable


# ---------------------------------------------------------------------------------------------
# products and dot products (scale 2^(2f))
# ---------------------------------------------------------------------------------------------


def product_bound(a: float, b: float, f: int) -> float:
    """|decode(enc(a) * enc(b)) - a*b|: rounding of each factor, plus float rounding."""
    half = 2.0 ** -(f + 1)
    return (abs(a) + abs(b)) * half + half * half + 4 * np.finfo(np.float64).eps * (abs(a * b) + 1)


@pytest.mark.parametrize("name", ["gf61-f16", "gf61-f8", "gf31-f8"])
def test_mul_of_encodings_decodes_at_scale_two(name):
    codec = CODECS[name]
    f = codec.frac_bits

    @FAST
    @given(st.lists(st.tuples(floats_within(codec.max_abs), floats_within(codec.max_abs)),
                    min_size=1, max_size=20))
    def prop(pairs):
        a = np.array([u for u, _ in pairs])
        b = np.array([v for _, v in pairs])
        prod = F.mul(codec.encode(a), codec.encode(b), field=codec.field)
        dec = codec.decode(prod, scale_power=2)
        for i, (u, v) in enumerate(pairs):
            exact = Fraction(ref_encode_int(u, f) * ref_encode_int(v, f), 2 ** (2 * f))
            assert dec[i] == float(exact)
            assert abs(dec[i] - u * v) <= product_bound(u, v, f)
            assert codec.decode_scalar(int(prod[i]), scale_power=2) == dec[i]

    prop()


def test_product_of_extreme_encodings():
    codec = FixedPointCodec()
    m = codec.max_abs
    a = np.array([m, -m, m, -m, 0.0])
    b = np.array([m, m, -m, -m, -m])
    dec = codec.decode(F.mul(codec.encode(a), codec.encode(b)), scale_power=2)
    assert np.array_equal(dec, a * b)


@FAST
@given(st.integers(1, 63).flatmap(
    lambda n: st.tuples(st.lists(floats_within(2048.0), min_size=n, max_size=n),
                        st.lists(floats_within(2048.0), min_size=n, max_size=n))))
def test_dot_of_encodings_decodes_at_scale_two(ab):
    a_list, b_list = ab
    n = len(a_list)
    codec = FixedPointCodec()
    f = codec.frac_bits
    # |x| <= 2048 encodes to at most 2^27 and 63 * 2^54 < (p - 1) / 2: the dot cannot wrap
    assert n * (2048 * 2**f) ** 2 <= P61 // 2
    a, b = np.array(a_list), np.array(b_list)
    opened = F.dot(codec.encode(a), codec.encode(b))
    got = codec.decode_scalar(opened, scale_power=2)
    exact = Fraction(sum(ref_encode_int(u, f) * ref_encode_int(v, f) for u, v in zip(a_list, b_list)),
                     2 ** (2 * f))
    assert got == float(exact)
    true = sum(Fraction(u) * Fraction(v) for u, v in zip(a_list, b_list))
    bound = sum(product_bound(u, v, f) for u, v in zip(a_list, b_list))
    assert abs(got - float(true)) <= bound
    assert abs(got - float(np.dot(a, b))) <= bound + 4 * n * np.finfo(np.float64).eps * float(np.abs(a) @ np.abs(b))


DOT_LENGTHS = (1, 3, 5, 10, 100, 4096, 10**6, 10**7)  # model-sized lengths too


def test_max_abs_for_dot_matches_exact_reference():
    """The bound is safe (never above the reference) and loses nothing that matters: it encodes
    to the largest admissible integer isqrt(((p - 1) / 2) // n). (Within that last rounding
    cell any float is equally good, so the test does not insist on the very largest one.)"""
    for n in DOT_LENGTHS:
        m = max_abs_for_dot(n)
        v = math.isqrt((P61 // 2) // n)
        assert m <= ref_max_abs_for_dot(n), n
        assert ref_encode_int(m, 16) == v, n
        assert n * v * v <= P61 // 2 < n * (v + 1) ** 2


def test_max_abs_for_dot_bound_holds_at_its_extremes():
    """``max_abs_for_dot(n)`` promises that a dot product of two n-vectors decodes.

    Checked at the extremes: every coordinate equal to +-max_abs_for_dot(n). The true value of
    the opened dot product is n * va * vb (va, vb the encoded integers); it must decode to
    exactly that, with the right sign.
    """
    f = 16
    failures = []
    for n in DOT_LENGTHS:
        m = max_abs_for_dot(n)
        codec = FixedPointCodec(frac_bits=f, max_abs=max(m, 8192.0))
        for sa, sb in ((1, 1), (1, -1), (-1, -1)):
            a = np.full(n, sa * m)
            b = np.full(n, sb * m)
            got = codec.decode_scalar(F.dot(codec.encode(a), codec.encode(b)), scale_power=2)
            va, vb = ref_encode_int(sa * m, f), ref_encode_int(sb * m, f)
            assert n * va * vb != 0
            expected = float(Fraction(n * va * vb, 2 ** (2 * f)))
            if got != expected:
                failures.append((n, sa, sb, m, got, expected))
    assert not failures, failures


def test_default_max_abs_lets_three_extreme_products_sum():
    """Module docs: a product of two max_abs encodings is at most 2^(bits(p) - 3) in magnitude,
    so up to three products sum without wrapping."""
    codec = FixedPointCodec()
    m = codec.max_abs
    assert abs(ref_encode_int(m, 16)) ** 2 <= 2 ** (P61.bit_length() - 3)
    for n in (1, 2, 3):
        for sa, sb in [(1, 1), (1, -1), (-1, -1)]:
            a = np.full(n, sa * m)
            b = np.full(n, sb * m)
            got = codec.decode_scalar(F.dot(codec.encode(a), codec.encode(b)), scale_power=2)
            assert got == float(np.dot(a, b)), (n, sa, sb, got)


def test_max_abs_for_dot_rejects_bad_length():
    codec = FixedPointCodec()
    for n in (0, -1, True, 1.5, "3"):
        with pytest.raises(CodecParameterError, match="length"):
            codec.max_abs_for_dot(n)


def test_max_abs_for_dot_decreases_with_length():
    values = [max_abs_for_dot(n) for n in DOT_LENGTHS]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(2.0**14, rel=1e-8)
    assert all(0 < v < 2.0**14 for v in values)


# ---------------------------------------------------------------------------------------------
# values that cannot be encoded
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 8192.5, -8193.0, 1e300, -1e300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unencodable_value_raises_naming_index_and_value(bad, dtype):
    codec = FixedPointCodec()
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.array([0.0, 1.0, bad, 2.0], dtype=np.float64).astype(dtype)
        with pytest.raises(EncodingRangeError) as info:
            codec.encode(x)
    err = info.value
    assert err.index == (2,)
    stored = float(x[2])
    if math.isnan(stored):
        assert math.isnan(err.value)
    else:
        assert err.value == stored
    assert err.max_abs == 8192.0 and err.frac_bits == 16
    assert f"value[2] = {stored!r}" in str(err)
    assert isinstance(err, ValueError)


def test_value_just_above_max_abs_raises():
    """``|x| > max_abs`` is refused (module and method docs), even within half a grid step."""
    codec = FixedPointCodec()
    for bad in (np.nextafter(8192.0, np.inf), 8192.0 + 2.0**-18, -8192.0 - 2.0**-18):
        with pytest.raises(EncodingRangeError) as info:
            codec.encode(np.array([1.0, bad]))
        assert info.value.index == (1,)
        assert info.value.value == bad


def test_max_abs_itself_is_accepted():
    codec = FixedPointCodec(max_abs=3.0)
    enc = codec.encode(np.array([3.0, -3.0]))
    assert np.array_equal(codec.decode(enc), [3.0, -3.0])
    with pytest.raises(EncodingRangeError, match=r"value\[0\] = 3\.5"):
        codec.encode(np.array([3.5]))


def test_first_offending_index_is_reported_as_tuple_for_multidim_input():
    codec = FixedPointCodec()
    x = np.zeros((2, 3, 4))
    x[1, 2, 3] = np.inf
    x[1, 2, 1] = np.nan
    x[0, 1, 2] = 10_000.0
    with pytest.raises(EncodingRangeError) as info:
        codec.encode(x)
    assert info.value.index == (0, 1, 2)
    assert info.value.value == 10_000.0
    assert "value[0, 1, 2] = 10000.0" in str(info.value)
    x[0, 1, 2] = 0.0
    with pytest.raises(EncodingRangeError) as info:
        codec.encode(x)
    assert info.value.index == (1, 2, 1)
    assert math.isnan(info.value.value)
    assert "value[1, 2, 1] = nan" in str(info.value)


def test_custom_max_abs_is_enforced():
    codec = FixedPointCodec(max_abs=1.0)
    with pytest.raises(EncodingRangeError) as info:
        codec.encode(np.array([[0.5, -1.5]]))
    assert info.value.index == (0, 1)
    assert info.value.max_abs == 1.0


# ---------------------------------------------------------------------------------------------
# decode validation
# ---------------------------------------------------------------------------------------------


def test_decode_rejects_bad_scale_power():
    codec = FixedPointCodec()
    for sp in (0, 3, -1):
        with pytest.raises(CodecParameterError, match="scale_power"):
            codec.decode(np.zeros(2, dtype=np.uint64), scale_power=sp)


def test_decode_validates_elements():
    codec = FixedPointCodec()
    with pytest.raises(FieldRangeError, match=r"a\[1\]") as info:
        codec.decode(np.array([0, P61], dtype=np.uint64))
    assert info.value.index == (1,)
    with pytest.raises(FieldDTypeError, match=r"^a: dtype int64"):
        codec.decode(np.array([0, 1], dtype=np.int64))
    with pytest.raises(FieldRangeError, match=r"^value"):
        codec.decode_scalar(P61)
    with pytest.raises(FieldRangeError):
        codec.decode_scalar(-1)


def test_decode_sign_boundary():
    codec = FixedPointCodec(frac_bits=0)
    half = P61 // 2
    dec = codec.decode(np.array([half, half + 1, P61 - 1, 0, 1], dtype=np.uint64))
    assert dec.tolist() == [float(half), -float(half), -1.0, 0.0, 1.0]
    assert codec.decode_scalar(half + 1) == -float(half)
    assert codec.decode_scalar(P61 - 1) == -1.0


def test_small_field_negative_round_trip():
    codec = FixedPointCodec(field=SMALL, frac_bits=8)
    x = np.array([-64.0, -0.00390625, 63.5, -1.0])
    enc = codec.encode(x)
    assert int(enc[0]) == SMALL.p - 64 * 256
    assert int(enc[1]) == SMALL.p - 1
    assert np.array_equal(codec.decode(enc), x)
