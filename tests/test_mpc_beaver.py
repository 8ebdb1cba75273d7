"""Stage 1: local linear operations on shares and Beaver-triple dot products / squares."""

from __future__ import annotations

import galois
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.errors import FieldShapeError, PPBFLError
from ppbfl.field import GF61, FieldRNG, FixedPointCodec, PrimeField
from ppbfl.mpc import (
    MPCParameterError,
    TripleReuseError,
    TripleShapeError,
    add,
    add_public,
    deal_square_triples,
    dot_public,
    scalar_mul,
    square_from_opened,
    sub,
    weighted_sum,
)
from ppbfl.mpc.testing import BeaverTranscript, TrustedDealer, beaver_dot, beaver_square
from ppbfl.sharing import reconstruct, share

P = GF61.p
GF = galois.GF(P)


def _rng(seed: int, field: PrimeField = GF61) -> FieldRNG:
    return FieldRNG(seed.to_bytes(32, "little"), field=field)


def _open(shares: np.ndarray, t: int) -> np.ndarray:
    return reconstruct(shares, list(range(1, shares.shape[0] + 1)))  # all rows: also checks degree < n


def _open_t(shares: np.ndarray, t: int) -> np.ndarray:
    return reconstruct(shares[:t], list(range(1, t + 1)), t=t)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 4), extra=st.integers(0, 3), d=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_linear_ops_match_galois(t: int, extra: int, d: int, seed: int) -> None:
    n = t + extra
    rng = _rng(seed)
    x, y, v = rng.random(d), rng.random(d), rng.random(d)
    s = int(rng.random(1)[0])
    w = rng.random(3)
    xs, ys = share(x, t, n, rng=rng), share(y, t, n, rng=rng)
    zs = share(rng.random(d), t, n, rng=rng)
    gx, gy, gv = GF(x), GF(y), GF(v)
    assert np.array_equal(_open_t(add(xs, ys), t), np.asarray(gx + gy, dtype=np.uint64))
    assert np.array_equal(_open_t(sub(xs, ys), t), np.asarray(gx - gy, dtype=np.uint64))
    assert np.array_equal(_open_t(scalar_mul(xs, s), t), np.asarray(GF(s) * gx, dtype=np.uint64))
    assert np.array_equal(_open_t(add_public(xs, v), t), np.asarray(gx + gv, dtype=np.uint64))
    dshares = dot_public(xs, v)
    assert dshares.shape == (n,) and dshares.dtype == np.uint64
    assert int(_open_t(dshares.reshape(-1, 1), t)[0]) == int(np.sum(gx * gv))
    ws = weighted_sum([xs, ys, zs], w)
    expect = GF(int(w[0])) * gx + GF(int(w[1])) * gy + GF(int(w[2])) * GF(_open_t(zs, t))
    assert np.array_equal(_open_t(ws, t), np.asarray(expect, dtype=np.uint64))
    # the results are still degree t - 1 sharings: every t-subset agrees with all n points
    if n > t:
        assert np.array_equal(_open(add(xs, ys), t), _open_t(add(xs, ys), t))


def test_linear_ops_validate() -> None:
    xs = share(np.arange(4, dtype=np.uint64), 2, 3)
    with pytest.raises(FieldShapeError):
        add(xs, xs[:, :3])
    with pytest.raises(FieldShapeError):
        dot_public(xs, np.zeros(5, np.uint64))
    with pytest.raises(FieldShapeError):
        weighted_sum([xs, xs], np.ones(3, np.uint64))
    with pytest.raises(PPBFLError):
        add(xs.astype(np.int64), xs)
    bad = xs.copy()
    bad[1, 2] = P
    with pytest.raises(PPBFLError):
        add(bad, xs)


