"""Issue 12, item 5: one edge node must not get honest devices excluded with nobody held to account.

Each lying node is a subclass of :class:`EdgeNode` that lives here (production roles carry no
fault injection). The oracle is the plaintext FLTrust aggregate of the devices' float updates
(:func:`tests.protocol_helpers.plaintext_aggregate`): with the liar in the tier, every honest
device must still be accepted and the aggregate must be the one without a liar.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense.rule import DecisionRule
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61
from ppbfl.fl.federation import Federation
from ppbfl.protocol import signed_shares
from ppbfl.protocol.attribution import Dispute, settle, sign_upload
from ppbfl.protocol.commitments import commitment_root
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.edge_node import EdgeNode, edge_party
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.messages import BeaverFinish, BeaverOpen, DeviceUpload, UploadsQuery, VerifyRequest, VerifyShares
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import CommitmentMismatchError, NotEnoughEdgeNodesError, OutOfPhaseError
from ppbfl.protocol.wire import Envelope
from tests.protocol_helpers import InconsistentDevice, install_nodes, plaintext_aggregate, synthetic_round

T, N, D, M = 3, 5, 64, 8
MALICIOUS = {1, 5}  # sign-flipped devices: rejected by cosine, whatever the edge tier does
ATOL = 5e-5  # as tests/test_protocol_round.py: fixed-point error ~3e-6 on these updates


def signed_verify(node: EdgeNode, envelope: Envelope, message: VerifyRequest, reply: VerifyShares) -> VerifyShares:
    """``reply`` (altered by a lying ``node``) signed again by it: it signs its lie, so the
    coordinator's signature check passes it on and what catches it is the protocol step under test."""
    digest = signed_shares.verify_digest(
        node._session, envelope.round, node.config.index, consistency=reply.consistency, dot_ref=reply.dot_ref,
        norm2_hash=signed_shares.field_hash(reply.norm2), proof_consistency=reply.proof_consistency,
        validity_hash=signed_shares.field_hash(reply.validity), mismatched=reply.mismatched, request=signed_shares.request_hash(message),
    )
    return dataclasses.replace(reply, signature=node._sign(digest))


def unchecked(coordinator: Coordinator) -> Coordinator:
    """``coordinator`` relaying the nodes' signed values without checking them, as a malicious relay
    would (an honest one drops a node whose signature does not verify over what it sent: round.py):
    for the tests of what the nodes themselves refuse."""
    coordinator._signed = lambda replies, field, digest: replies  # type: ignore[method-assign]
    return coordinator


class ClaimsEveryMismatch(EdgeNode):
    """Reports every device's upload as not matching its on-chain commitment (and signs it)."""

    def _verify(self, envelope: Envelope, message: VerifyRequest):
        reply = super()._verify(envelope, message)
        return signed_verify(self, envelope, message, dataclasses.replace(reply, mismatched=list(range(len(message.devices)))))


class FabricatesMismatchEvidence(ClaimsEveryMismatch):
    """Claims every mismatch and shows a root other than the committed one, with the device's signature."""

    def _verify(self, envelope: Envelope, message: VerifyRequest):
        reply = super()._verify(envelope, message)
        return dataclasses.replace(reply, evidence_roots=[bytes(32)] * len(reply.mismatched))  # not signed: the device's signature is the evidence


class EquivocatingSigner(Device):
    """Sends node 1 leaves other than the committed ones (its own leaf matching its share), signed."""

    def prepare(self, round, update):
        prepared = super().prepare(round, update)
        upload = prepared.uploads[1]
        leaves = list(upload.leaves)
        leaves[-1] = bytes(32)  # another node's leaf: node 1's own still matches its share
        signature = sign_upload(self.signing_key, round, self.index, commitment_root(leaves))
        prepared.uploads[1] = dataclasses.replace(upload, leaves=leaves, signature=signature)
        return prepared


class ShiftsConsistency(EdgeNode):
    """Adds 1 to its consistency values of the first four devices of the verify request (and signs it)."""

    def _verify(self, envelope: Envelope, message: VerifyRequest):
        reply = super()._verify(envelope, message)
        shifted = reply.consistency.copy()
        shifted[:4] = (shifted[:4] + np.uint64(1)) % np.uint64(self.field.p)
        return signed_verify(self, envelope, message, dataclasses.replace(reply, consistency=shifted))


