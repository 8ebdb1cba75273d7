"""Robust reconstruction: corrects up to e wrong shares per coordinate and names the senders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.errors import InsufficientSharesError, ReconstructionError
from ppbfl.field import GF61, FieldRNG, PrimeField
from ppbfl.sharing import robust_reconstruct, share

P = GF61.p


def _secret(d: int, seed: int = 0, field: PrimeField = GF61) -> np.ndarray:
    return FieldRNG(seed.to_bytes(32, "little"), field=field).random(d)


def _brute_force_decode(xs: list[int], ys: list[int], t: int, e: int, p: int) -> int | None:
    """Independent oracle: the value at 0 of the unique degree < t polynomial agreeing with
    at least k - e of the points, found by trying every t-subset (Python ints)."""
    k = len(xs)
    for subset in itertools.combinations(range(k), t):
        def value_at(x: int, subset: tuple[int, ...] = subset) -> int:
            total = 0
            for i in subset:
                num, den = 1, 1
                for m in subset:
                    if m != i:
                        num = num * (x - xs[m]) % p
                        den = den * (xs[i] - xs[m]) % p
                total = (total + ys[i] * num * pow(den, -1, p)) % p
            return total
        agree = sum(value_at(xs[i]) == ys[i] for i in range(k))
        if agree >= k - e:
            return value_at(0)
    return None


def test_consistent_shares_name_nobody():
    secret = _secret(1000)
    result = robust_reconstruct(share(secret, 3, 5), [1, 2, 3, 4, 5], 3)
    np.testing.assert_array_equal(result.secret, secret)
    assert result.wrong_points == () and result.wrong_coordinates == 0


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 5), k_extra=st.integers(2, 6), d=st.integers(1, 200), data=st.data())
def test_up_to_e_wrong_parties_are_corrected_and_named(t, k_extra, d, data):
    n = t + k_extra
    e = (n - t) // 2
    secret = _secret(d, data.draw(st.integers(0, 10_000)))
    shares = share(secret, t, n)
    liars = data.draw(st.lists(st.integers(1, n), min_size=0, max_size=e, unique=True))
    noise = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    for liar in liars:
        coords = noise.choice(d, size=noise.integers(1, d + 1), replace=False)
        offsets = noise.integers(1, P, size=coords.size, dtype=np.uint64)
        shares[liar - 1, coords] = (shares[liar - 1, coords] + offsets) % np.uint64(P)
    result = robust_reconstruct(shares, list(range(1, n + 1)), t)
    np.testing.assert_array_equal(result.secret, secret)
    assert result.wrong_points == tuple(sorted(liars))


def test_a_liar_on_every_coordinate_takes_the_fast_path_and_is_named():
    secret = _secret(300_000, 5)
    shares = share(secret, 6, 10)
    shares[3] ^= np.uint64(1 << 40)
    shares[7, ::3] ^= np.uint64(1 << 20)
    result = robust_reconstruct(shares, list(range(1, 11)), 6)
    np.testing.assert_array_equal(result.secret, secret)
    assert result.wrong_points == (4, 8)
    assert result.wrong_coordinates == 300_000


def test_different_liars_in_different_coordinates_are_all_named():
    """Each coordinate has at most e = 1 wrong share, but four parties lie somewhere."""
    secret = _secret(400, 2)
    shares = share(secret, 3, 5)
    for liar in (1, 2, 4, 5):
        shares[liar - 1, liar::5] = (shares[liar - 1, liar::5] + np.uint64(12345)) % np.uint64(P)
    result = robust_reconstruct(shares, [1, 2, 3, 4, 5], 3)
    np.testing.assert_array_equal(result.secret, secret)
    assert result.wrong_points == (1, 2, 4, 5)


def test_matches_brute_force_decoder_on_a_small_field():
    field = PrimeField(31)
    rng = np.random.default_rng(0)
    for trial in range(200):
        t, k = int(rng.integers(1, 4)), int(rng.integers(3, 8))
        if k < t + 2:
            continue
        e = (k - t) // 2
        secret = _secret(1, trial, field)
        shares = share(secret, t, k, field=field)
        liars = rng.choice(k, size=rng.integers(0, e + 1), replace=False)
        for i in liars:
            shares[i, 0] = (shares[i, 0] + np.uint64(rng.integers(1, 31))) % np.uint64(31)
        expected = _brute_force_decode(list(range(1, k + 1)), [int(v) for v in shares[:, 0]], t, e, 31)
        result = robust_reconstruct(shares, list(range(1, k + 1)), t, field=field)
        assert expected == int(secret[0]) == int(result.secret[0])
        assert result.wrong_points == tuple(sorted(int(i) + 1 for i in liars))


def test_too_many_wrong_shares_raise_reconstruction_error():
    secret = _secret(50, 3)
    shares = share(secret, 3, 5)
    noise = np.random.default_rng(1)
    for liar in (0, 3):  # e = 1, two random wrong shares in every coordinate
        shares[liar] = (shares[liar] + noise.integers(1, P, size=50, dtype=np.uint64)) % np.uint64(P)
    with pytest.raises(ReconstructionError, match="more than e = 1 wrong shares") as info:
        robust_reconstruct(shares, [1, 2, 3, 4, 5], 3)
    assert info.value.coordinates[0] == 0


def test_detected_but_not_correctable_raises():
    """k = t + 1: one wrong share is detected (e = 0) and cannot be corrected."""
    secret = _secret(20, 4)
    shares = share(secret, 3, 4)
    shares[2, 7] = (shares[2, 7] + np.uint64(1)) % np.uint64(P)
    with pytest.raises(ReconstructionError, match=r"first: \(7,\)"):
        robust_reconstruct(shares, [1, 2, 3, 4], 3)


def test_fewer_than_t_shares_raise():
    shares = share(_secret(5), 3, 5)
    with pytest.raises(InsufficientSharesError, match="robust reconstruction needs at least 3 shares, got 2"):
        robust_reconstruct(shares[:2], [1, 2], 3)


def test_subset_of_parties_after_dropouts():
    secret = _secret(1000, 6)
    shares = share(secret, 3, 7)
    online = [2, 3, 5, 6, 7]  # two edge nodes dropped, k - t = 2: one liar correctable
    rows = shares[[i - 1 for i in online]].copy()
    rows[1] ^= np.uint64(3)
    result = robust_reconstruct(rows, online, 3)
    np.testing.assert_array_equal(result.secret, secret)
    assert result.wrong_points == (3,)
