"""The secure defence behind the aggregation interface matches plaintext oracles within fixed-point error.

Error bound used throughout (first order): each aggregate entry is ``sum_i Q(w_i c_i) Q(g_ij) / W``
where ``Q`` rounds to ``h = 2^-(f+1)``, so ``|out_j - oracle_j| <= h (1 + sum_i |g_ij| / W)``
(rounded entries under convex weights, plus one rounded weight per accepted update);
cosines and clips computed on rounded values add second-order terms. Tests allow twice the
first-order bound (measured: at most 1.24x on every 40 %-attack run of the example grid).
"""

from __future__ import annotations

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61
from ppbfl.fl.aggregators import (
    AGGREGATORS,
    AggregationContext,
    FLTrust,
    display_name,
    make_aggregator,
)
from ppbfl.fl.errors import AggregationError, ConfigError, UpdateRangeError
from ppbfl.fl.secure_aggregator import (
    SecureCosineAggregator,
    choose_frac_bits,
    fits,
)

D = 300


def clip_oracle(u: np.ndarray, r: np.ndarray, tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """DESIGN §5 in floats: ``w = cos`` if ``cos > tau`` else 0, ``c = min(1, |r| / |g|)``, ``sum w c g / sum w``."""
    norms = np.linalg.norm(u, axis=1)
    cos = u @ r / (norms * np.linalg.norm(r))
    w = np.where(cos > max(tau, 0.0), cos, 0.0)
    c = np.minimum(1.0, np.linalg.norm(r) / norms)
    return ((w * c) @ u / w.sum() if w.sum() > 0 else np.zeros(u.shape[1])), w


def bound(u: np.ndarray, w: np.ndarray, frac_bits: int) -> np.ndarray:
    """Twice the first-order fixed-point error bound of the module docstring, per entry."""
    h = 2.0 ** -(frac_bits + 1)
    return 2 * h * (1 + np.abs(u[w > 0]).sum(axis=0) / w.sum())


def round_data(seed: int, malicious: int, honest_scale: float = 1.5):
    """A reference ~ N(0, 0.01^2) and m = 10 updates near it, ``honest_scale`` times as long on
    average; the first ``malicious`` are sign-flipped and boosted 4x."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, D)
    u = honest_scale * (r + rng.normal(0, 0.005, (10, D)))
    u[:malicious] *= -4.0
    return u, r


@pytest.mark.parametrize("seed, malicious", [(0, 0), (1, 2), (2, 4)])
def test_equals_plaintext_fltrust_when_updates_are_longer_than_the_reference(seed, malicious):
    u, r = round_data(seed, malicious)
    assert (np.linalg.norm(u, axis=1) > np.linalg.norm(r)).all()  # here FLTrust's rescale is a clip
    ctx = AggregationContext(reference=r, seed=seed, round=3)
    out, info = SecureCosineAggregator().aggregate(u, ctx)
    expected, fl_info = FLTrust().aggregate(u, ctx)
    assert out.dtype == np.float32 and out.shape == (D,)
    assert (np.abs(out - expected) <= bound(u, np.array(fl_info["trust"]), info["frac_bits"])).all()
    assert np.linalg.norm(out - expected) < 1e-3 * np.linalg.norm(expected)
    # sign-flipped updates get weight 0, every honest one is accepted with FLTrust's trust score
    assert info["accepted"] == list(range(malicious, 10))
    assert info["weights"][:malicious] == [0.0] * malicious
    assert set(info["reasons"][:malicious]) <= {"negative cosine"}
    np.testing.assert_allclose(info["weights"], fl_info["trust"], rtol=1e-4)


def test_short_updates_are_clipped_not_rescaled_unlike_fltrust():
    u, r = round_data(3, 2, honest_scale=0.5)  # honest updates about half as long as the reference
    out, info = SecureCosineAggregator().aggregate(u, AggregationContext(reference=r, seed=0))
    oracle, w = clip_oracle(u, r)
    assert (np.abs(out - oracle) <= bound(u, w, info["frac_bits"])).all()
    fltrust, _ = FLTrust().aggregate(u, AggregationContext(reference=r))
    # FLTrust scales the honest updates up to |r|: about twice as long as the clipped aggregate
    assert np.linalg.norm(fltrust) > 1.5 * np.linalg.norm(out)


def test_tau_rejects_low_cosines_and_all_rejected_gives_zeros():
    u, r = round_data(4, 0)
    u[0] = r + 3 * np.linalg.norm(r) * np.eye(D)[0]  # cos ~ 0.3
    out, info = SecureCosineAggregator(tau=0.5).aggregate(u, AggregationContext(reference=r, seed=0))
    oracle, w = clip_oracle(u, r, tau=0.5)
    assert info["reasons"][0] == "cosine <= tau" and 0 not in info["accepted"] and w[0] == 0
    assert (np.abs(out - oracle) <= bound(u, w, info["frac_bits"])).all()
    out, info = SecureCosineAggregator().aggregate(-u, AggregationContext(reference=r, seed=0))
    assert info["accepted"] == [] and not out.any()


def test_beaver_mode_gives_the_same_aggregate():
    u, r = round_data(5, 3)
    ctx = AggregationContext(reference=r, seed=1, round=0)
    hm, _ = SecureCosineAggregator().aggregate(u, ctx)
    beaver, info = SecureCosineAggregator(t=2, n=3, dot_mode="beaver").aggregate(u, ctx)
    assert info["accepted"] == list(range(3, 10))
    np.testing.assert_array_equal(hm, beaver)  # exact field results: the MPC mode cannot matter


def test_output_is_exact_hence_independent_of_the_share_randomness():
    u, r = round_data(6, 2)
    agg = SecureCosineAggregator()
    seeded = [agg.aggregate(u, AggregationContext(reference=r, seed=s, round=k))[0] for s, k in [(0, 0), (0, 0), (9, 4)]]
    fresh = agg.aggregate(u, AggregationContext(reference=r))[0]  # OS-seeded shares and challenge
    for other in (*seeded[1:], fresh):
        assert other.tobytes() == seeded[0].tobytes()


def test_frac_bits_is_the_largest_safe_choice():
    for d, m, max_abs in [(1058, 10, 64.0), (10**5, 100, 64.0), (10, 3, 1.0), (10**6, 10, 8.0)]:
        f = choose_frac_bits(d, m, max_abs)
        assert fits(f, d, m, max_abs) and not fits(f + 1, d, m, max_abs)
        # independent check with the codec: inner products of d entries up to max_abs do not wrap
        assert FixedPointCodec(GF61, f).max_abs_for_dot(d) >= max_abs
    assert choose_frac_bits(1058, 10, 64.0) == 18
    with pytest.raises(ConfigError) as err:
        choose_frac_bits(10**6, 10, 1e6)
    assert err.value.key == "defence_params.ppbfl_secure.max_abs"


def test_a_device_with_an_out_of_range_update_is_rejected_out_of_range_by_the_validity_check():
    u, r = round_data(7, 0)
    u[4, 17] = 1e5  # e.g. a scaling attack far beyond the public bound: shared modulo p, as an attacker can
    out, info = SecureCosineAggregator(max_abs=64.0).aggregate(u, AggregationContext(reference=r, seed=0))
    assert 4 not in info["accepted"] and info["weights"][4] == 0.0
    assert info["reasons"][4] == "out of range: the validity proof fails"
    assert 0 < info["validity_l2_bound"] < 1e5
    kept = np.delete(u, 4, axis=0)
    oracle, w = clip_oracle(kept, r)
    assert (np.abs(out - oracle) <= bound(kept, w, info["frac_bits"])).all()
    u[4, 17] = 0.0
    r[5] = np.nan
    with pytest.raises(UpdateRangeError) as err:
        SecureCosineAggregator().aggregate(u, AggregationContext(reference=r, seed=0))
    assert (err.value.device, err.value.index) == (-1, 5)


def test_explicit_frac_bits_that_could_wrap_name_the_key():
    u, r = round_data(8, 0)
    with pytest.raises(ConfigError) as err:
        SecureCosineAggregator(frac_bits=30).aggregate(u, AggregationContext(reference=r))
    assert err.value.key == "defence_params.ppbfl_secure.frac_bits" and "at most" in str(err.value)
    out, info = SecureCosineAggregator(frac_bits=12).aggregate(u, AggregationContext(reference=r))
    assert info["frac_bits"] == 12
    oracle, w = clip_oracle(u, r)
    assert (np.abs(out - oracle) <= bound(u, w, 12)).all()


@pytest.mark.parametrize(
    "params, key",
    [({"t": 0}, "t"), ({"t": 4, "n": 3}, "t"), ({"t": 3, "n": 4}, "n"), ({"dot_mode": "gmw"}, "dot_mode"),
     ({"tau": 1.0}, "tau"), ({"max_abs": 0.0}, "max_abs"), ({"max_abs": float("inf")}, "max_abs"),
     ({"frac_bits": 4}, "frac_bits"), ({"frac_bits": 1.5}, "frac_bits"), ({"modulus": 7}, "modulus")],
)
def test_bad_parameters_name_the_config_key(params, key):
    with pytest.raises(ConfigError) as err:
        make_aggregator("ppbfl_secure", params)
    assert err.value.key == f"defence_params.ppbfl_secure.{key}"


def test_registered_with_a_display_name_and_needing_the_reference():
    assert AGGREGATORS["ppbfl_secure"] is SecureCosineAggregator
    assert display_name("ppbfl_secure") == "ppbfl (secure)" and display_name("fltrust") == "fltrust"
    assert SecureCosineAggregator.needs_reference
    u, _ = round_data(9, 0)
    with pytest.raises(AggregationError, match="reference"):
        SecureCosineAggregator().aggregate(u, AggregationContext())
    with pytest.raises(AggregationError, match="shape"):
        SecureCosineAggregator().aggregate(u, AggregationContext(reference=np.ones(D + 1)))