class RefusesDevice(EdgeNode):
    """Refuses device 2's upload (claims it does not match the committed leaf)."""

    def _upload(self, envelope: Envelope, message: DeviceUpload):
        if message.device == 2:
            raise CommitmentMismatchError(self.name, message.device, "the share does not match its committed leaf")
        return super()._upload(envelope, message)


class HidesDevice(EdgeNode):
    """Stores every upload but leaves device 4 out of its uploads report."""

    def _uploads_report(self, envelope: Envelope, message: UploadsQuery):
        report = super()._uploads_report(envelope, message)
        keep = [k for k, i in enumerate(report.devices) if i != 4]
        return dataclasses.replace(
            report, devices=[report.devices[k] for k in keep], roots=[report.roots[k] for k in keep],
            upload_roots=[report.upload_roots[k] for k in keep], upload_signatures=[report.upload_signatures[k] for k in keep],
        )


class LiesInNorms(EdgeNode):
    """Adds 7 to its honest-majority share of the first device's ``||g||^2``."""

    def _verify(self, envelope: Envelope, message: VerifyRequest):
        reply = super()._verify(envelope, message)
        if not reply.norm2.size:
            return reply
        norm2 = reply.norm2.copy()
        norm2[0] = (norm2[0] + np.uint64(7)) % np.uint64(self.field.p)
        signature = self._sign(signed_shares.verify_digest(  # it signs its lie: the relay passes it on unaltered
            self._session, envelope.round, self.config.index, consistency=reply.consistency, dot_ref=reply.dot_ref,
            norm2_hash=signed_shares.field_hash(norm2), proof_consistency=reply.proof_consistency,
            validity_hash=signed_shares.field_hash(reply.validity), request=signed_shares.request_hash(message),
            mismatched=reply.mismatched,
        ))
        return dataclasses.replace(reply, norm2=norm2, signature=signature)


class OneOffShareDevice(Device):
    """Moves coordinate 3 of node 1's share off the polynomial (a bad share at one node only)."""

    def share(self, round, update):
        sharing, mask = super().share(round, update)
        assert sharing.dense_points[0] == 1
        sharing.dense[0, 3] = (sharing.dense[0, 3] + np.uint64(1)) % np.uint64(sharing.field.p)
        return sharing, mask


class LiesInBeaverNorms(EdgeNode):
    """Adds 7 to its Beaver share of the first device's ``||g||^2`` (and signs it)."""

    def _beaver_finish(self, envelope: Envelope, message: BeaverFinish):
        reply = super()._beaver_finish(envelope, message)
        norm2 = reply.norm2.copy()
        norm2[0] = (norm2[0] + np.uint64(7)) % np.uint64(self.field.p)
        signature = self._sign(signed_shares.norms_digest(self._session, envelope.round, self.config.index, norm2=norm2, validity=reply.validity))
        return dataclasses.replace(reply, norm2=norm2, signature=signature)


class LiesInBeaverValidity(EdgeNode):
    """Adds 1 to its Beaver share of the first device's validity value ``z`` (an honest device would fail its proof)."""

    def _beaver_finish(self, envelope: Envelope, message: BeaverFinish):
        reply = super()._beaver_finish(envelope, message)
        z = reply.validity.copy()
        z[0] = (z[0] + np.uint64(1)) % np.uint64(self.field.p)
        signature = self._sign(signed_shares.norms_digest(self._session, envelope.round, self.config.index, norm2=reply.norm2, validity=z))
        return dataclasses.replace(reply, validity=z, signature=signature)


class LiesInEps(EdgeNode):
    """Adds 1 to its share of the first device's ``g - a`` (every node's square would then be off)."""

    def _beaver_open(self, envelope: Envelope, message: BeaverOpen):
        reply = super()._beaver_open(envelope, message)
        eps = reply.eps.copy()
        eps[0, 0] = (eps[0, 0] + np.uint64(1)) % np.uint64(self.field.p)
        return dataclasses.replace(reply, eps=eps)


class DropsAtVerify(EdgeNode):
    """Goes away when asked to verify (after it reported its uploads and coin)."""

    def _verify(self, envelope: Envelope, message: VerifyRequest):
        raise OutOfPhaseError(self.name, "gone")


