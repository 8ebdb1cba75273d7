"""End-to-end rounds of the protocol layer with the in-process transport (every hop encoded and validated)."""

from __future__ import annotations

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import COORDINATOR_PARTY, edge_party
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.messages import AggregateRequest, VerifyRequest
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.transport import InProcessTransport
from tests.protocol_helpers import (
    EquivocatingDevice,
    InconsistentDevice,
    plaintext_aggregate,
    synthetic_round,
)

T, N, D, M = 3, 5, 400, 8
MALICIOUS = {1, 5}
# fixed point (f = 16): entries carry 2^-17 rounding and weights 2^-17 relative error; measured
# max |error| ~3e-6 on these 1e-2-sized updates, so 5e-5 leaves margin without hiding a real bug
ATOL = 5e-5


def _setup(behaviours=None, dealer=True, factories=None):
    deployment = InProcessDeployment(T, N, D, behaviours=behaviours)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), dealer=dealer)
    coordinator.setup()
    return Federation(deployment, coordinator, range(M), factories=factories)


def _run(federation, rnd=1, updates=None, reference=None, **kwargs):
    if updates is None:
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=rnd)
    return federation.run_round(rnd, updates, reference, **kwargs), updates, reference


def test_round_matches_plaintext_fltrust_and_rejects_malicious():
    federation = _setup()
    result, updates, reference = _run(federation)
    expected, weights = plaintext_aggregate(updates, reference)
    np.testing.assert_allclose(result.aggregate, expected, atol=ATOL)
    assert result.mode == "beaver"  # k = 2t - 1 online with a dealer: Beaver norms, whose wrong shares are corrected
    assert set(result.accepted) == set(range(M)) - MALICIOUS
    for i in MALICIOUS:
        assert result.decision_of(i).weight == 0 and result.decision_of(i).reason == "negative cosine"
    for i in set(range(M)) - MALICIOUS:
        # cosines of the encoded updates: entries ~1e-2 at 2^-16 resolution move them by ~1e-5
        assert result.decision_of(i).weight == pytest.approx(weights[i], abs=1e-4)
        assert result.decision_of(i).cosine == result.decision_of(i).weight
    assert result.liars == () and result.dropped == {}


def test_lying_edge_node_is_corrected_named_and_excluded():
    federation = _setup({2: "tamper-aggregate"})
    result, updates, reference = _run(federation)
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)
    assert result.liars == (2,)
    second, updates, reference = _run(federation, rnd=2)
    assert 2 not in second.online and second.liars == ()
    np.testing.assert_allclose(second.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def test_node_lying_about_verification_shares_is_named():
    federation = _setup({4: "tamper-verify"})
    result, updates, reference = _run(federation)
    assert 4 in result.liars
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def test_two_edge_nodes_gone_falls_back_to_beaver_triples():
    federation = _setup()
    federation.deployment.stop_edge(4)
    federation.deployment.stop_edge(5)
    result, updates, reference = _run(federation)
    assert result.mode == "beaver"
    assert result.online == (1, 2, 3) and set(result.dropped) == {4, 5}
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)
    assert set(result.accepted) == set(range(M)) - MALICIOUS


def test_without_dealer_too_few_nodes_is_a_typed_error():
    federation = _setup(dealer=False)
    federation.deployment.stop_edge(5)
    with pytest.raises(NotEnoughEdgeNodesError, match="no dealer"):
        _run(federation)


def test_fewer_than_t_nodes_is_a_typed_error():
    federation = _setup()
    for j in (3, 4, 5):
        federation.deployment.stop_edge(j)
    with pytest.raises(NotEnoughEdgeNodesError, match="at least 3"):
        _run(federation)


def test_inconsistent_and_equivocating_devices_are_rejected():
    federation = _setup(factories={3: InconsistentDevice, 6: EquivocatingDevice})
    result, updates, reference = _run(federation)
    assert result.decision_of(3).reason == "inconsistent shares"
    assert result.rejected[6] == "missing upload: edge nodes [1, 2] do not have it"
    kept = {i: g for i, g in updates.items() if i not in (3, 6)}
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)


def test_devices_that_drop_out_are_left_out():
    federation = _setup()
    updates, reference = synthetic_round(M, D, MALICIOUS)
    del updates[0], updates[7]
    result, _, _ = _run(federation, updates=updates, reference=reference)
    assert result.rejected[0] == result.rejected[7] == "missing upload: no update"
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def test_all_rejected_gives_zero_update():
    federation = _setup()
    updates, reference = synthetic_round(M, D, set(range(M)))
    result, _, _ = _run(federation, updates=updates, reference=reference)
    assert result.accepted == [] and not result.aggregate.any()


def test_trust_scales_weights_and_zero_trust_rejects():
    federation = _setup()
    result, updates, reference = _run(federation, trust={0: 0.0, 2: 0.5})
    assert result.decision_of(0).reason == "zero trust"
    _, weights = plaintext_aggregate(updates, reference)
    assert result.decision_of(2).weight == pytest.approx(0.5 * weights[2], abs=1e-4)


