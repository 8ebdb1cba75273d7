"""One verify request per round for edge nodes without a chain view: a request quorum.

Nodes that read the chain answer only the request whose hash the coordinator posted there
(tests/test_adversarial_verify_agreement.py). Nodes without a chain view have no agreement point;
with :attr:`EdgeNode.request_quorum` ``q`` each endorses one request hash per round
(:class:`EndorseRequest`) and answers a :class:`VerifyRequest` only when it endorsed its hash and
the request carries valid endorsements of it by ``q`` distinct nodes. With
``q > (n + t - 1) / 2`` two quorums share ``2q - n >= t`` nodes, more than the ``t - 1`` that may
collude, so no two requests of a round both gather one: a relay that splits the tier between
two requests gets no share of either. The price: ``q`` nodes online instead of ``t``.

Tier (t, n) = (3, 5), q = 4, no ledger (no node reads a chain). The oracle for rounds that
complete is the plaintext FLTrust aggregate.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import numpy as np
import pytest

from ppbfl.cli import build_parser, edge_node
from ppbfl.errors import ConfigError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61
from ppbfl.fl.federation import Federation
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import ENDORSE_COUNTER, edge_party
from ppbfl.protocol.errors import PeerAuthError, PeerUnavailableError, RemoteError
from ppbfl.protocol.messages import EndorseRequest, RequestEndorsement, VerifyRequest, VerifyShares
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.signed_shares import request_hash
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.wire import Message
from tests.protocol_helpers import plaintext_aggregate, synthetic_round

T, N, Q, D, M = 3, 5, 4, 32, 6
MALICIOUS = {1}
ATOL = 5e-5  # fixed-point error of these updates, as tests/test_protocol_round.py


def other_reference(message: VerifyRequest) -> VerifyRequest:
    """Another public reference (entry 0 moved by one fixed-point unit): another opened functional."""
    reference = message.reference.copy()
    reference[0] = (reference[0] + np.uint64(1)) % np.uint64(GF61.p)
    return dataclasses.replace(message, reference=reference)


class Relay:
    """The coordinator's transport; ``alter(party, message) -> message`` rewrites each request."""

    def __init__(self, inner: Transport, alter: Callable[[str, Message], Message] | None = None) -> None:
        self.inner, self.alter = inner, alter

    def call(self, party, message, **kwargs):
        if self.alter is not None:
            message = self.alter(party, message)
        return self.inner.call(party, message, **kwargs)

    def close(self) -> None:
        self.inner.close()


class SplittingRelay(Relay):
    """Splits the tier between two verify requests of one round: the coordinator's ``A`` to the
    nodes outside ``group``; ``B`` (``A`` with another reference) to ``group``, whose
    endorsements of ``A`` it withholds (the coordinator sees them as unreachable) and asks for
    ``B``'s hash instead, relaying to each group the endorsements of its own request. ``answers``:
    node -> its reply to ``B`` or the error it raised."""

    def __init__(self, inner: Transport, group: tuple[str, ...]) -> None:
        super().__init__(inner)
        self.group = group
        self.answers: dict[str, object] = {}
        self._lock = threading.Lock()

    def call(self, party, message, **kwargs):
        if isinstance(message, EndorseRequest) and party in self.group:
            raise PeerUnavailableError(party, 1, kwargs["timeout"], "UNAVAILABLE", "withheld by the relay")
        if isinstance(message, VerifyRequest):
            with self._lock:
                if not self.answers:
                    self._send_other(message, kwargs)
        return self.inner.call(party, message, **kwargs)

    def _send_other(self, first: VerifyRequest, kwargs: dict) -> None:
        other = other_reference(first)
        asked = EndorseRequest(request_hash(other))
        endorsed = {party: self.inner.call(party, asked, **kwargs).message for party in self.group}
        other = dataclasses.replace(
            other, endorsers=[int(p.split("-")[1]) for p in endorsed], endorsements=[e.signature for e in endorsed.values()],
        )
        for party in self.group:
            try:
                self.answers[party] = self.inner.call(party, other, **kwargs).message
            except PPBFLError as error:
                self.answers[party] = error