@pytest.mark.parametrize("t,n", [(1, 1), (2, 3), (3, 5), (4, 4), (5, 9)])
def test_beaver_dot_and_square_exact_in_field(t: int, n: int) -> None:
    rng = _rng(7 * t + n)
    d = 257
    x, y = rng.random(d), rng.random(d)
    xs, ys = share(x, t, n, rng=rng), share(y, t, n, rng=rng)
    dealer = TrustedDealer(t, n, rng=_rng(99))
    z = beaver_dot(xs, ys, dealer.beaver_triple(d), t)
    assert z.shape == (n,)
    assert int(_open(z.reshape(-1, 1), t)[0]) == int(np.sum(GF(x) * GF(y)))
    # the result is a degree t - 1 sharing: the first t shares predict the others
    assert int(_open_t(z.reshape(-1, 1), t)[0]) == int(np.sum(GF(x) * GF(y)))
    q = beaver_square(xs, dealer.square_triple(d), t)
    assert int(_open(q.reshape(-1, 1), t)[0]) == int(np.sum(GF(x) ** 2))


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 2000), seed=st.integers(0, 2**32), t=st.integers(1, 3), extra=st.integers(0, 2))
def test_beaver_dot_matches_float_dot(d: int, seed: int, t: int, extra: int) -> None:
    n = t + extra
    bound = FixedPointCodec().max_abs_for_dot(d)
    codec = FixedPointCodec(max_abs=bound)
    gen = np.random.default_rng(seed)  # test data only
    xf = gen.uniform(-bound, bound, d)
    yf = gen.uniform(-bound, bound, d)
    ex, ey = codec.encode(xf), codec.encode(yf)
    rng = _rng(seed)
    dealer = TrustedDealer(t, n, rng=rng)
    z = beaver_dot(share(ex, t, n, rng=rng), share(ey, t, n, rng=rng), dealer.beaver_triple(d), t)
    got = codec.decode_scalar(int(_open_t(z.reshape(-1, 1), t)[0]), scale_power=2)
    # exact: the field result is the integer dot of the encodings (no wrap under max_abs_for_dot)
    exact = sum(int(a) * int(b) for a, b in zip(np.rint(xf * 2**16).astype(np.int64), np.rint(yf * 2**16).astype(np.int64)))
    assert got == exact / 2.0**32
    # and that is the float dot within the rounding error of the encoding: |x| 2^-(f+1) per factor
    err = d * (bound * 2.0 ** -16 + 2.0 ** -34)
    assert abs(got - float(np.dot(xf, yf))) <= err
    q = beaver_square(share(ex, t, n, rng=rng), dealer.square_triple(d), t)
    gotq = codec.decode_scalar(int(_open_t(q.reshape(-1, 1), t)[0]), scale_power=2)
    assert abs(gotq - float(np.dot(xf, xf))) <= err


def test_triples_are_single_use() -> None:
    t, n, d = 2, 3, 8
    dealer = TrustedDealer(t, n, rng=_rng(1))
    xs = share(_rng(2).random(d), t, n)
    triple = dealer.beaver_triple(d)
    beaver_dot(xs, xs, triple, t)
    assert triple.consumed
    with pytest.raises(TripleReuseError, match=rf"triple {triple.id} "):
        beaver_dot(xs, xs, triple, t)
    square = dealer.square_triple(d)
    assert square.id != triple.id
    beaver_square(xs, square, t)
    with pytest.raises(TripleReuseError) as info:
        beaver_square(xs, square, t)
    assert info.value.triple_id == square.id
    # a copy of the triple object is caught too (the ledger is shared)
    import copy

    fresh = dealer.beaver_triple(d)
    beaver_dot(xs, xs, copy.copy(fresh), t)
    with pytest.raises(TripleReuseError):
        beaver_dot(xs, xs, fresh, t)


def test_triple_shape_mismatch_is_typed_and_does_not_consume() -> None:
    dealer = TrustedDealer(2, 3, rng=_rng(3))
    triple = dealer.beaver_triple(5)
    xs = share(np.zeros(6, np.uint64), 2, 3)
    with pytest.raises(TripleShapeError):
        beaver_dot(xs, xs, triple, 2)
    assert not triple.consumed
    with pytest.raises(TripleShapeError):
        beaver_dot(share(np.zeros(5, np.uint64), 3, 3), share(np.zeros(5, np.uint64), 3, 3), triple, 3)