class CountingRelay:
    """The coordinator's transport, counting the requests of each kind each party receives and keeping the last."""

    def __init__(self, inner) -> None:
        self.inner, self.counts, self.last = inner, Counter(), {}

    def call(self, party, message, **kwargs):
        self.counts[party, type(message).__name__] += 1
        self.last[party, type(message).__name__] = message
        return self.inner.call(party, message, **kwargs)

    def close(self) -> None:
        self.inner.close()


def _federation(
    liars: dict[int, type[EdgeNode]], *, t: int = T, n: int = N, ledger=None, factories=None, norms="auto", relay=None, decision_rule=None,
) -> Federation:
    deployment = InProcessDeployment(t, n, D, signed_uploads=True, decision_rule=decision_rule)
    install_nodes(deployment, liars)
    transport = deployment.coordinator if relay is None else relay(deployment.coordinator)
    coordinator = Coordinator(t, n, D, transport, codec=FixedPointCodec(), ledger=ledger, device_keys=deployment.device_keys, norms=norms)
    coordinator.setup()
    return Federation(deployment, coordinator, range(M), ledger=ledger, factories=factories)


def _assert_honest_devices_kept(result, updates, reference, excluded=frozenset()):
    honest = set(range(M)) - MALICIOUS - set(excluded)
    assert {i: result.rejected[i] for i in honest if i in result.rejected} == {}
    kept = {i: g for i, g in updates.items() if i not in excluded}
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)


@pytest.mark.parametrize(
    ("kind", "claim"),
    [(ShiftsConsistency, "consistency"), (RefusesDevice, "does not hold"), (HidesDevice, "does not hold")],
    ids=["shifted-consistency", "refused-upload", "hidden-upload"],
)
def test_one_node_cannot_get_honest_devices_excluded(kind, claim):
    federation = _federation({2: kind})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(1, updates, reference)
    _assert_honest_devices_kept(result, updates, reference)
    assert 2 in result.dropped and claim in result.dropped[2]  # the disputing node leaves the round, with the reason
    assert 2 not in result.online
    second = federation.run_round(2, *synthetic_round(M, D, MALICIOUS, seed=4))
    assert 2 in second.online or 2 in second.dropped  # a dispute drops it for one round, it is not excluded for good


def test_a_false_mismatch_claim_names_the_node_on_chain_and_a_signed_equivocation_rejects_the_device():
    # node 2 claims every upload mismatches its commitment; device 6 really sent node 1 other leaves and signed them
    from ppbfl.protocol.ledger import open_ledger

    with open_ledger("embedded", T, N, devices=M) as ledger:
        federation = _federation({2: ClaimsEveryMismatch}, ledger=ledger, factories={6: EquivocatingSigner})
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
        result = federation.run_round(1, updates, reference)
        assert result.decision_of(6).reason == "commitment mismatch"  # node 1's evidence proves it
        _assert_honest_devices_kept(result, updates, reference, excluded={6})
        assert result.liars == (2,) and "named as a liar: claimed a commitment mismatch" in result.dropped[2]
        assert ledger.contract.round_state(1).reported_liars == (2,)
        second = federation.run_round(2, *synthetic_round(M, D, MALICIOUS, seed=4))
        assert 2 not in second.online and second.liars == ()  # named liars leave the tier


def test_a_fabricated_mismatch_evidence_names_the_node():
    federation = _federation({4: FabricatesMismatchEvidence})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=8)
    result = federation.run_round(1, updates, reference)
    _assert_honest_devices_kept(result, updates, reference)
    assert result.liars == (4,)


def test_an_upload_without_the_devices_signature_is_refused():
    federation = _federation({})
    device = federation.devices[0]
    announcement = federation.coordinator.open_round(1)
    device.signing_key = None  # it sends unsigned uploads
    submission = device.submit(announcement, synthetic_round(M, D, MALICIOUS)[0][0])
    assert submission.delivered == ()
    assert all("is not signed by its registered identity key" in why for why in submission.refused.values())