def test_out_of_phase_and_wrong_sender_requests_are_refused():
    federation = _setup()
    deployment = federation.deployment
    transport = InProcessTransport(COORDINATOR_PARTY, deployment.nodes)
    reference = np.zeros(D, dtype=np.uint64)
    with pytest.raises(RemoteError, match="nothing received for round 9"):
        transport.call(edge_party(1), VerifyRequest(b"\x01" * 32, reference, [0], [b"\x00" * 32], 1, 9, [], [], []), round=9, timeout=5, context={"d": D})
    impostor = deployment.device_transport(0)
    zeros = np.zeros((1, 1), np.uint64)
    request = AggregateRequest([1], zeros, zeros, zeros, 4, np.ones(1), [], zeros, zeros, [b""], [bytes(32)], [[]], [], [])
    with pytest.raises(RemoteError, match="must come from coordinator"):
        impostor.call(edge_party(1), request, round=1, timeout=5, context={"d": D})


def test_chain_state_matches_the_round():
    from ppbfl.chain.rounds import Phase
    from ppbfl.protocol.ledger import open_ledger

    deployment = InProcessDeployment(T, N, D, behaviours={3: "tamper-aggregate"})
    with open_ledger("embedded", T, N, devices=M) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        federation = Federation(deployment, coordinator, range(M), ledger=ledger)
        updates, reference = synthetic_round(M, D, MALICIOUS)
        del updates[7]  # device 7 never commits: the commit phase closes at its deadline
        result = federation.run_round(1, updates, reference)
        assert result.rejected[7] == "missing upload: no update"
        state = ledger.contract.round_state(1)
        assert state.phase == Phase.CLOSED and state.audit_passed and state.decisions_agreed
        assert state.reported_liars == (3,) and state.committed == M - 1
        assert ledger.commitment(1, 7) is None
        on_chain = ledger.commitments(1)  # one batched view call (commitmentsOf)
        assert set(on_chain) == set(range(M)) - {7}
        assert all(on_chain[i] == ledger.commitment(1, i) for i in on_chain)
        assert ledger.contract.commitments_of(1, [ledger.device_ids[7]]) == [bytes(32)]
        ids, values = ledger.contract.agreed_scalars(1)
        assert ids.tolist() == [ledger.device_ids[i] for i in result.devices]
        np.testing.assert_array_equal(values[:, 0], result.decision.norm2)
        np.testing.assert_array_equal(values[:, 1], result.decision.dot_ref)
        on_chain = {d.device_id: d for d in ledger.contract.decisions(1)}
        for i, decision in zip(result.devices, result.decision.decisions):
            assert (on_chain[ledger.device_ids[i]].weight > 0) == decision.accepted
        assert ledger.records[1].audit.passed and result.gas == ledger.records[1].gas > 0


def test_retried_requests_get_the_same_reply():
    federation = _setup()
    _run(federation)
    deployment = federation.deployment
    node = deployment.nodes[edge_party(1)]
    request, reply = node.rounds[1].verified
    transport = InProcessTransport(COORDINATOR_PARTY, deployment.nodes)
    envelope = transport.call(edge_party(1), request, round=1, timeout=5, context={"d": D})
    np.testing.assert_array_equal(envelope.message.norm2, reply.norm2)
    np.testing.assert_array_equal(envelope.message.dot_ref, reply.dot_ref)


def test_a_certificate_other_than_the_registered_one_is_refused():
    from ppbfl.protocol.ledger import FingerprintMismatchError, open_ledger

    registered = {edge_party(j): bytes([j]) * 32 for j in range(1, N + 1)}
    accounts = InProcessDeployment(T, N, D).edge_accounts
    with open_ledger("embedded", T, N, devices=1, edge_accounts=accounts, fingerprints=registered) as ledger:
        ledger.verify_fingerprints(registered)
        with pytest.raises(FingerprintMismatchError, match="edge-3"):
            ledger.verify_fingerprints({**registered, edge_party(3): b"\x07" * 32})


def test_a_device_whose_difficulty_was_raised_reads_it_again_and_commits():
    """A device reuses the PoW difficulty it read; when the consortium raises it, the contract
    refuses the stale stamp and the device reads the new difficulty and stamps again."""
    from ppbfl.chain.pow import bind_commitment, pow_stamp, pow_valid
    from ppbfl.protocol.ledger import open_ledger

    deployment = InProcessDeployment(T, N, D)
    with open_ledger("embedded", T, N, devices=M) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        federation = Federation(deployment, coordinator, range(M), ledger=ledger)
        updates, reference = synthetic_round(M, D, MALICIOUS)
        federation.run_round(1, updates, reference)
        board = federation.devices[0].board
        assert board.pow_bits == 8
        ledger.contract.set_pow_bits(board.account, 12)
        deployment = (ledger.contract.address, ledger.contract.chain_id)  # what a stamp is bound to
        # a root whose smallest 8-bit stamp is not a 12-bit stamp (1 in 16 would be): the stale
        # stamp is then certainly refused
        root = next(
            r for r in (bytes([k]) * 32 for k in range(1, 256))
            if not pow_valid(*deployment, board.account, 2, r, pow_stamp(*deployment, board.account, 2, r, 8), 12)
        )
        ledger.open_round(2, b"\x00" * 32)
        board.commit(2, root)
        assert board.pow_bits == 12 and ledger.commitment(2, 0) == bind_commitment(root, 2, 0)
        federation.close()
