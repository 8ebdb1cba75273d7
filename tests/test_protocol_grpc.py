"""The protocol over gRPC + mutual TLS with every edge node and the dealer in its own OS process."""

from __future__ import annotations

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import GrpcDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.messages import AggregateRequest
from ppbfl.protocol.round import Coordinator
from tests.protocol_helpers import (
    InconsistentDevice,
    plaintext_aggregate,
    synthetic_round,
)

T, N, D, M = 3, 5, 2000, 6
MALICIOUS = {0}
ATOL = 5e-5


class _KillBeforeAggregate:
    """The coordinator's transport, killing edge node ``victim`` just before the first aggregate request."""

    def __init__(self, inner, deployment, victim):
        self.inner, self.deployment, self.victim, self.killed = inner, deployment, victim, False

    def call(self, party, message, **kwargs):
        if isinstance(message, AggregateRequest) and not self.killed:
            self.deployment.stop_edge(self.victim)
            self.killed = True
        return self.inner.call(party, message, **kwargs)

    def close(self):
        self.inner.close()


@pytest.fixture(scope="module")
def deployment():
    with GrpcDeployment(T, N, D, behaviours={2: "tamper-aggregate"}) as dep:
        assert not list(dep.workdir.glob("*.key"))  # every server loaded its key; none stays on disk
        yield dep
    assert not dep.workdir.exists()  # close() removed the temporary folder


def test_rounds_over_grpc_with_a_liar_a_bad_device_garbage_and_a_node_killed_mid_round(deployment):
    codec = FixedPointCodec()
    wrapped = _KillBeforeAggregate(deployment.coordinator, deployment, victim=5)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=codec, timeout=20.0)
    assert coordinator.setup() == (1, 2, 3, 4, 5)
    federation = Federation(deployment, coordinator, range(M), factories={4: InconsistentDevice})

    # round 1: the lying node 2 is corrected and named; the inconsistent device is rejected
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=1)
    result = federation.run_round(1, updates, reference)
    assert result.liars == (2,) and result.mode == "beaver"  # k = 2t - 1 with a dealer: Beaver norms
    assert result.decision_of(4).reason == "inconsistent shares"
    assert result.decision_of(0).reason == "negative cosine"
    kept = {i: g for i, g in updates.items() if i != 4}
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)

    # malformed and truncated bytes to an edge-node process: typed error replies, the node stays up
    good_transport = deployment.device_transport(0)
    for bad in (b"\xc1garbage", b"\x85\xa1v\x01", b""):
        with pytest.raises(RemoteError) as err:
            good_transport.call_bytes(edge_party(1), bad, timeout=10)
        assert err.value.remote_type == "MessageError"

    # round 2: node 5 is killed after verification; the round completes on nodes 1, 3, 4
    coordinator.transport = wrapped
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=2)
    result = federation.run_round(2, updates, reference)
    assert wrapped.killed and 5 in result.dropped and result.online == (1, 3, 4)
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate({i: g for i, g in updates.items() if i != 4}, reference)[0], atol=ATOL)
    assert not deployment.processes[edge_party(5)].alive()

    # round 3: only t = 3 nodes left: squared norms through the dealer process's Beaver triples.
    # With exactly t shares there is no redundancy, so the consistency test cannot see device 4's
    # inconsistency; but the update nodes 1, 3, 4 interpolate (one coordinate off by 2 * 2^-16) is
    # not the one its validity proof was made for, and the proof fails.
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(3, updates, reference)
    assert result.mode == "beaver" and result.online == (1, 3, 4)
    assert result.decision_of(4).reason == "out of range: the validity proof fails" and not result.decision_of(0).accepted
    expected = plaintext_aggregate({i: g for i, g in updates.items() if i != 4}, reference)[0]
    np.testing.assert_allclose(result.aggregate, expected, atol=ATOL)
    federation.close()
