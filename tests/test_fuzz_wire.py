"""Issue 12, "nothing wedges a round": mutated messages at the wire codec and at a live edge node.

* :func:`test_decode_raises_only_message_error_on_mutated_messages`: 20,000 mutants of valid
  messages of every registered kind (:mod:`tests.fuzzing`) at :func:`ppbfl.protocol.wire.decode`:
  each is a decoded message (which re-encodes) or a ``MessageError``, within a wall-clock bound.
* :func:`test_a_live_edge_node_answers_mutated_messages_with_typed_errors_and_serves_the_next_round`:
  2,000 mutants sent over gRPC + mutual TLS to one edge-node process, as a registered device and
  as the coordinator: every answer is a valid reply or a typed error, none hangs, the process stays
  up, and the next round completes with every device and every node.

The seed is ``PPBFL_FUZZ_SEED`` (default fixed, so CI is reproducible) and is printed; a failure
prints the seed, the mutant's index and mutations and the input's hex. ``benchmarks/fuzz_wire.py``
runs the same fuzzer longer.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.errors import PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.messages import PRZSOffer
from ppbfl.protocol.parties import COORDINATOR_PARTY, device_party, edge_party
from ppbfl.protocol.przs_setup import offer_payload
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.tls import issue, make_ca
from ppbfl.protocol.wire import decode
from tests.fuzzing import (
    Hang,
    P,
    Sizes,
    corpus,
    decode_outcome,
    field_specs,
    fuzz_decode,
    fuzz_live,
    registered_kinds,
    wall_clock_limit,
    wild_value,
)
from tests.protocol_helpers import change_replies, synthetic_round

SEED = int(os.environ.get("PPBFL_FUZZ_SEED", "20261202"))
DECODE_MUTANTS = 20_000
LIVE_MUTANTS = 2_000
HANG_S = 2.0
"""Per-message wall-clock bound of a decode (the median is ~0.1 ms; 2 s leaves room for a loaded machine)."""
TOTAL_S = 240.0
"""Bound on the whole decode campaign (6-18 s measured on 2 shared cores)."""
CALL_TIMEOUT_S = 10.0
T, N, D, M = 2, 3, 8, 3


def test_the_corpus_holds_every_registered_kind():
    rng = np.random.default_rng(SEED)
    kinds = {decode(data, context={"d": 16, "p": P}).message.KIND for data in corpus(rng)}
    assert kinds == set(registered_kinds())
    assert {"device_upload", "verify_request", "aggregate_request", "setup_edge", "trust_catch_up"} <= kinds


def test_decode_raises_only_message_error_on_mutated_messages():
    print(f"fuzz seed {SEED} (PPBFL_FUZZ_SEED)")
    report = fuzz_decode(SEED, DECODE_MUTANTS, hang_s=HANG_S)
    print(report.summary())
    assert not report.findings, f"{len(report.findings)} untyped exception(s) or hang(s); first:\n" + "\n\n".join(
        f.describe(SEED) for f in report.findings[:3]
    )
    assert report.count == DECODE_MUTANTS and report.decoded + report.rejected == DECODE_MUTANTS
    assert report.slowest < HANG_S and report.seconds < TOTAL_S
    # the mutants reach past the msgpack layer: many decode, and the refusals name many fields
    decoded_kinds = {k for k in report.outcomes if k.startswith("decoded")}
    assert report.decoded > DECODE_MUTANTS // 20 and len(decoded_kinds) == len(registered_kinds())
    assert len({k for k in report.outcomes if k.startswith("MessageError field")}) >= 15
    for where in ("<bytes>", "<envelope>", "v", "kind", "sender", "round", "body"):
        assert any(k.startswith(f"MessageError {where}:") for k in report.outcomes), where


def test_the_fuzzer_reports_an_untyped_exception_and_a_hang():
    """Negative control: a decode that raises ValueError on some inputs, or stalls, is reported with
    the seed, the input's hex and the traceback."""

    def broken(data, context):
        if data[:1] == b"\x85" and len(data) % 7 == 0:
            raise ValueError("not a MessageError")
        if len(data) % 101 == 0:
            time.sleep(0.5)
        return decode_outcome(data, context)

    report = fuzz_decode(SEED, 400, hang_s=0.2, outcome_of=broken)
    errors = Counter(f.error.split(":")[0] for f in report.findings)
    assert errors["ValueError"] > 0 and errors["Hang"] > 0
    first = report.findings[0].describe(SEED)
    assert f"seed {SEED}" in first and report.findings[0].data.hex() in first and "Traceback" in first
    with pytest.raises(Hang), wall_clock_limit(0.05):
        time.sleep(1)


