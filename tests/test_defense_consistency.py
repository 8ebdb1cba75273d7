"""Stage 4: the share-consistency check (random linear combination masked by rho)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense import (
    challenge_coefficients,
    check_consistency,
    published_values,
)
from ppbfl.field import GF61, FieldRNG, PrimeField
from ppbfl.sharing import reconstruct, share

P = GF61.p


def _rng(seed: int, field: PrimeField = GF61) -> FieldRNG:
    return FieldRNG(seed.to_bytes(32, "little"), field=field)


def _seed(i: int) -> bytes:
    return (1000 + i).to_bytes(32, "little")


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 5), extra=st.integers(0, 4), d=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_consistent_shares_are_never_flagged(t: int, extra: int, d: int, seed: int) -> None:
    n = t + extra
    rng = _rng(seed)
    g = rng.random(d)
    shares = share(g, t, n, rng=rng)
    mask = share(rng.random(1), t, n, rng=rng)[:, 0].copy()
    lam = challenge_coefficients(_seed(seed % 97), d)
    result = check_consistency(published_values(shares, mask, lam), t)
    assert result.consistent and result.suspects == ()
    # the published values are a sharing of <lambda, g> + rho
    rho = int(reconstruct(mask.reshape(-1, 1), list(range(1, n + 1)), t=t)[0])
    s0 = int(reconstruct(result.published.reshape(-1, 1), list(range(1, n + 1)), t=t)[0])
    assert s0 == (sum(int(a) * int(b) for a, b in zip(lam, g)) + rho) % P


@pytest.mark.parametrize("t,n", [(1, 2), (2, 3), (2, 5), (3, 7), (4, 5)])
@pytest.mark.parametrize("trial", range(4))
def test_planted_inconsistency_is_caught(t: int, n: int, trial: int) -> None:
    d = 257
    rng = _rng(100 * t + 10 * n + trial)
    shares = share(rng.random(d), t, n, rng=rng)
    mask = share(rng.random(1), t, n, rng=rng)[:, 0].copy()
    gen = np.random.default_rng(trial)  # which share to alter: test data only
    party, coord = int(gen.integers(n)), int(gen.integers(d))
    shares[party, coord] = (shares[party, coord] + np.uint64(1 + trial)) % np.uint64(P)
    result = check_consistency(published_values(shares, mask, challenge_coefficients(_seed(trial), d)), t)
    assert not result.consistent
    if n - t >= 2:  # enough redundancy to locate the single disagreeing point
        assert result.suspects == (party + 1,)


def test_inconsistent_mask_is_caught() -> None:
    t, n, d = 2, 4, 30
    rng = _rng(9)
    shares = share(rng.random(d), t, n, rng=rng)
    mask = rng.random(n)  # not a degree-1 sharing (with overwhelming probability)
    assert not check_consistency(published_values(shares, mask, challenge_coefficients(_seed(1), d)), t).consistent


def test_round_rejects_an_inconsistent_device_and_opens_nothing_of_it() -> None:
    from ppbfl.fl.federation import Federation
    from tests.protocol_helpers import InconsistentDevice

    t, n, d = 2, 5, 60
    gen = np.random.default_rng(3)
    ref = gen.normal(0, 0.1, d)
    updates = {i: ref + gen.normal(0, 0.05, d) for i in range(4)}
    with Federation.in_process(t, n, d, 4, factories={2: InconsistentDevice}) as federation:
        result = federation.run_round(1, updates, ref)
    assert result.decision_of(2).reason == "inconsistent shares" and not result.decision_of(2).accepted
    # every dense row is off: no codeword within e = 1 of its values, so no node is suspected (a single
    # bad row would have been a dispute against its node: tests/test_adversarial_attribution.py)
    assert result.decision.suspects[result.devices.index(2)] == ()
    assert [result.decision_of(i).reason for i in (0, 1, 3)] == ["accepted"] * 3
    # the inconsistent device's scalars were not opened at all
    k = result.devices.index(2)
    assert result.decision.norm2[k] == 0 and result.decision.dot_ref[k] == 0


def test_published_values_do_not_reveal_the_update() -> None:
    """The value at 0 of the published sharing is <lambda, g> + rho with a fresh uniform rho:
    for g = 0 and for g = a fixed vector the opened value has the same (uniform) distribution.
    Tested over GF(11) with a chi-square contingency test."""
    from scipy.stats import chi2_contingency

    field = PrimeField(11)
    t, n, d, runs = 2, 3, 3, 1500
    lam = challenge_coefficients(_seed(0), d, field=field)
    counts = np.zeros((2, 11), dtype=np.int64)
    rng = _rng(77, field)
    for which, g in enumerate([np.zeros(d, np.uint64), np.array([3, 7, 1], np.uint64)]):
        for _ in range(runs):
            shares = share(g, t, n, field=field, rng=rng)
            mask = share(rng.random(1), t, n, field=field, rng=rng)[:, 0].copy()
            s = published_values(shares, mask, lam, field=field)
            counts[which, int(reconstruct(s.reshape(-1, 1), [1, 2, 3], t=t, field=field)[0])] += 1
    assert chi2_contingency(counts)[1] > 1e-4
