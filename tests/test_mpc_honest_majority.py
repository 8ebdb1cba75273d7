"""Stage 2: pseudorandom zero-sharing and honest-majority dot products (no dealer)."""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.field import GF61, FieldRNG, FixedPointCodec, PrimeField
from ppbfl.mpc import CounterReuseError, HonestMajorityError, PRZSKeys, local_products, open_scalar
from ppbfl.mpc.przs import f_A
from ppbfl.mpc.testing import (
    HMTranscript,
    SecureDot,
    TrustedDealer,
    ZeroSharer,
    beaver_dot,
    hm_dot_open,
    hm_square_open,
)
from ppbfl.sharing import reconstruct, share

P = GF61.p
GF = galois.GF(P)


def _rng(seed: int, field: PrimeField = GF61) -> FieldRNG:
    return FieldRNG(seed.to_bytes(32, "little"), field=field)


@pytest.mark.parametrize("t,n", [(1, 1), (1, 4), (2, 3), (2, 5), (3, 5), (3, 7), (4, 9)])
def test_zero_shares_lie_on_a_degree_2t_minus_2_polynomial_through_zero(t: int, n: int) -> None:
    zero = ZeroSharer.setup(t, n)
    shares = zero.next(count=4)  # (n, 4): four independent zero sharings
    assert shares.shape == (n, 4) and shares.dtype == np.uint64
    k = 2 * t - 1
    xs = GF(np.arange(1, k + 1))
    for col in range(4):
        poly = galois.lagrange_poly(xs, GF(shares[:k, col]))
        assert int(poly(GF(0))) == 0
        for i in range(k, n):  # the other parties' shares are on the same polynomial
            assert int(poly(GF(i + 1))) == int(shares[i, col])
        if t > 1:
            # pseudorandom, not degenerate: nonzero, and of full degree 2(t-1) (fails w.p. ~1/p)
            assert poly.degree == 2 * (t - 1)
        else:
            assert not shares[:, col].any()
    # fresh counter -> different masks
    assert t == 1 or not np.array_equal(zero.next(count=4), shares)


def test_f_A_is_one_at_zero_and_vanishes_outside_A() -> None:
    field = GF61
    a = frozenset({1, 3, 4})
    assert f_A(a, 5, 0, field) == 1
    assert f_A(a, 5, 2, field) == 0 and f_A(a, 5, 5, field) == 0
    # degree t - 1 = 2 (two roots): interpolate from 3 points and check the 4th
    ys = [f_A(a, 5, x, field) for x in range(4)]
    poly = galois.lagrange_poly(GF([0, 1, 2, 3]), GF(ys))
    assert poly.degree == 2


def test_party_holds_only_keys_of_sets_containing_it() -> None:
    keys = PRZSKeys.setup(3, 6)
    assert len(keys.keys) == 15  # C(6, 2) sets of size n - t + 1 = 4
    assert all(len(a) == 4 for a in keys.keys)
    for i in range(1, 7):
        view = keys.for_party(i)
        assert all(i in a for a in view.keys) and len(view.keys) == 10  # C(5, 3)
    # any t - 1 = 2 parties together miss exactly the key of their complement
    held = set(keys.for_party(2).keys) | set(keys.for_party(5).keys)
    assert set(keys.keys) - held == {frozenset({1, 3, 4, 6})}


def test_counters_never_repeat() -> None:
    keys = PRZSKeys.setup(2, 3)
    party = keys.for_party(1)
    party.zero_share(7)
    with pytest.raises(CounterReuseError, match="counter 7") as info:
        party.zero_share(7)
    assert info.value.party == 1
    zero = ZeroSharer(keys, start=5)
    zero.next()  # counter 5
    zero.next()  # counter 6
    with pytest.raises(CounterReuseError):
        zero.next()  # counter 7 was used by party 1 above
    with pytest.raises(CounterReuseError):
        zero.at(5)


def test_zero_shares_are_deterministic_in_keys_and_counter() -> None:
    keys = PRZSKeys.setup(3, 5)
    a = ZeroSharer(keys).at(11, 3)
    with pytest.raises(CounterReuseError):
        ZeroSharer(keys).at(11, 3)  # the used counters travel with the keys
    again = PRZSKeys(keys.t, keys.n, dict(keys.keys))  # the same keys in another process
    assert np.array_equal(ZeroSharer(again).at(11, 3), a)
    assert not np.array_equal(a, ZeroSharer(keys).at(12, 3))


