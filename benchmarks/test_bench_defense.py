"""Full secure verification + aggregation vs a plaintext NumPy FLTrust on the same updates.

Group ``defense m=100 d=1e5 t=3 n=5`` (quick mode: m = 10, d = 1e3), public reference update:

* ``share`` -- every device encodes and Shamir-shares its update and its consistency mask
  (:func:`ppbfl.defense.share_update`): the device side, summed over all devices;
* ``verify_aggregate`` -- the edge side: share-consistency check, secure cosine verification
  (local dot with the public reference, one honest-majority secure square per device), weighted
  aggregation on shares with public fixed-point weights, robust reconstruction, decoding;
* ``total`` -- both, as one round of the secure path;
* ``numpy_fltrust`` -- :class:`ppbfl.fl.aggregators.FLTrust` on the float updates (the plaintext
  computation the secure path reproduces).

Target (issue): total <= 20x numpy_fltrust. The secure version does at least n = 5 times the
plaintext work (every edge node touches its share of every update), so this is near the floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, size_id

from ppbfl.defense import SecureCosineFilter, share_update
from ppbfl.fl.aggregators import AggregationContext, FLTrust

T, N = 3, 5
M, D = (10, 10**3) if QUICK else (100, 10**5)
GROUP = f"defense m={M} d={size_id(D)} t={T} n={N}"
SEED = bytes(range(32))


@pytest.fixture(scope="module")
def round_data():
    rng = np.random.default_rng(0)  # simulation data only
    reference = rng.normal(0, 0.01, D)
    updates = reference + rng.normal(0, 0.01, (M, D))
    updates[: M // 5] *= -3.0  # 20 % sign-flipped and scaled
    return updates, reference


def _share_all(updates):
    return [share_update(u, T, N, device=i) for i, u in enumerate(updates)]


def _verify(submissions, reference):
    flt = SecureCosineFilter(T, N)
    return flt.verify_and_aggregate(
        [s.shares for s in submissions], reference,
        mask_shares=[s.mask_shares for s in submissions], challenge_seed=SEED,
    )


def _check(aggregate, records, updates, reference):
    expected, _ = FLTrust().aggregate(updates, AggregationContext(reference=reference))
    assert np.allclose(aggregate, expected, atol=1e-3 * np.abs(expected).max() + 1e-6)
    assert sum(not r.accepted for r in records.devices) == M // 5


def test_defense_share(benchmark, round_data):
    benchmark.group = GROUP
    updates, _ = round_data
    subs = benchmark.pedantic(_share_all, args=(updates,), rounds=3, iterations=1)
    assert len(subs) == M and subs[0].shares.shape == (N, D)


def test_defense_verify_aggregate(benchmark, round_data):
    benchmark.group = GROUP
    updates, reference = round_data
    subs = _share_all(updates)
    aggregate, records = benchmark.pedantic(_verify, args=(subs, reference), rounds=3, iterations=1)
    _check(aggregate, records, updates, reference)


def test_defense_total(benchmark, round_data):
    benchmark.group = GROUP
    updates, reference = round_data
    aggregate, records = benchmark.pedantic(lambda: _verify(_share_all(updates), reference), rounds=3, iterations=1)
    _check(aggregate, records, updates, reference)


def test_defense_numpy_fltrust(benchmark, round_data):
    benchmark.group = GROUP
    updates, reference = round_data
    context = AggregationContext(reference=reference)
    result, _ = benchmark(FLTrust().aggregate, updates, context)
    assert result.shape == (D,)