def _transport(deployment: GrpcDeployment, party: str) -> GrpcTransport:
    """``party``'s own channel to edge node 1, no retries (a timeout is a hang, not a retry)."""
    target = edge_party(1)
    return GrpcTransport(
        party, deployment.creds[party], deployment.ca.cert_pem, {target: deployment.peers[target]},
        fingerprints={target: deployment.fingerprints[target]}, retries=0,
    )


def test_a_live_edge_node_answers_mutated_messages_with_typed_errors_and_serves_the_next_round():
    """Edge node 1 in its own process, set up and after a completed round 1, gets 2,000 mutants as
    device 0 (round 2, the next one) and as the coordinator (round 1; a valid setup or a valid
    message for a later round is the relay's own power to re-key or move the node, so those
    mutants are not sent). Then round 2 runs with every device and node."""
    print(f"fuzz seed {SEED} (PPBFL_FUZZ_SEED)")
    with GrpcDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0)
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, set(), seed=1)
            assert sorted(federation.run_round(1, updates, reference).accepted) == list(range(M))

            transports = {party: _transport(deployment, party) for party in (COORDINATOR_PARTY, device_party(0))}
            try:
                report = fuzz_live(
                    transports, edge_party(1), SEED, LIVE_MUTANTS, sizes=Sizes(d=D, n=N),
                    rounds={COORDINATOR_PARTY: 1, device_party(0): 2}, done_round=1, timeout=CALL_TIMEOUT_S,
                )
            finally:
                for transport in transports.values():
                    transport.close()
            print(report.summary(edge_party(1)))
            assert report.count == LIVE_MUTANTS and report.slowest < CALL_TIMEOUT_S
            assert sum(n for k, n in report.outcomes.items() if k.startswith("reply")) >= 10  # some reach a handler and are served
            assert report.outcomes["RemoteError OutOfPhaseError"] >= 50 and report.outcomes["RemoteError MessageError"] >= LIVE_MUTANTS // 4
            assert deployment.processes[edge_party(1)].alive()

            updates, reference = synthetic_round(M, D, set(), seed=2)
            result = federation.run_round(2, updates, reference)
            assert sorted(result.accepted) == list(range(M)) and result.online == (1, 2, 3)
            assert not result.dropped and not result.liars and not result.missing


# ---------------------------------------------------------------------------------------------
# wrong replies of one edge node at the coordinator
# ---------------------------------------------------------------------------------------------

RT, RN = 2, 4
"""A tier where one node may fail: (t, n) = (2, 4), Beaver norms (k < 2t + 1) with the dealer."""


class _WrongReplies:
    """Edge node 1 (wrapping ``inner``), answering its first reply of kind ``kind`` with ``change(reply)`` instead."""

    def __init__(self, inner, kind, change):
        self.inner, self.kind, self.change, self.changed = inner, kind, change, None

    @property
    def context(self):
        return self.inner.context

    def handle(self, envelope):
        reply = self.inner.handle(envelope)
        if self.kind == reply.KIND and self.changed is None:
            reply, self.changed = self.change(reply), reply.KIND
        return reply


def _round_with_node_1(change_kind, change, seed=0, rule="cosine", **options):
    """Round 1 of a (2, 4) in-process tier under ``rule`` whose node 1 answers with ``change``; the
    RoundResult (``options``: more arguments of the :class:`Coordinator`)."""
    deployment = InProcessDeployment(RT, RN, D)
    liar = _WrongReplies(deployment.nodes[edge_party(1)], change_kind, change)
    deployment._edges[edge_party(1)] = deployment._handlers[edge_party(1)] = liar
    coordinator = Coordinator(RT, RN, D, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0, rule=rule, **options)
    with Federation(deployment, coordinator, range(M)) as federation:
        updates, reference = synthetic_round(M, D, set(), seed=seed)
        result = federation.run_round(1, updates, reference)
    assert liar.changed == change_kind  # the reply was sent changed
    return result


def _longer(field):
    def change(reply):
        value = getattr(reply, field)
        return dataclasses.replace(reply, **{field: np.concatenate([value, np.zeros((1, *value.shape[1:]), dtype=value.dtype)])})
    return change


