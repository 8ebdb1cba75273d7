"""An edge node that restarts with its state folder rejoins without a new setup (issue 12, item 4).

A restart is a new :class:`EdgeNode` object built from nothing but its identity (TLS and chain
keys) and its state folder, as a new process is; the old object is dropped mid-round. The tier is
in process (the one network test lives in ``test_edge_restart_process.py``).
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.mpc.errors import CounterReuseError
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import EdgeNode
from ppbfl.protocol.edge_state import STATE_FILE, EdgeStateError
from ppbfl.protocol.messages import AggregateRecall, AggregateRequest, AggregateShare, SetupEdge, VerifyRequest
from ppbfl.protocol.parties import COORDINATOR_PARTY
from ppbfl.protocol.registry import Registry
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.protocol.tls import issue, make_ca
from ppbfl.protocol.wire import Envelope
from tests.protocol_helpers import synthetic_round

T, N, D, M = 2, 4, 8, 4


class Counting:
    """Wraps a node's ``handle`` to count the messages of each kind it is sent."""

    def __init__(self, node: EdgeNode) -> None:
        self.node, self.kinds = node, []

    def handle(self, envelope: Envelope):
        self.kinds.append(type(envelope.message))
        return self.node.handle(envelope)

    def __getattr__(self, name):
        return getattr(self.node, name)


def tier(folder, creds=None, norms="auto") -> tuple[InProcessDeployment, Federation]:
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, state_dir=folder, creds=creds)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), device_keys=deployment.device_keys, norms=norms)
    federation = Federation(deployment, coordinator, range(M), owns_deployment=True)
    return deployment, federation


def restart(deployment: InProcessDeployment, j: int, folder) -> EdgeNode:
    """Node ``j``'s process ends (its object is dropped) and a new one starts from its identity and folder."""
    party = f"edge-{j}"
    node = EdgeNode(device_keys=deployment.device_keys, credentials=deployment.creds[party], registry=deployment.registry, state_dir=folder / party)
    deployment.nodes[party] = deployment._edges[party] = deployment._handlers[party] = node
    return node


def count_calls(deployment: InProcessDeployment) -> dict[int, Counting]:
    counters = {}
    for j in range(1, N + 1):
        party = f"edge-{j}"
        counters[j] = deployment._edges[party] = deployment._handlers[party] = Counting(deployment.nodes[party])
    return counters


def test_a_restarted_node_serves_the_next_round_with_no_setup_sent_to_anyone(tmp_path):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
        assert federation.run_round(1, *synthetic_round(M, D, {3}, seed=1)).online == (1, 2, 3, 4)
        restart(deployment, 2, tmp_path)  # between rounds: nothing of round 1 is needed any more
        calls = count_calls(deployment)
        second = federation.run_round(2, *synthetic_round(M, D, {3}, seed=2))
        assert second.online == (1, 2, 3, 4) and not second.dropped
        assert all(SetupEdge not in c.kinds for c in calls.values())
        # the same round in a tier that never restarted: the same aggregate and decisions
        _, fresh = tier(tmp_path / "fresh")
        with fresh:
            fresh.coordinator.setup()
            fresh.run_round(1, *synthetic_round(M, D, {3}, seed=1))
            again = fresh.run_round(2, *synthetic_round(M, D, {3}, seed=2))
        assert np.allclose(second.aggregate, again.aggregate, atol=1e-9) and second.accepted == again.accepted


def test_a_node_killed_mid_round_leaves_that_round_only_and_the_next_needs_no_setup(tmp_path):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
        calls = count_calls(deployment)
        verify = deployment.nodes["edge-3"].handle

        def killed_after_verify(envelope):  # the process dies once its verify reply is written ahead
            reply = verify(envelope)
            if isinstance(envelope.message, VerifyRequest):
                restart(deployment, 3, tmp_path)
            return reply

        calls[3].node.handle = killed_after_verify
        lost = federation.run_round(1, *synthetic_round(M, D, {3}, seed=1))
        assert 3 in lost.dropped and "nothing received for round 1" in lost.dropped[3]
        assert lost.online == (1, 2, 4) and lost.accepted == [0, 1, 2]
        calls = count_calls(deployment)
        back = federation.run_round(2, *synthetic_round(M, D, {3}, seed=2))
        assert back.online == (1, 2, 3, 4) and not back.dropped
        assert all(SetupEdge not in c.kinds for c in calls.values())


