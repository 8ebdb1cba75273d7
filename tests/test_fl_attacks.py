"""Each poisoning attack changes data or updates exactly the way it says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ppbfl.fl.attacks import Adaptive, Backdoor, GaussianNoise, LabelFlip, Scaling, SignFlip, cosine, make_attack
from ppbfl.fl.errors import ConfigError, UnknownComponentError

finite = st.floats(-100, 100, allow_nan=False, width=32)
vectors = arrays(np.float32, st.integers(2, 40), elements=finite)
RNG = np.random.default_rng(0)


@given(vectors)
def test_sign_flip_negates(delta):
    np.testing.assert_array_equal(SignFlip().poison_update(delta, None, RNG), -delta)


@given(vectors, st.floats(-20, 20, allow_nan=False))
def test_scaling_multiplies(delta, factor):
    out = Scaling(factor=factor).poison_update(delta, None, RNG)
    np.testing.assert_allclose(out, (factor * delta).astype(np.float32), rtol=1e-6, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.01, 10.0), st.integers(0, 2**32 - 1))
def test_noise_has_the_requested_std(std, seed):
    delta = np.linspace(-1, 1, 20_000, dtype=np.float32)
    noise = GaussianNoise(std=std).poison_update(delta, None, np.random.default_rng(seed)).astype(np.float64) - delta
    # sample std of 20k normals: relative standard error ~ 1/sqrt(2n) = 0.5 %; 4 % is > 8 sigma
    assert abs(noise.std() / std - 1) < 0.04
    assert abs(noise.mean()) < 5 * std / np.sqrt(len(noise))


@given(st.integers(2, 10), arrays(np.int64, st.integers(1, 50), elements=st.integers(0, 9)))
def test_label_flip_maps_labels(n_classes, y):
    y = y % n_classes
    x = np.zeros((len(y), 3), dtype=np.float32)
    x2, y2 = LabelFlip().poison_data(x, y, n_classes, RNG)
    np.testing.assert_array_equal(y2, n_classes - 1 - y)
    assert x2 is x
    if n_classes == 2:
        np.testing.assert_array_equal(y2, 1 - y)


@given(st.integers(0, 2**32 - 1), st.floats(0.1, 1.0), st.integers(0, 2))
def test_backdoor_stamps_trigger_and_target(seed, fraction, target):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=60)
    attack = Backdoor(target=target, features=(1, 4), value=5.0, fraction=fraction)
    x2, y2 = attack.poison_data(x, y, 3, np.random.default_rng(seed + 1))
    stamped = np.all(x2[:, [1, 4]] == 5.0, axis=1)
    np.testing.assert_array_equal(y2[stamped], target)          # every stamped row has the target label
    np.testing.assert_array_equal(x2[~stamped], x[~stamped])     # untouched rows unchanged
    np.testing.assert_array_equal(y2[~stamped], y[~stamped])
    changed_cols = np.setdiff1d(np.arange(6), [1, 4])
    np.testing.assert_array_equal(x2[:, changed_cols], x[:, changed_cols])
    # the share stamped matches the requested fraction (60 Bernoulli draws: within 5 sigma)
    assert abs(stamped.mean() - fraction) <= 5 * np.sqrt(fraction * (1 - fraction) / 60) + 1e-9
    assert np.all(attack.stamp(x)[:, [1, 4]] == 5.0)


nonzero = arrays(np.float64, 16, elements=st.floats(-10, 10, allow_nan=False)).filter(lambda v: np.linalg.norm(v) > 1e-3)


@given(nonzero, nonzero, st.floats(-0.5, 0.9), st.floats(0.001, 0.05))
def test_adaptive_stays_just_above_the_cosine_threshold(delta, reference, threshold, margin):
    attack = Adaptive(threshold=threshold, margin=margin)
    out = attack.poison_update(delta.astype(np.float32), reference.astype(np.float32), np.random.default_rng(0))
    c = cosine(out, reference.astype(np.float32))
    assert c >= threshold
    assert c == pytest.approx(threshold + margin, abs=2e-4)
    assert np.linalg.norm(out) == pytest.approx(np.linalg.norm(delta.astype(np.float32)), rel=1e-4)


def test_adaptive_points_against_the_benign_direction_more_than_the_honest_update():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=50)
    delta = reference + 0.1 * rng.normal(size=50)
    out = Adaptive(threshold=0.0, margin=0.01).poison_update(delta.astype(np.float32), reference, rng)
    assert cosine(out, reference) < 0.05 < cosine(delta, reference)


def test_make_attack_names_bad_parameters():
    with pytest.raises(ConfigError) as err:
        make_attack("scaling", {"lambda": 3})
    assert err.value.key == "attack_params.scaling.lambda"
    with pytest.raises(UnknownComponentError, match="'nope'"):
        make_attack("nope")
    assert make_attack("backdoor", {"features": [3, 5]}).features == (3, 5)


def test_adaptive_attack_on_a_zero_update_and_zero_reference_stays_zero_not_nan():
    zero = np.zeros(5, dtype=np.float32)
    out = make_attack("adaptive").poison_update(zero, zero, np.random.default_rng(0))
    assert np.array_equal(out, zero)