def test_one_bad_share_costs_its_node_the_round_not_the_device():
    # indistinguishable from node 1 lying about its consistency value: the dispute drops node 1, and the
    # device's update is what nodes 2..5 hold, exactly its own (the bad share was node 1's)
    federation = _federation({}, factories={6: OneOffShareDevice})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=5)
    result = federation.run_round(1, updates, reference)
    assert set(result.dropped) == {1} and "consistency" in result.dropped[1] and result.liars == ()
    _assert_honest_devices_kept(result, updates, reference)
    assert 6 in result.accepted


def test_the_dispute_budget_goes_to_the_node_in_the_most_disputes():
    # node 2 lies about four devices, device 6 dealt node 1 a bad share: with e = 1 only one node may go;
    # node 2 goes (four disputes against one) and device 6's dispute stands: rejected
    federation = _federation({2: ShiftsConsistency}, factories={6: OneOffShareDevice})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=5)
    result = federation.run_round(1, updates, reference)
    assert set(result.dropped) == {2}
    assert result.decision_of(6).reason == "inconsistent shares"
    _assert_honest_devices_kept(result, updates, reference, excluded={6})


def test_a_device_every_dense_node_disputes_is_rejected():
    federation = _federation({}, factories={6: InconsistentDevice})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=7)
    result = federation.run_round(1, updates, reference)
    assert result.dropped == {} and result.decision_of(6).reason == "inconsistent shares"
    _assert_honest_devices_kept(result, updates, reference, excluded={6})


def test_a_norm_share_liar_is_corrected_and_named():
    t, n = 2, 5  # 5 >= 2t + 1: the degree-2(t - 1) norm shares correct one wrong share
    federation = _federation({3: LiesInNorms}, t=t, n=n)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=6)
    result = federation.run_round(1, updates, reference)
    assert result.mode == "honest-majority" and result.liars == (3,)  # RoundResult.liars is what reaches the chain
    _assert_honest_devices_kept(result, updates, reference)
    _, weights = plaintext_aggregate(updates, reference)
    assert result.decision_of(0).weight == pytest.approx(weights[0], abs=1e-4)


@st.composite
def _tiers(draw):
    t = draw(st.integers(1, 5))
    k = draw(st.integers(t, 11))
    online = tuple(sorted(draw(st.sets(st.integers(1, 31), min_size=k, max_size=k))))
    budget = (k - t) // 2
    liars = draw(st.sets(st.sampled_from(online), max_size=budget)) if budget else set()
    disputes = [
        Dispute(device, tuple(sorted(draw(st.sets(st.sampled_from(sorted(liars)), min_size=1)))), "claim", "reason")
        for device in range(draw(st.integers(0, 12) if liars else st.just(0)))
    ]
    others = [
        Dispute(100 + device, tuple(sorted(draw(st.sets(st.sampled_from(online), min_size=1)))), "claim", "reason")
        for device in range(draw(st.integers(0, 6)))
    ]
    return t, online, budget, liars, disputes, others


@given(_tiers())
@settings(max_examples=40, deadline=None)
def test_settle_never_lets_at_most_e_liars_exclude_a_device_and_keeps_its_bounds(tier):
    t, online, budget, liars, disputes, others = tier
    alone = settle(disputes, online, t, budget)  # only liars speak: every device stays, only liars leave
    assert alone.upheld == () and set(alone.dropped) <= liars
    mixed = settle(disputes + others, online, t, budget)  # devices raise disputes too: the bounds still hold
    assert len(mixed.dropped) <= budget and len(online) - len(mixed.dropped) >= t
    for dispute in disputes + others:
        assert (dispute in mixed.upheld) == (not set(dispute.nodes) <= set(mixed.dropped))


def test_edge_processes_require_signed_uploads_over_grpc():
    # the one network test: each edge node its own process, reading the devices' certificates and the manifest
    from ppbfl.protocol.deployment import GrpcDeployment

    with GrpcDeployment(T, N, D, signed_uploads=True, decision_rule=DecisionRule()) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), device_keys=deployment.device_keys)
        federation = Federation(deployment, coordinator, range(M))
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=11)
        unsigned = federation.devices.pop(7)
        unsigned.signing_key = None
        result = federation.run_round(1, {i: g for i, g in updates.items() if i != 7}, reference)
        assert result.dropped == {} and result.liars == ()
        _assert_honest_devices_kept(result, updates, reference, excluded={7})
        submission = unsigned.submit(coordinator.open_round(2), updates[7])
        assert submission.delivered == () and len(submission.refused) == N
        assert all("is not signed by its registered identity key" in why for why in submission.refused.values())
        switched = Coordinator(T, N, D, deployment.coordinator, rule="flame")  # the processes' operators configured cosine
        with pytest.raises(NotEnoughEdgeNodesError):
            switched.setup()
        switched.close()
        assert all("SetupRuleError" in why and "field 'rule' = 'flame'" in why for why in switched.dropped.values())
        assert sorted(switched.dropped) == list(range(1, N + 1))
        federation.close()