def test_a_restarted_node_never_answers_a_spent_przs_counter_again(tmp_path):
    """Honest-majority zero shares are deterministic in (keys, counter): the node must not answer
    a counter it answered before its restart (a second answer over other shares would open their
    difference), while a counter it never spent still works. (Honest-majority norms: with 4 nodes
    at t = 2 the default opens them with Beaver triples, which spends no PRZS counter.)"""
    deployment, federation = tier(tmp_path, norms="honest-majority")
    with federation:
        federation.coordinator.setup()
        federation.run_round(1, *synthetic_round(M, D, {3}, seed=1))
        before = deployment.nodes["edge-1"]
        spent = set(before.przs.used)
        assert 1 in spent  # round 1's verify counter
        node = restart(deployment, 1, tmp_path)
        assert node.przs is not None and node.przs.used == spent and node.przs.keys == before.przs.keys
        assert node.przs is not before.przs
        with pytest.raises(CounterReuseError):
            node.przs.zero_share(1, 2)
        assert np.array_equal(node.przs.zero_share(99, 3), before.przs.zero_share(99, 3))  # same keys, fresh counter


def test_a_second_aggregate_request_for_a_round_is_refused_and_a_retry_gets_the_same_reply(tmp_path):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
        federation.run_round(1, *synthetic_round(M, D, {3}, seed=1))
        node = deployment.nodes["edge-1"]
        request, reply, _ = node._kept[1]
        assert isinstance(request, AggregateRequest) and isinstance(reply, AggregateShare)
        assert node.handle(Envelope(COORDINATOR_PARTY, 1, request)) is reply
        other = AggregateRequest(**{**request.__dict__, "trust": np.where(np.arange(M) == 0, 0.5, 1.0)})
        with pytest.raises(OutOfPhaseError, match="round 1 is aggregated already"):
            node.handle(Envelope(COORDINATOR_PARTY, 1, other))
        # the kept reply survives a restart, byte for byte, and only the coordinator may ask for it
        back = restart(deployment, 1, tmp_path)
        recalled = back.handle(Envelope(COORDINATOR_PARTY, 1, AggregateRecall()))
        assert np.array_equal(recalled.share, reply.share) and list(recalled.chain_signatures) == list(reply.chain_signatures)
        with pytest.raises(OutOfPhaseError, match="must come from coordinator"):
            back.handle(Envelope("device-0", 1, AggregateRecall()))


def test_the_state_folder_is_owner_only_and_holds_no_key_in_the_clear(tmp_path):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
    folder = tmp_path / "edge-1"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / STATE_FILE).st_mode) == 0o600
    data = (folder / STATE_FILE).read_bytes()
    keys = deployment.nodes["edge-1"].przs.keys.values()
    assert keys and not any(k in data for k in keys)
    assert deployment.nodes["edge-1"].config.session not in data


@pytest.mark.parametrize("damage", ["truncated", "one bit", "another node's file", "empty"])
def test_a_damaged_state_file_is_a_typed_error_and_the_node_starts_as_not_set_up(tmp_path, damage):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
        path = tmp_path / "edge-2" / STATE_FILE
        data = path.read_bytes()
        damaged = {
            "truncated": data[: len(data) // 2], "one bit": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:],
            "another node's file": (tmp_path / "edge-1" / STATE_FILE).read_bytes(), "empty": b"",
        }[damage]
        path.write_bytes(damaged)
        with pytest.warns(RuntimeWarning, match="starts as not set up"):
            node = restart(deployment, 2, tmp_path)
        assert isinstance(node.restore_error, EdgeStateError) and node.restore_error.path == str(path)
        assert node.restore_error.field in ("<ciphertext>", "<header>")
        assert node.setup is None and node.przs is None
        lost = federation.run_round(1, *synthetic_round(M, D, {3}, seed=1))
        assert "before setup" in lost.dropped[2]
        federation.coordinator.setup()  # the tier's ordinary re-setup brings it back
        assert federation.run_round(2, *synthetic_round(M, D, {3}, seed=2)).online == (1, 2, 3, 4)


def test_a_state_from_another_registry_is_refused_naming_the_peer_certificate(tmp_path):
    deployment, federation = tier(tmp_path)
    with federation:
        federation.coordinator.setup()
    ca = make_ca("another consortium")
    others = {party: (c if party == "edge-1" else issue(ca, party)) for party, c in deployment.creds.items()}
    registry = Registry({party: c.fingerprint for party, c in others.items()})  # edge-1 the same, its peers not
    with pytest.warns(RuntimeWarning):
        node = EdgeNode(credentials=others["edge-1"], registry=registry, state_dir=tmp_path / "edge-1")
    assert node.restore_error is not None and node.restore_error.field.startswith("peer_certificates[")
    assert "not registered as edge-" in str(node.restore_error) and node.setup is None
    moved = Registry({**{p: c.fingerprint for p, c in deployment.creds.items()}, "edge-1": deployment.creds["edge-2"].fingerprint,
                      "edge-2": deployment.creds["edge-1"].fingerprint})
    with pytest.warns(RuntimeWarning):
        node = EdgeNode(credentials=deployment.creds["edge-1"], registry=moved, state_dir=tmp_path / "edge-1")
    assert node.restore_error is not None and node.restore_error.field == "setup.index"
