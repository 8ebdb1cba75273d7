"""FLAME on local models (``flame_models``) against a float oracle written from the paper, and
``fltrust_clipped`` against FLTrust without rescaling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN
from sklearn.metrics.pairwise import cosine_distances

from ppbfl.fl.aggregators import GLOBAL_MODEL, AggregationContext, FLTrust, make_aggregator
from ppbfl.fl.detection import excluded_devices
from ppbfl.fl.errors import AggregationError, ConfigError

M, D = 10, 30


def backdoored(seed: int, bad: int) -> tuple[np.ndarray, np.ndarray]:
    """A global model and ``M`` updates: honest ones small and in scattered directions (converged,
    non-IID), the first ``bad`` longer and pulled towards one trigger direction."""
    rng = np.random.default_rng(seed)
    g = rng.normal(0, 1.0, D)
    u = rng.normal(0, 0.01, (M, D))
    trigger = np.zeros(D)
    trigger[:4] = 0.2
    u[:bad] += trigger + rng.normal(0, 0.01, (bad, D))
    return g, u


def oracle(g: np.ndarray, u: np.ndarray) -> tuple[set[int], np.ndarray]:
    """The paper's Algorithm 1 in floats: HDBSCAN on the cosine distances of the models ``G + g_i``,
    majority cluster, updates clipped to the kept updates' median norm, averaged."""
    labels = HDBSCAN(min_cluster_size=len(u) // 2 + 1, min_samples=1, metric="precomputed", allow_single_cluster=True,
                     copy=True).fit(cosine_distances(g + u).astype(np.float64)).labels_
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    kept = np.flatnonzero(labels == values[np.argmax(counts)])
    norms = np.linalg.norm(u, axis=1)
    s = np.median(norms[kept])
    return {int(i) for i in kept}, (u[kept] * np.minimum(1.0, s / norms[kept])[:, None]).mean(axis=0)


@pytest.mark.parametrize("seed, bad", [(0, 0), (1, 2), (2, 4)])
def test_flame_on_models_equals_the_paper_oracle_and_drops_the_backdoored_devices(seed, bad):
    g, u = backdoored(seed, bad)
    kept, expected = oracle(g, u)
    out, info = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, AggregationContext(extra={GLOBAL_MODEL: g}))
    assert set(info["accepted"]) == kept and kept.isdisjoint(range(bad))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-8)
    assert excluded_devices("flame_models", info, M) == frozenset(range(M)) - kept


def test_flame_on_models_with_a_zero_model_is_flame_on_updates():
    _, u = backdoored(3, 3)
    context = AggregationContext(extra={GLOBAL_MODEL: np.zeros(D)})
    a, info_a = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context)
    b, info_b = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(u, context)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert info_a["accepted"] == info_b["accepted"]


def test_flame_on_models_needs_the_global_model_and_checks_its_shape():
    _, u = backdoored(0, 2)
    rule = make_aggregator("flame_models")
    with pytest.raises(AggregationError, match="global_model"):
        rule.aggregate(u, AggregationContext())
    with pytest.raises(AggregationError, match="shape"):
        rule.aggregate(u, AggregationContext(extra={GLOBAL_MODEL: np.zeros(D + 1)}))
    with pytest.raises(ConfigError, match=r"defence_params\.flame_models\.noise_lambda"):
        make_aggregator("flame_models", {"noise_lambda": -1.0})


def test_fltrust_clipped_is_fltrust_without_rescaling():
    rng = np.random.default_rng(5)
    u = rng.normal(0, 1, (M, D)) * rng.uniform(0.1, 3, (M, 1))
    context = AggregationContext(reference=rng.normal(0, 1, D))
    out, info = make_aggregator("fltrust_clipped").aggregate(u, context)
    ref, ref_info = FLTrust(rescale=False).aggregate(u, context)
    np.testing.assert_array_equal(out, ref)
    assert info == ref_info and excluded_devices("fltrust_clipped", info, M) == excluded_devices("fltrust", ref_info, M)
    with pytest.raises(ConfigError, match=r"defence_params\.fltrust_clipped\.rescale"):
        make_aggregator("fltrust_clipped", {"rescale": True})