# -- one verify reply per node and round (a relay must not get both modes' shares) -------------------------


def test_a_relay_asking_for_both_verify_modes_gets_a_typed_refusal_from_every_node():
    # t = 2, n = 5: honest majority with all five online. The relay then asks every node for the
    # Beaver-mode reply of the same round (whose validity difference would open ||rho' b||^2)
    federation = _federation({}, t=2, relay=CountingRelay)
    relay = federation.coordinator.transport
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=12)
    result = federation.run_round(1, updates, reference)
    assert result.mode == "honest-majority"
    for j in range(1, N + 1):
        asked = relay.last[edge_party(j), "VerifyRequest"]
        assert asked.hm == 1 and relay.counts[edge_party(j), "VerifyRequest"] == 1
        retry = relay.inner.call(edge_party(j), asked, round=1, timeout=5, context={"d": D}).message
        first = federation.deployment.nodes[edge_party(j)].rounds[1].verified[1]
        for f in dataclasses.fields(first):  # a retry gets the identical reply
            mine, theirs = getattr(retry, f.name), getattr(first, f.name)
            assert np.array_equal(mine, theirs) if isinstance(mine, np.ndarray) else list(mine) == list(theirs) if isinstance(mine, (list, tuple)) else mine == theirs
        for other in (dataclasses.replace(asked, hm=0), dataclasses.replace(asked, devices=asked.devices[:1], commitments=asked.commitments[:1])):
            with pytest.raises(RemoteError, match="one verify reply per round") as refused:
                relay.inner.call(edge_party(j), other, round=1, timeout=5, context={"d": D})
            assert refused.value.remote_type == "OutOfPhaseError"


def test_a_second_beaver_opening_on_the_same_triples_is_refused():
    # Beaver mode (t = 3 of 5): a relay that re-opened the triples for other devices would get
    # g_0 - a_0 and g_1 - a_0 at every node, i.e. g_0 - g_1
    federation = _federation({}, relay=CountingRelay)
    relay = federation.coordinator.transport
    result = federation.run_round(1, *synthetic_round(M, D, MALICIOUS, seed=13))
    assert result.mode == "beaver"
    for j in range(1, N + 1):
        assert federation.deployment.nodes[edge_party(j)].rounds[1].verified[1].validity.size == 0  # z's linear part never leaves
        opened = relay.last[edge_party(j), "BeaverOpen"]
        assert relay.counts[edge_party(j), "BeaverOpen"] == 1 and len(opened.devices) >= 2
        again = relay.inner.call(edge_party(j), opened, round=1, timeout=5, context={"d": D}).message  # a retry: the same reply
        np.testing.assert_array_equal(again.eps, federation.deployment.nodes[edge_party(j)].rounds[1].opened[1].eps)
        swapped = BeaverOpen([opened.devices[1], opened.devices[0], *opened.devices[2:]])
        with pytest.raises(RemoteError, match="already answered a Beaver open"):
            relay.inner.call(edge_party(j), swapped, round=1, timeout=5, context={"d": D})


@pytest.mark.parametrize(("t", "norms"), [(2, "auto"), (3, "honest-majority")], ids=["t2-auto", "t3-honest-majority"])
def test_a_node_that_drops_during_an_honest_majority_verify_leaves_a_beaver_round_with_the_plaintext_aggregate(t, norms):
    federation = _federation({5: DropsAtVerify}, t=t, norms=norms, relay=CountingRelay)
    relay = federation.coordinator.transport
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=14)
    result = federation.run_round(1, updates, reference)
    assert result.mode == "beaver" and set(result.dropped) == {5} and result.liars == ()
    assert all(relay.last[edge_party(j), "VerifyRequest"].hm == 1 for j in range(1, N + 1))
    assert all(relay.counts[edge_party(j), "VerifyRequest"] == 1 for j in range(1, N + 1))  # nobody is asked twice
    _assert_honest_devices_kept(result, updates, reference)