@pytest.mark.parametrize(
    "kind, field",
    [("verify_shares", "consistency"), ("verify_shares", "proof_consistency"), ("verify_shares", "dot_ref"),
     ("beaver_masked", "eps"), ("beaver_masked", "proof_eps"), ("eps_check", "checks"), ("norm_shares", "validity"),
     ("gram_shares", "gram")],
)
def test_a_reply_of_the_wrong_shape_drops_its_node_with_a_typed_reason(kind, field):
    """Found by the reply fuzzer: one row too many in one node's reply crashed the coordinator's
    round with an untyped ``ValueError`` (``np.stack``: all input arrays must have the same shape).
    Now the node is dropped with a MessageError naming it and the field, and the round completes
    with the other three nodes and every device (``GramShares``: under rule ``"flame"``)."""
    rule = "flame" if kind == "gram_shares" else "cosine"
    result = _round_with_node_1(kind, _longer(field), rule=rule)
    assert result.dropped.keys() == {1} and result.online == (2, 3, 4)
    assert result.dropped[1].startswith(f"MessageError: message from edge-1: field '{field}': shape")
    honest = _round_with_node_1(kind, lambda reply: reply, rule=rule)  # the same round, node 1 honest
    assert not honest.dropped
    assert [(d.reason, d.weight) for d in result.decision.decisions] == [(d.reason, d.weight) for d in honest.decision.decisions]
    assert sorted(result.accepted) == (list(range(M)) if rule == "cosine" else sorted(honest.accepted))


def test_the_same_round_with_an_unchanged_reply_keeps_every_node():
    """Negative control of the test above: the wrapper changes nothing, nobody is dropped."""
    result = _round_with_node_1("verify_shares", lambda reply: reply)
    assert not result.dropped and result.online == (1, 2, 3, 4) and sorted(result.accepted) == list(range(M))


REPLY_KINDS = ("uploads_report", "verify_shares", "beaver_masked", "eps_check", "norm_shares", "aggregate_share", "ack")


def test_wild_replies_of_one_edge_node_end_in_a_round_or_a_typed_error():
    """One field of one of node 1's replies replaced by a schema-valid wild value
    (:func:`tests.fuzzing.wild_value`: other lengths, boundary values), 3 times per reply kind:
    every round completes or fails with a ppbfl error (never an untyped exception). The outcomes
    (printed) include rounds that complete without node 1 (e.g. a wrong signature: the coordinator
    checks it and drops node 1, docs/security.md)."""
    rng = np.random.default_rng(SEED)
    outcomes: Counter = Counter()
    for trial in range(3 * len(REPLY_KINDS)):
        kind = REPLY_KINDS[trial % len(REPLY_KINDS)]
        chosen: list[str] = []

        def change(reply, chosen=chosen):
            specs = field_specs(type(reply))
            name, spec, _ = specs[int(rng.integers(len(specs)))]
            sizes = Sizes(d=D, m=int(rng.integers(0, 6)), k=int(rng.integers(0, 6)), n=RN)
            chosen.append(name)
            return dataclasses.replace(reply, **{name: wild_value(spec, name, rng, sizes)})

        try:
            result = _round_with_node_1(kind, change, seed=trial)
            outcomes[f"{kind}.{chosen[0]}: completed, dropped {sorted(result.dropped)}"] += 1
        except PPBFLError as error:
            outcomes[f"{kind}.{chosen[0]}: {type(error).__name__}"] += 1
        except Exception as error:
            raise AssertionError(f"seed {SEED}, trial {trial}: {kind}.{chosen}: untyped {type(error).__name__}: {error}") from error
    print(dict(outcomes))
    assert sum(outcomes.values()) == 3 * len(REPLY_KINDS)


SIGNED = [
    ("przs_offer", "signature", {}), ("uploads_report", "coin_signature", {}), ("request_endorsement", "signature", {"request_endorsements": True}),
    ("verify_shares", "signature", {}), ("eps_check", "signature", {}), ("norm_shares", "signature", {}),
    ("gram_shares", "signature", {"rule": "flame"}),
]
"""Every signed value of a node that its peers check, with the coordinator options under which it is sent."""


@pytest.mark.parametrize("kind, field, options", SIGNED, ids=[kind for kind, _, _ in SIGNED])
def test_one_nodes_bad_signature_drops_only_that_node_and_the_round_completes(kind, field, options):
    """Found by the reply fuzzer (docs/security.md, Edge nodes): the coordinator relayed a node's
    signed values unchecked, every honest node then refused the relayed rows (``PeerAuthError``
    naming the relay) and was dropped, so one node's bad signature failed the whole round with
    nobody named. Now the coordinator checks each signature with the peers' digest and key before
    it relays: node 1 alone is dropped, named with a typed reason and the field, and the round
    completes with nodes 2, 3, 4 and every device (a bad PRZS offer: node 1 is left out of the setup)."""
    result = _round_with_node_1(kind, lambda reply: dataclasses.replace(reply, **{field: b"\x30" * 70}), **options)
    assert result.dropped.keys() == {1} and result.online == (2, 3, 4)
    assert result.dropped[1].startswith("PeerAuthError: peer edge-1: authentication failed:") and "signature" in result.dropped[1]
    if kind != "przs_offer":
        assert f"field {field!r} of its {kind}" in result.dropped[1]
    assert sorted(result.accepted) == list(range(M)) or options.get("rule") == "flame"
    assert result.accepted and not result.liars