def test_beaver_openings_are_masked() -> None:
    """eps = x - a is uniform whatever x is: the same x gives fresh eps every time, and
    eps for x = 0 is just -a (so it is as uniform as the dealer's a)."""
    t, n, d = 2, 3, 4000
    dealer = TrustedDealer(t, n, rng=_rng(5))
    x = np.zeros(d, np.uint64)
    xs = share(x, t, n)
    tr = BeaverTranscript()
    beaver_square(xs, dealer.square_triple(d), t, transcript=tr)
    assert tr.eps is not None
    # top bit of a uniform element of GF(2^61-1) is 1 with probability ~1/2
    frac = float(np.mean(tr.eps >= np.uint64(1 << 60)))
    assert 0.45 < frac < 0.55


def test_dealer_triples_are_correct_over_small_field() -> None:
    field = PrimeField(31)
    dealer = TrustedDealer(2, 4, rng=_rng(8, field), field=field)
    tr = dealer.beaver_triple(6)
    gf = galois.GF(31)
    a = reconstruct(tr.a, [1, 2, 3, 4], field=field)
    b = reconstruct(tr.b, [1, 2, 3, 4], field=field)
    c = reconstruct(tr.c.reshape(-1, 1), [1, 2, 3, 4], field=field)
    assert int(c[0]) == int(np.sum(gf(a) * gf(b)))
    assert not tr.a.flags.writeable and not tr.c.flags.writeable


@pytest.mark.parametrize(("t", "n"), [(1, 1), (2, 3), (3, 4)])
def test_per_party_beaver_squares_from_dealt_triples(t: int, n: int) -> None:
    """The protocol's flow, party by party: the dealer's triples, each party masks its own rows,
    ``eps`` is opened, each party finishes alone; the squared norms are exact in the field."""
    k, d = 3, 17
    rng = _rng(11)
    secrets = [rng.random(d) for _ in range(k)]
    shared = [share(x, t, n, rng=rng) for x in secrets]  # shared[r][j - 1]: party j's share of x_r
    dealt = deal_square_triples(k, d, t, n, rng=rng)
    assert len(dealt) == n and all(p.a.shape == (k, d) and p.c.shape == (k,) for p in dealt)
    for r in range(k):  # the dealt vectors are consistent sharings and c_r = <a_r, a_r>
        a = _open(np.stack([p.a[r] for p in dealt]), t)
        c = _open(np.array([[p.c[r]] for p in dealt], dtype=np.uint64), t)
        assert int(c[0]) == int(np.sum(GF(a) * GF(a)))
    mine = [np.stack([x[j] for x in shared]) for j in range(n)]  # party j + 1's (k, d) rows
    masked = [sub(mine[j], dealt[j].a) for j in range(n)]
    eps = np.stack([_open_t(np.stack([masked[j][r] for j in range(n)]), t) for r in range(k)])
    z = np.stack([square_from_opened(eps, dealt[j].a, dealt[j].c) for j in range(n)])  # (n, k)
    for r, x in enumerate(secrets):
        assert int(_open(z[:, r : r + 1], t)[0]) == int(np.sum(GF(x) * GF(x)))


def test_dealing_validates_its_arguments() -> None:
    assert [p.a.shape for p in deal_square_triples(0, 4, 2, 3)] == [(0, 4)] * 3
    for count, d in [(-1, 4), (1, 0), (True, 4)]:
        with pytest.raises(MPCParameterError):
            deal_square_triples(count, d, 2, 3)
    with pytest.raises(MPCParameterError, match="rng"):
        deal_square_triples(1, 4, 2, 3, rng=_rng(0, PrimeField((1 << 31) - 1)))