# -- norm liars at 2t - 1 <= k <= 2t: Beaver norms, corrected and named -------------------------------------


@pytest.mark.parametrize("liar", [LiesInBeaverNorms, LiesInBeaverValidity, LiesInEps, LiesInNorms])
@pytest.mark.parametrize("n", [5, 6], ids=["k=2t-1", "k=2t"])
def test_a_norm_liar_at_2t_minus_1_or_2t_nodes_is_corrected_and_named(liar, n):
    federation = _federation({3: liar}, n=n)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=6)
    result = federation.run_round(1, updates, reference)
    assert result.mode == "beaver"
    _assert_honest_devices_kept(result, updates, reference)
    _, weights = plaintext_aggregate(updates, reference)
    assert result.decision_of(0).weight == pytest.approx(weights[0], abs=1e-4)
    # LiesInNorms lies in an honest-majority share nobody asks for in Beaver mode
    assert result.liars == (() if liar is LiesInNorms else (3,))


def test_a_norm_liar_at_2t_minus_1_nodes_is_named_on_chain():
    from ppbfl.protocol.ledger import open_ledger

    with open_ledger("embedded", T, N, devices=M) as ledger:
        federation = _federation({3: LiesInBeaverNorms}, ledger=ledger)
        updates, reference = synthetic_round(M, D, MALICIOUS, seed=6)
        result = federation.run_round(1, updates, reference)
        assert result.liars == (3,) and ledger.contract.round_state(1).reported_liars == (3,)
        _assert_honest_devices_kept(result, updates, reference)


def test_a_relay_that_opens_honest_majority_norms_below_2t_plus_1_is_refused_by_nodes_that_require_beaver():
    # the mode is the relay's choice; a relay colluding with the norm liar picks honest majority at
    # k = 2t - 1 so that the lie goes unseen. Nodes whose operator kept norms = "auto" refuse it.
    federation = _federation({3: LiesInNorms}, norms="honest-majority", decision_rule=DecisionRule())
    with pytest.raises(NotEnoughEdgeNodesError, match="aggregate"):
        federation.run_round(1, *synthetic_round(M, D, MALICIOUS, seed=6))
    refused = {j: why for j, why in federation.coordinator.dropped.items() if "operator requires 7" in why}
    assert sorted(refused) == [1, 2, 4, 5]  # every honest node; the liar (no operator rule) would go on


def test_with_honest_majority_norms_at_2t_minus_1_nodes_a_norm_liar_goes_unseen():
    # the documented limit of norms = "honest-majority": the degree-2(t - 1) sharing has no
    # redundancy at k = 2t - 1, so device 0's opened norm is off and nobody is named
    federation = _federation({3: LiesInNorms}, norms="honest-majority")
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=6)
    result = federation.run_round(1, updates, reference)
    honest = federation.coordinator.safe.encode(updates[0])
    exact = int(np.dot(honest.astype(object), honest.astype(object))) % federation.coordinator.field.p  # the honest ||g_0||^2
    assert result.mode == "honest-majority" and result.liars == ()
    assert int(result.decision.norm2[0]) != exact


class MixingRelay(CountingRelay):
    """Sends edge-1 a verify request with another reference than the other nodes'."""

    def call(self, party, message, **kwargs):
        if isinstance(message, VerifyRequest) and party == edge_party(1):
            reference = message.reference.copy()
            reference[0] = (reference[0] + np.uint64(1)) % np.uint64(GF61.p)
            message = dataclasses.replace(message, reference=reference)
        return super().call(party, message, **kwargs)


def test_replies_to_different_verify_requests_are_refused_by_every_node_naming_the_relay():
    # not prevented (each node answered its own request), but no node opens anything of the mix
    federation = _federation({}, relay=MixingRelay)
    unchecked(federation.coordinator)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=15)
    with pytest.raises(NotEnoughEdgeNodesError, match="aggregate"):
        federation.run_round(1, updates, reference)
    dropped = federation.coordinator.dropped
    assert sorted(dropped) == list(range(1, N + 1))
    assert all("peer coordinator" in why and "did not sign" in why for why in dropped.values())
