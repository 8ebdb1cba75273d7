"""One round, one implementation: the experiment's rule, an in-process deployment and a gRPC deployment
(edge nodes and dealer as OS processes, mutual TLS) give bit-identical aggregates and decisions on
the same updates; the coordinator only relays (it holds no update, device or device key)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from ppbfl.fl.aggregation import AggregationContext
from ppbfl.fl.federation import Federation
from ppbfl.fl.secure_aggregator import SecureCosineAggregator
from ppbfl.protocol.announcement import RoundAnnouncement
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import AnnouncementError
from tests.protocol_helpers import synthetic_round

T, N, D, M = 3, 5, 500, 8
MALICIOUS = {2, 6}


def _through(deployment, codec, updates, reference, rounds=2):
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=codec, timeout=30.0)
    with Federation(deployment, coordinator, range(M)) as federation:
        return [federation.run_round(r, updates, reference) for r in range(1, rounds + 1)]


def test_experiment_rule_in_process_and_grpc_rounds_are_bit_identical():
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=11)
    rule = SecureCosineAggregator(t=T, n=N)
    stacked = np.stack([updates[i] for i in range(M)])
    expected, info = rule.aggregate(stacked, AggregationContext(reference=reference))
    codec = rule.codec(D, M)

    with InProcessDeployment(T, N, D) as deployment:
        in_process = _through(deployment, codec, updates, reference)
    with GrpcDeployment(T, N, D) as deployment:
        over_grpc = _through(deployment, codec, updates, reference)

    for result in in_process + over_grpc:  # every round, both deployments: the same bits
        assert result.aggregate.astype(np.float32).tobytes() == expected.tobytes()
        assert result.aggregate.tobytes() == in_process[0].aggregate.tobytes()
        assert result.decision.decisions == in_process[0].decision.decisions
        assert result.decision.weights.tobytes() == in_process[0].decision.weights.tobytes()
        assert result.decision.norm2.tobytes() == in_process[0].decision.norm2.tobytes()
        assert [d.weight for d in result.decision.decisions] == info["weights"]
        assert sorted(set(range(M)) - set(result.accepted)) == sorted(MALICIOUS)


def test_the_coordinator_takes_no_update_device_or_device_key():
    for method in (Coordinator.open_round, Coordinator.challenge, Coordinator.finish_round, Coordinator.setup):
        names = set(inspect.signature(method).parameters)
        assert not names & {"updates", "devices", "device_transport"}, (method.__name__, names)
    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        coordinator.setup()
        announcement = coordinator.open_round(1)
        assert announcement == RoundAnnouncement(1, T, N, D, coordinator.codec.frac_bits, (1, 2, 3, 4, 5), b"\x00" * 32)
        # no device took part: the round completes empty, and nothing device-side is in the coordinator
        coordinator.challenge(1)
        result = coordinator.finish_round(1, np.full(D, 0.01))
        assert result.devices == [] and result.accepted == [] and not result.aggregate.any()
        held = [v for v in vars(coordinator).values() if isinstance(v, (Device, np.ndarray))]
        assert held == []


@pytest.mark.parametrize(
    "field, value",
    [("t", 2), ("n", 7), ("frac_bits", 20), ("edge_nodes", (1, 1, 2)), ("edge_nodes", (0, 1, 2)), ("edge_nodes", ()), ("round", 0)],
)
def test_a_device_refuses_an_announcement_that_disagrees_with_its_configuration(field, value):
    """An untrusted coordinator cannot make a device share with other parameters (e.g. a lower
    threshold, or to an edge node outside the tier)."""
    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        coordinator.setup()
        device = Device(0, T, N, coordinator.codec, transport=deployment.device_transport(0))
        good = RoundAnnouncement(1, T, N, D, device.codec.frac_bits, (1, 2, 3, 4, 5), b"\x00" * 32)
        bad = RoundAnnouncement(**{**vars(good), field: value})
        with pytest.raises(AnnouncementError, match=field) as error:
            device.submit(bad, np.zeros(D))
        assert error.value.field == field and error.value.device == 0
        assert device.submit(good, np.zeros(D)).delivered == (1, 2, 3, 4, 5)


def test_an_update_of_the_wrong_length_is_refused_by_the_device():
    with InProcessDeployment(T, N, D) as deployment:
        device = Device(0, T, N, Coordinator(T, N, D, deployment.coordinator).codec, transport=deployment.device_transport(0))
        announcement = RoundAnnouncement(1, T, N, D, device.codec.frac_bits, (1, 2, 3, 4, 5), b"\x00" * 32)
        with pytest.raises(AnnouncementError, match="'d'"):
            device.submit(announcement, np.zeros(D + 1))


def test_finish_without_open_and_double_open_are_typed_errors():
    from ppbfl.protocol.round_errors import RoundFailedError

    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        with pytest.raises(RoundFailedError, match="setup"):
            coordinator.open_round(1)
        coordinator.setup()
        with pytest.raises(RoundFailedError, match="before open_round"):
            coordinator.finish_round(1, np.zeros(D))
        with pytest.raises(RoundFailedError, match="before open_round"):
            coordinator.challenge(1)
        coordinator.open_round(1)
        with pytest.raises(RoundFailedError, match="already open"):
            coordinator.open_round(1)
        with pytest.raises(RoundFailedError, match="before challenge"):
            coordinator.finish_round(1, np.zeros(D))
        coordinator.challenge(1)
        with pytest.raises(RoundFailedError, match="already closed"):
            coordinator.challenge(1)


def test_a_bad_reference_or_trust_is_refused_before_anything_is_sent_and_the_round_stays_open():
    from ppbfl.errors import ConfigError, FieldShapeError

    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, MALICIOUS)
            coordinator.setup()
            announcement = coordinator.open_round(1)
            for i, device in federation.devices.items():
                device.submit(announcement, updates[i])
            challenge = coordinator.challenge(1)
            for device in federation.devices.values():
                device.prove(challenge)
            with pytest.raises(FieldShapeError, match="reference"):
                coordinator.finish_round(1, np.zeros(D + 1))
            with pytest.raises(ConfigError, match="device 3"):
                coordinator.finish_round(1, reference, trust={3: 1.5})
            with pytest.raises(ConfigError, match="trust"):
                coordinator.finish_round(1, reference, trust={3: float("nan")})
            result = coordinator.finish_round(1, reference)  # still open: it completes
            assert sorted(set(range(M)) - set(result.accepted)) == sorted(MALICIOUS)