@pytest.mark.parametrize("kind, field, options", SIGNED, ids=[kind for kind, _, _ in SIGNED])
def test_the_same_rounds_with_honest_signatures_drop_nobody(kind, field, options):
    """Negative control of the test above: node 1's reply unchanged (the coordinator's checks accept
    every honest signature, under every option the signed value is sent with), nobody is dropped."""
    result = _round_with_node_1(kind, lambda reply: reply, **options)
    assert not result.dropped and result.online == (1, 2, 3, 4) and not result.liars
    assert sorted(result.accepted) == list(range(M)) or options.get("rule") == "flame"


def _unregistered_offer():
    """Edge node 1's offer, validly signed, under a certificate named edge-1 that a rogue CA issued
    and nobody registered."""
    rogue = issue(make_ca("rogue CA"), edge_party(1))

    def change(envelope, reply):
        if isinstance(reply, PRZSOffer):
            payload = offer_payload(envelope.message.session, 1, RT, RN, reply.public_key)
            reply = PRZSOffer(reply.public_key, rogue.cert_pem, rogue.key.sign(payload, ec.ECDSA(hashes.SHA256())))
        return reply

    return change


def _low_order_offer(credentials):
    """Edge node 1's offer of the zero point as its X25519 key, signed with its own registered key:
    every pair key with it would be predictable."""

    def change(envelope, reply):
        if isinstance(reply, PRZSOffer):
            payload = offer_payload(envelope.message.session, 1, RT, RN, bytes(32))
            reply = PRZSOffer(bytes(32), reply.certificate, credentials.key.sign(payload, ec.ECDSA(hashes.SHA256())))
        return reply

    return change


def test_a_low_order_offer_drops_only_its_node_at_the_coordinator_and_the_round_completes():
    """Node 1 signs a low-order X25519 key (the zero point) with its registered key: every peer would
    refuse it and the setup would fail for everyone (tests/test_adversarial_keys.py shows the peers'
    check); the coordinator checks the point before it relays the offer, leaves node 1 out, named,
    and the round completes with nodes 2, 3, 4."""
    with InProcessDeployment(RT, RN, D) as deployment:
        change_replies(deployment, 1, _low_order_offer(deployment.creds[edge_party(1)]))
        coordinator = Coordinator(RT, RN, D, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0, registry=deployment.peer_registry())
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, set(), seed=0)
            result = federation.run_round(1, updates, reference)
    assert result.dropped.keys() == {1} and result.online == (2, 3, 4) and sorted(result.accepted) == list(range(M))
    assert result.dropped[1] == "PeerAuthError: peer edge-1: authentication failed: signed a PRZS offer with a low-order X25519 key"


@pytest.mark.parametrize("registry", [True, False], ids=["with-registry", "without-registry"])
def test_an_offer_under_an_unregistered_certificate_is_dropped_by_a_coordinator_given_the_registry(registry):
    """The one offer check that needs the registry: node 1's offer is validly signed, under a
    certificate nobody registered. A coordinator given the nodes' registry drops node 1 at setup,
    named, and the round completes with nodes 2, 3, 4; one without it (the default) relays the
    offer, every peer refuses it (naming the relay) and the setup fails (docs/security.md)."""
    with InProcessDeployment(RT, RN, D) as deployment:
        change_replies(deployment, 1, _unregistered_offer())
        coordinator = Coordinator(
            RT, RN, D, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0, registry=deployment.registry if registry else None,
        )
        if not registry:
            with pytest.raises(NotEnoughEdgeNodesError):
                coordinator.setup()
            assert all("peer coordinator" in why and "registered to nobody" in why for why in coordinator.dropped.values())
            coordinator.close()
            return
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, set(), seed=0)
            result = federation.run_round(1, updates, reference)
    assert result.dropped.keys() == {1} and result.online == (2, 3, 4) and sorted(result.accepted) == list(range(M))
    assert result.dropped[1] == "PeerAuthError: peer edge-1: authentication failed: sent a PRZS offer for edge-1 with a certificate registered to nobody"
