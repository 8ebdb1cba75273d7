"""What correcting a Gram liar at ``k = 2t - 1`` costs: FLAME's edge tier with the Beaver Gram matrix
vs the honest-majority one.

At ``t = 3, n = 5`` with every node online, rule ``"flame"`` with ``norms="auto"`` (the default)
takes the norms, ``z`` and the Gram matrix from dealer triples and their pair products (degree
``t - 1``: a wrong share is corrected and its node named); ``norms="honest-majority"`` opens
PRZS-masked degree-``2(t - 1)`` products, with no redundancy there (docs/flame.md "Modes").
Group ``flame edge tier m=M d=D t=3 n=5``, one federation per mode, measured in the same run:

* ``honest_majority_gram`` -- :meth:`~ppbfl.protocol.round.Coordinator.finish_round` with
  ``norms="honest-majority"`` (the baseline: local products + PRZS zero-sharings, no dealer);
* ``beaver_gram`` -- the same with ``norms="auto"``: the dealer deals ``m`` square triples of
  length ``d`` (and ``m`` of the proof length) with their ``m (m - 1) / 2`` pair products, the
  nodes send their shares of ``g - a``, the relay opens them robustly and sends ``eps`` back, each
  node computes its Gram shares from ``eps`` (two ``m x d`` by ``d x m`` field matmuls).

The devices' uploads and proofs are done before each timed call (``setup``). Quick mode
(``PPBFL_BENCH_QUICK=1``): ``d = 1e3``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import QUICK, UploadedRound, size_id

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.aggregators import AggregationContext, make_aggregator
from ppbfl.fl.federation import Federation

T, N, M = 3, 5, 10
SIZES = (10**3,) if QUICK else (10**3, 10**4)


def _data(d: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)  # simulation data only
    direction = rng.normal(0, 0.001, d)
    updates = direction + rng.normal(0, 0.0005, (M, d))
    updates[: M // 5] *= -4.0  # a sign-flipped minority: outside the majority cluster
    return dict(enumerate(updates))


@pytest.mark.parametrize("length", SIZES, ids=size_id)
@pytest.mark.parametrize("norms", ["honest-majority", "auto"], ids=["honest_majority_gram", "beaver_gram"])
def test_flame_edge_tier(benchmark, norms, length):
    d = length
    benchmark.group = f"flame edge tier m={M} d={size_id(d)} t={T} n={N}"
    updates = _data(d)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with Federation.in_process(T, N, d, M, codec=codec, norms=norms, rule="flame") as federation:
        coordinator = federation.coordinator
        coordinator.setup()
        uploaded = UploadedRound(federation, updates, itertools.count(1))  # a fresh tier accepts uploads for its next rounds only
        result = benchmark.pedantic(lambda: coordinator.finish_round(uploaded.round, np.zeros(d)), setup=uploaded, rounds=3, warmup_rounds=1)
    assert result.mode == ("honest-majority" if norms == "honest-majority" else "beaver")
    _, plain = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(np.stack([updates[i] for i in range(M)]), AggregationContext())
    assert result.accepted == plain["accepted"] and set(result.accepted).isdisjoint(range(M // 5))  # the plaintext twin's decision
