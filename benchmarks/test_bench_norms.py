"""What naming a norm liar at ``k = 2t - 1`` costs: the edge tier with Beaver norms vs honest-majority norms.

At ``t = 3, n = 5`` with every node online, ``norms="auto"`` (the default) computes ``||g||^2`` and
the validity value ``z`` from dealer triples, whose degree-``(t - 1)`` results let a wrong share be
corrected and its node named; ``norms="honest-majority"`` opens a degree-``2(t - 1)`` sharing with
no redundancy there (docs/security.md, the norm-liar row). Group ``norms m=M d=D t=3 n=5``, one
federation per mode, measured in the same run:

* ``honest_majority`` -- :meth:`~ppbfl.protocol.round.Coordinator.finish_round` with
  ``norms="honest-majority"`` (the baseline: no dealer traffic);
* ``beaver_checked`` -- the same with ``norms="auto"``: the dealer deals ``m`` square triples of
  length ``d`` and ``m`` of the proof length to every node, each node sends its ``(m, d)`` shares of
  ``g - a`` to the relay, which opens them robustly and sends ``eps`` back (``BeaverOpen`` /
  ``BeaverFinish``).

The devices' uploads and proofs are done before each timed call (``setup``). Quick mode
(``PPBFL_BENCH_QUICK=1``): ``d = 1e3``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import QUICK, UploadedRound, size_id

from ppbfl.fl.federation import Federation

T, N, M = 3, 5, 10
SIZES = (10**3,) if QUICK else (10**4, 10**5)


def _data(d: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)  # simulation data only
    reference = rng.normal(0, 0.001, d)
    updates = reference + rng.normal(0, 0.001, (M, d))
    updates[: M // 5] *= -3.0
    return dict(enumerate(updates)), reference


@pytest.mark.parametrize("length", SIZES, ids=size_id)
@pytest.mark.parametrize("norms", ["honest-majority", "auto"], ids=["honest_majority", "beaver_checked"])
def test_norms_edge_tier(benchmark, norms, length):
    d = length
    benchmark.group = f"norms m={M} d={size_id(d)} t={T} n={N}"
    updates, reference = _data(d)
    with Federation.in_process(T, N, d, M, norms=norms) as federation:
        coordinator = federation.coordinator
        coordinator.setup()
        uploaded = UploadedRound(federation, updates, itertools.count(1))  # a fresh tier accepts uploads for its next rounds only
        result = benchmark.pedantic(lambda: coordinator.finish_round(uploaded.round, reference), setup=uploaded, rounds=3, warmup_rounds=1)
    assert result.mode == ("honest-majority" if norms == "honest-majority" else "beaver")
    assert len(result.accepted) == M - M // 5
