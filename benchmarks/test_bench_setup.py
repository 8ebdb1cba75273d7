"""Edge-tier setup (once per deployment): the PRZS key agreement among the nodes vs drawing every key in one place.

Group ``edge setup t=3 n=5``, in process (all parties in this process, every message encoded and decoded):

* ``trusted keys`` -- :meth:`ppbfl.mpc.przs.PRZSKeys.setup`: every set key drawn in one place (what the
  coordinator did before issue 12; its ``SetupEdge`` messages carried them, not timed here);
* ``member agreed`` -- :meth:`ppbfl.protocol.round.Coordinator.setup` over an
  :class:`~ppbfl.protocol.deployment.InProcessDeployment`: ``SetupEdge`` -> signed X25519 offers,
  relayed offers -> sealed set keys, delivery (:mod:`ppbfl.protocol.przs_setup`).
"""

from __future__ import annotations

import pytest

from ppbfl.mpc.przs import PRZSKeys
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.round import Coordinator

T, N, D = 3, 5, 1000
GROUP = f"edge setup t={T} n={N}"


@pytest.mark.benchmark(group=GROUP)
def test_trusted_keys(benchmark) -> None:
    keys = benchmark(PRZSKeys.setup, T, N)
    assert len(keys.keys) == 10  # C(5, 3)


@pytest.mark.benchmark(group=GROUP)
def test_member_agreed(benchmark) -> None:
    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        try:
            assert benchmark(coordinator.setup) == tuple(range(1, N + 1))
        finally:
            coordinator.close()
        assert all(len(node.przs.keys) == 6 for node in deployment.nodes.values())  # C(4, 2) sets per node
