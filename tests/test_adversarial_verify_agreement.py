"""Issue 12: the relay cannot send different edge nodes different ``VerifyRequest`` s in one round.

The coordinator fixes the hash of the round's one request on chain (``postVerifyRequest``: once
per round, after the commitments closed, before any scalars) and then sends it. A node that reads
the chain itself (in process: :meth:`EdgeNode.read_chain`, which a :class:`Federation` with a
ledger sets; a stand-alone ``ppbfl edge --chain``: its :class:`ChainRegistry`) answers only the
request with that hash, before computing any share. A node without a chain view answers what it
gets; a mix is then only refused after the fact, at the aggregate step (the weaker guarantee in
docs/security.md). The oracle for rounds that complete is the plaintext FLTrust aggregate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_SCALARS, ChainKey
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.rounds import Phase, RoundsContract, deploy_rounds
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61
from ppbfl.fl.federation import Federation
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.messages import VerifyRequest
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.signed_shares import request_hash
from tests.protocol_helpers import plaintext_aggregate, synthetic_round
from tests.test_adversarial_attribution import unchecked

T, N, D, M = 2, 4, 32, 5
MALICIOUS = {1}
ATOL = 5e-5  # fixed-point error of these updates, as tests/test_protocol_round.py


class Relay:
    """The coordinator's transport, with ``alter(party, request) -> request`` applied to every
    ``VerifyRequest`` after the coordinator posted its hash (the relay's second word)."""

    def __init__(self, inner, alter=None) -> None:
        self.inner, self.alter = inner, alter

    def call(self, party, message, **kwargs):
        if isinstance(message, VerifyRequest) and self.alter is not None:
            message = self.alter(party, message)
        return self.inner.call(party, message, **kwargs)

    def close(self) -> None:
        self.inner.close()


def other_order(message: VerifyRequest) -> VerifyRequest:
    """The same devices in reverse order (each with its commitment): another Lagrange combination."""
    return dataclasses.replace(message, devices=message.devices[::-1], commitments=message.commitments[::-1])


def other_reference(message: VerifyRequest) -> VerifyRequest:
    """Another public reference (entry 0 moved by one fixed-point unit): another opened functional."""
    reference = message.reference.copy()
    reference[0] = (reference[0] + np.uint64(1)) % np.uint64(GF61.p)
    return dataclasses.replace(message, reference=reference)


def only(party: str, change):
    """``alter`` for :class:`Relay`: ``change`` the request sent to ``party``, the others' unchanged."""
    return lambda to, message: change(message) if to == party else message


def short_deadlines(chain: Chain) -> RoundsContract:
    """A contract whose phases after the commitments last 20 blocks (a round needs < 10 each): an
    abort mines 20 blocks, not 200."""
    return deploy_rounds(chain, T, N, commit_blocks=2 * M + 20, verify_blocks=20, aggregate_blocks=20, audit_blocks=20)


@pytest.fixture
def tier():
    """An in-process (t, n) = (2, 4) tier on an embedded chain, its coordinator behind a :class:`Relay`."""
    deployment = InProcessDeployment(T, N, D, signed_uploads=True)
    with Chain.embedded(accounts=M + N + 4) as chain:
        ledger = ChainLedger(chain, T, N, M, contract=short_deadlines(chain))
        relay = Relay(deployment.coordinator)
        coordinator = Coordinator(T, N, D, relay, codec=FixedPointCodec(), ledger=ledger, device_keys=deployment.device_keys)
        coordinator.setup()
        with Federation(deployment, coordinator, range(M), ledger=ledger, owns_deployment=True) as federation:
            yield federation, relay, ledger


def reads(node) -> list[int]:
    """Record the rounds ``node`` reads its posted verify-request hash for (wraps its chain view)."""
    seen: list[int] = []
    read = node.posted_request

    def recorded(r: int) -> bytes:
        seen.append(r)
        return read(r)

    node.posted_request = recorded
    return seen


def assert_fltrust(result, updates, reference) -> None:
    assert sorted(set(range(M)) - set(result.accepted)) == sorted(MALICIOUS)
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def test_the_honest_round_posts_the_hash_of_the_one_request_every_node_checked_and_answered(tier):
    federation, _, ledger = tier
    nodes = federation.deployment.nodes
    seen = {party: reads(node) for party, node in nodes.items()}
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=21)
    result = federation.run_round(1, updates, reference)
    assert_fltrust(result, updates, reference)
    state = ledger.contract.round_state(1)
    assert state.phase == Phase.CLOSED and state.verify_request != bytes(32)
    answered = {party: node.rounds[1].verified[0] for party, node in nodes.items()}
    assert {request_hash(request) for request in answered.values()} == {state.verify_request}  # one request, the posted one
    assert all(reads == [1] for reads in seen.values())  # every node read the chain before answering
    assert "postVerifyRequest" in ledger.chain.gas_report().calls