@pytest.mark.parametrize("t,n", [(2, 2), (3, 4), (4, 6)])
def test_honest_majority_needs_n_at_least_2t_minus_1(t: int, n: int) -> None:
    xs = share(np.zeros(3, np.uint64), t, n)
    with pytest.raises(HonestMajorityError, match=f"n >= 2t - 1 = {2 * t - 1}"):
        hm_dot_open(xs, xs, t, ZeroSharer.setup(t, max(n, 2 * t - 1)))
    with pytest.raises(HonestMajorityError):
        SecureDot(t, n, "honest_majority")
    SecureDot(t, n, "beaver")  # Beaver mode works with any t <= n


def test_local_products_are_a_degree_2t_minus_2_sharing_and_masking_rerandomises() -> None:
    t, n, d = 3, 6, 50
    rng = _rng(4)
    x, y = rng.random(d), rng.random(d)
    xs, ys = share(x, t, n, rng=rng), share(y, t, n, rng=rng)
    z = local_products(xs, ys)
    expect = int(np.sum(GF(x) * GF(y)))
    assert int(reconstruct(z[: 2 * t - 1].reshape(-1, 1), list(range(1, 2 * t)))[0]) == expect
    zero = ZeroSharer.setup(t, n)
    tr1, tr2 = HMTranscript(), HMTranscript()
    assert hm_dot_open(xs, ys, t, zero, transcript=tr1).value == expect
    assert hm_dot_open(xs, ys, t, zero, transcript=tr2).value == expect
    assert tr1.masked is not None and tr2.masked is not None
    assert not np.array_equal(tr1.masked, z) and not np.array_equal(tr1.masked, tr2.masked)


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 3000), seed=st.integers(0, 2**32), t=st.integers(1, 3), extra=st.integers(0, 2))
def test_hm_dot_matches_float_dot_and_beaver_exactly(d: int, seed: int, t: int, extra: int) -> None:
    n = 2 * t - 1 + extra
    bound = FixedPointCodec().max_abs_for_dot(d)
    codec = FixedPointCodec(max_abs=bound)
    gen = np.random.default_rng(seed)  # test data only
    xf, yf = gen.uniform(-bound, bound, d), gen.uniform(-bound, bound, d)
    rng = _rng(seed)
    xs, ys = share(codec.encode(xf), t, n, rng=rng), share(codec.encode(yf), t, n, rng=rng)
    zero = ZeroSharer.setup(t, n)
    hm = hm_dot_open(xs, ys, t, zero)
    assert hm.wrong_points == ()
    got = codec.decode_scalar(hm.value, scale_power=2)
    err = d * (bound * 2.0**-16 + 2.0**-34)
    assert abs(got - float(np.dot(xf, yf))) <= err
    # Beaver mode on the same shares: the same field element
    dealer = TrustedDealer(t, n, rng=rng)
    beaver = open_scalar(beaver_dot(xs, ys, dealer.beaver_triple(d), t), t - 1)
    assert beaver.value == hm.value
    sq = hm_square_open(xs, t, zero)
    assert abs(codec.decode_scalar(sq.value, 2) - float(np.dot(xf, xf))) <= err
    assert sq.value == SecureDot(t, n, "beaver", triple_source=dealer).square(xs).value


def test_hm_open_names_a_lying_party() -> None:
    t, n, d = 2, 5, 40  # degree 2 opened from 5 points: corrects 1 lie
    rng = _rng(12)
    x = rng.random(d)
    xs = share(x, t, n, rng=rng)
    lying = xs.copy()
    # party 4 uses a wrong share vector for its local product: its published value is wrong
    lying[3] = rng.random(d)
    opened = hm_dot_open(lying, lying, t, ZeroSharer.setup(t, n))
    assert opened.value == int(np.sum(GF(x) ** 2))
    assert opened.wrong_points == (4,)


def test_secure_dot_over_small_field() -> None:
    field = PrimeField(31)
    gf = galois.GF(31)
    rng = _rng(3, field)
    x, y = rng.random(5), rng.random(5)
    xs, ys = share(x, 2, 3, field=field, rng=rng), share(y, 2, 3, field=field, rng=rng)
    expect = int(np.sum(gf(x) * gf(y)))
    assert SecureDot(2, 3, "honest_majority", field=field).dot(xs, ys).value == expect
    assert SecureDot(2, 3, "beaver", field=field).dot(xs, ys).value == expect