def federation_of(deployment: InProcessDeployment, transport=None, *, endorse: bool = True) -> Federation:
    coordinator = Coordinator(
        T, N, D, transport or deployment.coordinator, codec=FixedPointCodec(), device_keys=deployment.device_keys, request_endorsements=endorse,
    )
    coordinator.setup()
    return Federation(deployment, coordinator, range(M))


def assert_fltrust(result, updates, reference) -> None:
    assert sorted(set(range(M)) - set(result.accepted)) == sorted(MALICIOUS)
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def verified(deployment: InProcessDeployment, round: int) -> dict[str, VerifyRequest]:
    """Node -> the verify request it answered in ``round`` (nodes that answered none left out)."""
    return {
        party: node.rounds[round].verified[0]
        for party, node in deployment.nodes.items()
        if round in node.rounds and node.rounds[round].verified is not None
    }


def test_an_honest_round_with_a_quorum_of_4_of_5_equals_the_round_without_one():
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=31)
    results = {}
    for q in (Q, None):
        deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=q)
        with federation_of(deployment, endorse=q is not None) as federation:
            results[q] = federation.run_round(1, updates, reference)
        answered = verified(deployment, 1)
        assert sorted(answered) == sorted(deployment.nodes)
        assert len({request_hash(r) for r in answered.values()}) == 1
        if q is not None:  # every node answered the one request all five endorsed
            assert all(sorted(r.endorsers) == list(range(1, N + 1)) for r in answered.values())
    assert results[Q].dropped == {} and results[Q].online == tuple(range(1, N + 1))
    assert_fltrust(results[Q], updates, reference)
    assert results[Q].accepted == results[None].accepted
    np.testing.assert_array_equal(results[Q].aggregate, results[None].aggregate)


@pytest.mark.parametrize("group", [(1, 2), (1,)], ids=["split-3-2", "split-4-1"])
@pytest.mark.parametrize("q", [Q, None], ids=["quorum", "no-quorum-control"])
def test_a_relay_that_splits_the_tier_between_two_requests_gets_no_share_of_a_request_without_a_quorum(q, group):
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=q)
    group_b = tuple(edge_party(j) for j in group)
    group_a = sorted(set(range(1, N + 1)) - set(group))
    relay = SplittingRelay(deployment.coordinator, group_b)
    with federation_of(deployment, relay) as federation:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=32)
        try:  # the nodes given A may complete the round on it (4 of them always, 3 without a quorum)
            result = federation.run_round(1, updates, reference)
        except NotEnoughEdgeNodesError:
            result = None
        dropped = federation.coordinator.dropped
    answered = verified(deployment, 1)
    if q is None:  # the weaker case: every node answered, the relay holds replies to two requests
        assert sorted(answered) == sorted(deployment.nodes)
        assert len({request_hash(r) for r in answered.values()}) == 2
        assert all(isinstance(relay.answers[p], VerifyShares) for p in group_b)
        return
    for party in group_b:  # B: endorsed by the group only, under the 4 needed
        error = relay.answers[party]
        assert isinstance(error, PeerAuthError) and "peer coordinator" in str(error) and "field 'endorsements'" in str(error)
        assert f"endorsed by nodes {list(group)}: this node's operator requires q = 4" in str(error)
    if len(group_a) < Q:  # A short of a quorum too: no node computed a share of either request
        assert result is None and answered == {}
        assert sorted(dropped) == list(range(1, N + 1))
        assert all("field 'endorsements'" in dropped[j] and f"endorsed by nodes {group_a}" in dropped[j] for j in group_a)
    else:  # A has its quorum: its nodes answer it, and only it
        assert result is not None and result.online == tuple(group_a)
        assert_fltrust(result, updates, reference)
        assert sorted(answered) == [edge_party(j) for j in group_a] and len({request_hash(r) for r in answered.values()}) == 1