@pytest.mark.parametrize(
    ("change", "view"), [(other_order, "read_chain"), (other_reference, "chain_registry")], ids=["device-order", "reference-registry"],
)
def test_a_request_other_than_the_posted_one_is_refused_before_any_share_and_the_round_goes_on(tier, change, view):
    federation, relay, ledger = tier
    node = federation.deployment.nodes[edge_party(1)]
    if view == "chain_registry":  # as `ppbfl edge --chain`: no view set, the node reads its registry's contract
        node.posted_request, node.registry = None, ChainRegistry(ledger.contract)
    relay.alter = only(edge_party(1), change)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=22)
    result = federation.run_round(1, updates, reference)
    why = federation.coordinator.dropped[1]
    assert "peer coordinator" in why and "'request_hash'" in why and "is not the hash posted on chain" in why
    assert node.rounds[1].verified is None  # edge-1 returned no shares: nothing of request B left it
    assert 1 not in result.online
    assert_fltrust(result, updates, reference)  # the other nodes answered the posted request: the round completes
    assert ledger.contract.round_state(1).phase == Phase.CLOSED


def test_a_round_without_the_posted_request_fails_at_every_node_and_the_next_round_works(tier, monkeypatch):
    federation, relay, ledger = tier
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=23)
    post = ledger.post_verify_request
    monkeypatch.setattr(ledger, "post_verify_request", lambda round, request_hash: None)  # round 1: a relay that skips the post
    with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
        federation.run_round(1, updates, reference)
    assert sorted(federation.coordinator.dropped) == [1, 2, 3, 4]
    assert all("'request_hash'" in why and "no verify request hash is posted" in why for why in federation.coordinator.dropped.values())
    monkeypatch.setattr(ledger, "post_verify_request", post)
    relay.alter = lambda to, message: other_reference(message)  # round 2: posts the hash of A, sends everyone B
    with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
        federation.run_round(2, updates, reference)
    assert all("is not the hash posted on chain" in why for why in federation.coordinator.dropped.values())
    for r in (1, 2):  # nobody computed a share; each round aborted on chain as other refusals are
        assert all(node.rounds[r].verified is None for node in federation.deployment.nodes.values())
        assert ledger.contract.round_state(r).phase == Phase.FAILED
    relay.alter = None
    result = federation.run_round(3, updates, reference)
    assert_fltrust(result, updates, reference)
    assert ledger.contract.round_state(3).phase == Phase.CLOSED


def test_the_relay_cannot_post_a_second_hash_or_post_out_of_phase():
    with Chain.embedded(accounts=8) as chain:
        keys = {j: ChainKey.generate() for j in range(1, N + 1)}
        ledger = ChainLedger(chain, T, N, 0, edge_accounts={j: key.address for j, key in keys.items()}, contract=short_deadlines(chain))
        first, second = b"\x01" * 32, b"\x02" * 32
        ledger.open_round(1, bytes(32))
        with pytest.raises(ChainRevertError) as early:  # before the commitments closed
            ledger.post_verify_request(1, first)
        assert early.value.error == "WrongPhase"
        ledger.close_commitments(1)
        with pytest.raises(ChainRevertError) as outsider:  # only the coordinator posts it
            ledger.contract.post_verify_request(1, first, sender=chain.new_account())
        assert outsider.value.error == "NotCoordinator"
        ledger.post_verify_request(1, first)
        for again in (second, first):
            with pytest.raises(ChainRevertError) as twice:
                ledger.post_verify_request(1, again)
            assert twice.value.error == "VerifyRequestAlreadyPosted" and twice.value.args_by_name["posted"] == first
        assert ledger.contract.verify_request(1) == first
        ledger.abort_round(1)
        ledger.open_round(2, bytes(32))
        ledger.close_commitments(2)
        with pytest.raises(ChainRevertError) as zero:
            ledger.post_verify_request(2, bytes(32))
        assert zero.value.error == "ZeroRoot"
        # once a node's scalars are on chain (one vote of t = 2: still Committed), no request hash any more
        packed = ledger.contract.pack_scalars([], np.zeros((0, 2), dtype=np.uint64))
        vote = ledger.contract.attest(keys[1], KIND_SCALARS, 2, keccak(packed))
        assert not ledger.contract.post_packed(KIND_SCALARS, 2, packed, [vote])
        assert ledger.contract.round_state(2).phase == Phase.COMMITTED
        with pytest.raises(ChainRevertError) as late:
            ledger.post_verify_request(2, first)
        assert late.value.error == "VerifyRequestAfterScalars"
        assert ledger.contract.verify_request(2) == bytes(32)


def test_a_node_without_a_chain_view_answers_a_different_request_and_the_mix_is_refused_after_the_fact(tier):
    # the weaker case, stated in docs/security.md: edge-1 reads no chain, so it answers request B;
    # the relay holds its reply, and every node refuses the mix at the aggregate step
    federation, relay, ledger = tier
    unchecked(federation.coordinator)  # a malicious relay: it does not check the signatures over B itself
    node = federation.deployment.nodes[edge_party(1)]
    node.posted_request = None
    relay.alter = only(edge_party(1), other_reference)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=25)
    with pytest.raises(NotEnoughEdgeNodesError, match="aggregate"):
        federation.run_round(1, updates, reference)
    assert node.rounds[1].verified is not None  # it answered B
    assert request_hash(node.rounds[1].verified[0]) != ledger.contract.verify_request(1)
    dropped = federation.coordinator.dropped
    assert sorted(dropped) == [1, 2, 3, 4]
    assert all("peer coordinator" in why and "did not sign" in why for why in dropped.values())
    assert ledger.contract.round_state(1).phase == Phase.FAILED
