"""One whole protocol round (in-process transport, no chain) vs plaintext NumPy FLTrust on the same updates.

Group ``protocol round m=100 d=1e5 t=3 n=5`` (quick mode: m = 20, d = 1e3), the targets of issue 18:

* ``inprocess_round`` -- :meth:`ppbfl.fl.federation.Federation.run_round`: every device (a client
  with its own transport) shares (seed-compressed) and uploads through the encode / validate /
  decode path, the coordinator relays, the edge nodes run the consistency check, the default
  norms (``norms="auto"``: Beaver triples from the dealer at 5 of (3, 5) online, since the
  attribution change; honest-majority norms before it, which is what RESULTS.md's figures of this
  group measured; ``benchmarks/test_bench_norms.py`` compares the two) and the public-reference
  dot, decide, aggregate on shares; robust reconstruction. Devices' training and the chain are
  not included.
* ``edge_tier`` -- the same round's :meth:`ppbfl.protocol.round.Coordinator.finish_round` alone
  (who delivered, verify, aggregate, reconstruct), the devices' uploads done beforehand.
* ``numpy_fltrust`` -- :class:`ppbfl.fl.aggregators.FLTrust` on the float updates (warm process).
* ``copyto_floor`` -- ``np.copyto`` of the ``m * n * d`` uint64 share words the round moves.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import QUICK, UploadedRound, size_id

from ppbfl.fl.aggregators import AggregationContext, FLTrust
from ppbfl.fl.federation import Federation

T, N = 3, 5
M = 20 if QUICK else 100
D = 10**3 if QUICK else 10**5
GROUP = f"protocol round m={M} d={size_id(D)} t={T} n={N}"
ROUNDS = itertools.count(1)
"""Round numbers of the module's federation, shared by its tests (edge nodes accept uploads only
for the rounds just after the coordinator's latest)."""


@pytest.fixture(scope="module")
def round_data():
    rng = np.random.default_rng(0)  # simulation data only
    reference = rng.normal(0, 0.001, D)  # L2 ~0.45 at d = 1e5: inside the validity bound (2.0 at 16 fractional bits)
    updates = reference + rng.normal(0, 0.001, (M, D))
    updates[: M // 5] *= -3.0
    return dict(enumerate(updates)), reference


@pytest.fixture(scope="module")
def federation():
    with Federation.in_process(T, N, D, M) as fed:
        yield fed


@pytest.mark.benchmark(group=GROUP)
def test_protocol_inprocess_round(benchmark, round_data, federation):
    updates, reference = round_data
    result = benchmark.pedantic(lambda: federation.run_round(next(ROUNDS), updates, reference), rounds=5, warmup_rounds=1)
    assert len(result.accepted) == M - M // 5


@pytest.mark.benchmark(group=GROUP)
def test_protocol_edge_tier(benchmark, round_data, federation):
    updates, reference = round_data
    coordinator = federation.coordinator
    uploaded = UploadedRound(federation, updates, ROUNDS)
    result = benchmark.pedantic(lambda: coordinator.finish_round(uploaded.round, reference), setup=uploaded, rounds=5, warmup_rounds=1)
    assert len(result.accepted) == M - M // 5


@pytest.mark.benchmark(group=GROUP)
def test_protocol_numpy_fltrust(benchmark, round_data):
    updates, reference = round_data
    stacked = np.stack(list(updates.values()))
    aggregate, _ = benchmark.pedantic(FLTrust().aggregate, (stacked, AggregationContext(reference=reference)), rounds=20, warmup_rounds=3)
    assert aggregate.shape == (D,)


@pytest.mark.benchmark(group=GROUP)
def test_protocol_copyto_floor(benchmark):
    source = np.ones(M * N * D, dtype=np.uint64)
    target = np.empty_like(source)
    benchmark.pedantic(np.copyto, (target, source), rounds=10, warmup_rounds=1)
    assert target[-1] == 1