def swapped(message: VerifyRequest) -> VerifyRequest:
    """Node 5's endorsement replaced by node 4's signature (a forgery)."""
    return dataclasses.replace(message, endorsements=[*message.endorsements[:-1], message.endorsements[-2]])


def padded(message: VerifyRequest) -> VerifyRequest:
    """Only nodes 1-3's endorsements, node 1's listed twice: four entries, three nodes."""
    return dataclasses.replace(message, endorsers=[1, 2, 3, 1], endorsements=[*message.endorsements[:3], message.endorsements[0]])


@pytest.mark.parametrize(("change", "why"), [(swapped, "that it did not sign for this request"), (padded, "one per distinct node expected")])
def test_a_forged_or_padded_endorsement_is_refused_by_every_node_before_any_share(change, why):
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=Q)
    alter = lambda party, message: change(message) if isinstance(message, VerifyRequest) else message  # noqa: E731
    with federation_of(deployment, Relay(deployment.coordinator, alter)) as federation:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=33)
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
            federation.run_round(1, updates, reference)
        dropped = federation.coordinator.dropped
    assert verified(deployment, 1) == {}
    assert sorted(dropped) == list(range(1, N + 1))
    assert all("peer coordinator" in reason and "field 'endorsements'" in reason and why in reason for reason in dropped.values())


def test_endorsements_replayed_from_another_round_are_refused_and_the_next_honest_round_works():
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=Q)
    kept: dict[int, VerifyRequest] = {}

    def alter(party, message):
        if not isinstance(message, VerifyRequest):
            return message
        kept.setdefault(message.zero_counter, message)
        if message.zero_counter == 2:  # round 1's endorsements (of round 1's hash) in round 2's request
            return dataclasses.replace(message, endorsers=kept[1].endorsers, endorsements=kept[1].endorsements)
        return message

    relay = Relay(deployment.coordinator, alter)
    with federation_of(deployment, relay) as federation:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=34)
        assert_fltrust(federation.run_round(1, updates, reference), updates, reference)
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
            federation.run_round(2, updates, reference)
        dropped = dict(federation.coordinator.dropped)
        assert verified(deployment, 2) == {}
        assert sorted(dropped) == list(range(1, N + 1))
        assert all("field 'endorsements'" in reason and "that it did not sign for this request" in reason for reason in dropped.values())
        relay.alter = None
        assert_fltrust(federation.run_round(3, updates, reference), updates, reference)


def test_a_node_endorses_one_hash_per_round_and_a_retry_gets_the_same_signature(tmp_path):
    deployment = InProcessDeployment(T, N, D, request_quorum=Q, state_dir=tmp_path)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), request_endorsements=True)
    coordinator.setup()
    coordinator.close()
    first, second = b"\x01" * 32, b"\x02" * 32

    def endorse(transport, digest, round=1):
        return transport.call(edge_party(1), EndorseRequest(digest), round=round, timeout=5.0).message

    signature = endorse(deployment.coordinator, first)
    assert isinstance(signature, RequestEndorsement)
    assert endorse(deployment.coordinator, first) == signature  # a retry
    with pytest.raises(PeerAuthError, match=r"peer coordinator.*field 'request_hash'.*endorsed another hash"):
        endorse(deployment.coordinator, second)
    # restarted from its state folder, the node remembers it endorsed in round 1 (not which hash): no other
    restarted = InProcessDeployment(T, N, D, request_quorum=Q, state_dir=tmp_path, creds=deployment.creds)
    node = restarted.nodes[edge_party(1)]
    assert node.restore_error is None and node.przs is not None and ENDORSE_COUNTER + 1 in node.przs.used
    for digest in (first, second):
        with pytest.raises(RemoteError, match=r"OutOfPhaseError.*endorsed a verify request of round 1 before a restart"):
            endorse(restarted.coordinator, digest)
    assert isinstance(endorse(restarted.coordinator, second, round=2), RequestEndorsement)  # the next round: one hash again


