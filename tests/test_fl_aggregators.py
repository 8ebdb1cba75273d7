"""Each aggregation baseline matches a straightforward reference on small inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import trim_mean

from ppbfl.fl.aggregators import (
    AggregationContext,
    FedAvg,
    FLTrust,
    Krum,
    Median,
    MultiKrum,
    TrimmedMean,
    make_aggregator,
)
from ppbfl.fl.errors import AggregationError, ConfigError, UnknownComponentError

matrices = arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 12)), elements=st.floats(-1e3, 1e3, width=32))
CTX = AggregationContext()


@given(matrices)
def test_median_is_numpy_median(u):
    out, _ = Median().aggregate(u, CTX)
    np.testing.assert_allclose(out, np.median(u.astype(np.float64), axis=0).astype(np.float32), rtol=1e-6)


@given(matrices, st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.45]))
def test_trimmed_mean_is_scipy_trim_mean(u, beta):
    out, _ = TrimmedMean(beta=beta).aggregate(u, CTX)
    np.testing.assert_allclose(out, trim_mean(u.astype(np.float64), beta, axis=0).astype(np.float32), rtol=1e-5, atol=1e-3)


@given(matrices, st.data())
def test_fedavg_is_the_weighted_mean(u, data):
    w = np.array(data.draw(st.lists(st.integers(1, 100), min_size=len(u), max_size=len(u))), dtype=np.float64)
    out, _ = FedAvg().aggregate(u, AggregationContext(weights=w))
    expected = sum(w[i] * u[i].astype(np.float64) for i in range(len(u))) / w.sum()
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-5, atol=1e-3)


def test_fedavg_without_weights_is_the_plain_mean_and_rejects_bad_weights():
    u = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(FedAvg().aggregate(u, CTX)[0], u.mean(axis=0))
    with pytest.raises(AggregationError):
        FedAvg().aggregate(u, AggregationContext(weights=np.array([1.0, -1.0, 1.0])))


@pytest.mark.parametrize("seed", range(5))
def test_krum_picks_the_planted_honest_cluster(seed):
    rng = np.random.default_rng(seed)
    honest = rng.normal(1.0, 0.1, size=(7, 20))
    byzantine = rng.normal(-5.0, 3.0, size=(3, 20))
    u = np.vstack([byzantine, honest])  # honest rows are 3..9
    out, info = Krum().aggregate(u, AggregationContext(n_malicious=3))
    assert info["selected"][0] >= 3
    np.testing.assert_allclose(out, u[info["selected"][0]].astype(np.float32))
    out, info = MultiKrum().aggregate(u, AggregationContext(n_malicious=3))
    assert info["selected"] == list(range(3, 10))
    np.testing.assert_allclose(out, honest.mean(axis=0).astype(np.float32), rtol=1e-5)


def test_krum_score_is_the_sum_of_nearest_squared_distances():
    u = np.array([[0.0], [1.0], [3.0], [10.0]])
    # m = 4, f = 0: each scores its m - f - 2 = 2 nearest neighbours
    np.testing.assert_allclose(Krum().scores(u, 0), [1 + 9, 1 + 4, 4 + 9, 49 + 81])
    assert Krum().aggregate(u, CTX)[1]["selected"] == [1]


def test_fltrust_equals_a_hand_computation():
    g0 = np.array([3.0, 4.0])                       # |g0| = 5
    u = np.array([[6.0, 8.0],                       # cos 1, rescaled to (3, 4)
                  [0.0, 1.0],                       # cos 0.8, rescaled to (0, 5)
                  [-3.0, -4.0]])                    # cos -1 -> trust 0
    out, info = FLTrust().aggregate(u, AggregationContext(reference=g0))
    expected = (1.0 * np.array([3.0, 4.0]) + 0.8 * np.array([0.0, 5.0])) / 1.8
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(info["trust"], [1.0, 0.8, 0.0])


def test_fltrust_all_distrusted_gives_zero_and_needs_a_reference():
    u = -np.ones((3, 4))
    out, _ = FLTrust().aggregate(u, AggregationContext(reference=np.ones(4)))
    np.testing.assert_array_equal(out, np.zeros(4, dtype=np.float32))
    with pytest.raises(AggregationError, match="reference"):
        FLTrust().aggregate(u, CTX)


def test_bad_shapes_and_names():
    with pytest.raises(AggregationError, match="shape"):
        Median().aggregate(np.zeros(5), CTX)
    with pytest.raises(UnknownComponentError, match="defence 'avg'"):
        make_aggregator("avg")
    with pytest.raises(ConfigError) as err:
        make_aggregator("trimmed_mean", {"beta": 0.7})
    assert err.value.key == "defence_params.trimmed_mean.beta"
    with pytest.raises(ConfigError) as err:
        make_aggregator("krum", {"k": 1})
    assert err.value.key == "defence_params.krum.k"
