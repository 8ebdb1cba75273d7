"""One whole protocol round (in-process transport, no chain) vs plaintext NumPy FLTrust on the same updates.

Group ``protocol round m=20 d=1e5 t=3 n=5`` (quick mode: d = 1e3):

* ``inprocess_round`` -- :meth:`ppbfl.protocol.round.Coordinator.run_round`: every device shares
  (seed-compressed) and uploads through the encode / validate / decode path, the edge nodes run
  the consistency check, honest-majority norms and the public-reference dot, decide, aggregate on
  shares; robust reconstruction. Devices' training and the chain are not included.
* ``numpy_fltrust`` -- :class:`ppbfl.fl.aggregators.FLTrust` on the float updates.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import QUICK, size_id

from ppbfl.field import FixedPointCodec
from ppbfl.fl.aggregators import AggregationContext, FLTrust
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.round import Coordinator

T, N, M = 3, 5, 20
D = 10**3 if QUICK else 10**5
GROUP = f"protocol round m={M} d={size_id(D)} t={T} n={N}"


@pytest.fixture(scope="module")
def round_data():
    rng = np.random.default_rng(0)  # simulation data only
    reference = rng.normal(0, 0.01, D)
    updates = reference + rng.normal(0, 0.01, (M, D))
    updates[: M // 5] *= -3.0
    return updates, reference


@pytest.mark.benchmark(group=GROUP)
def test_protocol_inprocess_round(benchmark, round_data):
    updates, reference = round_data
    codec = FixedPointCodec()
    deployment = InProcessDeployment(T, N, D)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=codec)
    coordinator.setup()
    devices = [Device(i, T, N, codec) for i in range(M)]
    rounds = itertools.count(1)
    by_device = dict(enumerate(updates))
    result = benchmark(lambda: coordinator.run_round(next(rounds), devices, by_device, reference, device_transport=deployment.device_transport))
    assert len(result.accepted) == M - M // 5


@pytest.mark.benchmark(group=GROUP)
def test_protocol_numpy_fltrust(benchmark, round_data):
    updates, reference = round_data
    aggregate, _ = benchmark(FLTrust().aggregate, updates, AggregationContext(reference=reference))
    assert aggregate.shape == (D,)