def test_with_three_of_five_online_and_q_4_the_round_fails_typed_and_with_four_the_next_round_works():
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=Q)
    with federation_of(deployment) as federation:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=35)
        stopped = {j: deployment.nodes[edge_party(j)] for j in (4, 5)}
        for j in stopped:
            deployment.stop_edge(j)
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):  # t = 3 are online: enough without the quorum
            federation.run_round(1, updates, reference)
        dropped = federation.coordinator.dropped
        assert verified(deployment, 1) == {}
        for j in (1, 2, 3):
            assert "field 'endorsements'" in dropped[j] and "endorsed by nodes [1, 2, 3]: this node's operator requires q = 4" in dropped[j]
        party = edge_party(4)  # edge-4 comes back
        deployment._edges[party] = deployment._handlers[party] = stopped[4]
        result = federation.run_round(2, updates, reference)
    assert result.online == (1, 2, 3, 4)
    assert_fltrust(result, updates, reference)


@pytest.mark.parametrize("q", [3, 6, 0, True, "4"])
def test_a_quorum_that_gives_no_guarantee_is_refused_at_config(q):
    with pytest.raises(ConfigError, match="request_quorum") as raised:
        InProcessDeployment(T, N, D, request_quorum=q)
    assert raised.value.key == "request_quorum"
    deployment = InProcessDeployment(T, N, D)  # set by each operator: refused when the setup names the tier
    for node in deployment.nodes.values():
        node.request_quorum = q
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec())
    with pytest.raises(NotEnoughEdgeNodesError, match="setup"):
        coordinator.setup()
    coordinator.close()
    assert sorted(coordinator.dropped) == list(range(1, N + 1))
    assert all("ConfigError" in why and "request_quorum" in why for why in coordinator.dropped.values())


def test_ppbfl_edge_request_quorum_sets_the_nodes_quorum(tmp_path):
    creds = tmp_path / "creds"
    write_credentials(creds, party_ids(edges=3, devices=1, coordinator=True))
    base = ["edge", "--party", "edge-1", "--creds", str(creds), "--ca", str(creds / "ca.crt")]
    assert edge_node(build_parser().parse_args(base)).request_quorum is None
    assert edge_node(build_parser().parse_args([*base, "--request-quorum", "3"])).request_quorum == 3


def test_quorum_nodes_refuse_a_coordinator_that_collects_no_endorsements():
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, request_quorum=Q)
    with federation_of(deployment, endorse=False) as federation:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=36)
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
            federation.run_round(1, updates, reference)
        dropped = federation.coordinator.dropped
    assert verified(deployment, 1) == {}
    assert all("field 'endorsements'" in why and "this node endorsed no verify request of the round" in why for why in dropped.values())


def test_over_grpc_edge_processes_with_a_quorum_answer_only_endorsed_requests():
    from ppbfl.protocol.deployment import GrpcDeployment

    t, n, q = 2, 3, 3  # q > (n + t - 1) / 2 = 2: every node (the smallest tier where a quorum exceeds t)
    with GrpcDeployment(t, n, D, request_quorum=q) as deployment:
        coordinator = Coordinator(t, n, D, deployment.coordinator, codec=FixedPointCodec(), request_endorsements=True)
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, MALICIOUS, seed=37)
            result = federation.run_round(1, updates, reference)
            assert result.dropped == {} and result.online == (1, 2, 3)
            assert_fltrust(result, updates, reference)
            coordinator.request_endorsements = False  # the relay skips the endorsements: every process refuses
            with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
                federation.run_round(2, updates, reference)
            assert sorted(coordinator.dropped) == [1, 2, 3]
            assert all("field 'endorsements'" in why for why in coordinator.dropped.values())
