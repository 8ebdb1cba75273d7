"""Attacks on keys and relayed values (issue 12, item 1): the coordinator relays, holds no key, alters nothing.

The coordinator is untrusted: it sees every setup message and may rewrite any of them. The edge
nodes draw the PRZS set keys themselves (:mod:`ppbfl.protocol.przs_setup`); a coordinator that
substitutes a node's X25519 offer, relays another node's offer or a certificate nobody registered,
or tampers with, relabels or withholds a sealed key, is refused by the nodes, which name it.
Every value a node sends its peers through the coordinator (its ``VerifyShares`` and, in Beaver
mode, ``NormShares``, inside the ``AggregateRequest``) is signed by it; a relay that alters one is
refused by every node, which names it. The relay below is a test wrapper around the
coordinator's transport (a man in the middle).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ppbfl.field.prime_field import GF61
from ppbfl.protocol import signed_shares
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.edge_node import DEALER_PARTY, EdgeNode
from ppbfl.protocol.errors import PeerAuthError, RemoteError
from ppbfl.protocol.messages import (
    AggregateRequest,
    PRZSDeliver,
    PRZSPeers,
    SetupEdge,
    TripleRequest,
    TripleShares,
    VerifyRequest,
)
from ppbfl.protocol.przs_setup import offer_payload
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, OutOfPhaseError
from ppbfl.protocol.tls import issue, make_ca
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.wire import Envelope, Message

T, N, D = 3, 5, 4
P = GF61.p


class Relay:
    """The coordinator's transport with a man in the middle: ``tamper(party, message)`` rewrites each
    request before it leaves; ``seen`` records every request and reply byte string that passes."""

    def __init__(self, inner: Transport, tamper: Callable[[str, Message], Message] | None = None) -> None:
        self.inner, self.tamper, self.seen = inner, tamper, []
        deliver = inner.call_bytes  # type: ignore[attr-defined]

        def record(party: str, data: bytes, *, timeout: float) -> bytes:
            reply = deliver(party, data, timeout=timeout)
            self.seen += [data, reply]
            return reply

        inner.call_bytes = record  # type: ignore[attr-defined]

    def call(self, party: str, message: Message, **kwargs) -> Envelope:
        if self.tamper is not None:
            message = self.tamper(party, message)
        return self.inner.call(party, message, **kwargs)

    def close(self) -> None:
        self.inner.close()


def _lagrange_at_zero(points: dict[int, int]) -> int:
    """The value at 0 of the polynomial through ``points`` (x -> y mod p), with Python ints."""
    total = 0
    for x, y in points.items():
        weight = 1
        for other in points:
            if other != x:
                weight = weight * other % P * pow(other - x, -1, P) % P
        total = (total + y * weight) % P
    return total


def _setup(deployment: InProcessDeployment, tamper=None, t: int = T, n: int = N) -> tuple[Coordinator, Relay]:
    relay = Relay(deployment.coordinator, tamper)
    return Coordinator(t, n, D, relay), relay


def test_member_agreed_keys_share_zero_on_a_degree_2t_2_polynomial():
    with InProcessDeployment(T, N, D) as deployment:
        coordinator, _ = _setup(deployment)
        assert coordinator.setup() == tuple(range(1, N + 1))
        shares = {j: deployment.nodes[f"edge-{j}"].przs.zero_share(11, 3) for j in range(1, N + 1)}
        coordinator.close()
    for k in range(3):
        column = {j: int(shares[j][k]) for j in shares}
        assert _lagrange_at_zero(column) == 0  # all five points: a sharing of 0
        first = dict(list(column.items())[: 2 * T - 1])  # degree 2(t - 1): 2t - 1 points fix it
        assert _lagrange_at_zero(first) == 0
        assert len(set(column.values())) == N  # and not the zero polynomial


def test_keys_are_agreed_among_the_nodes_online_at_setup():
    t = 2  # 4 nodes online >= 2t - 1: the zero-sharing is checkable
    with InProcessDeployment(t, N, D) as deployment:
        deployment.stop_edge(1)  # the lowest node (leader of every set it is in) is away
        coordinator, _ = _setup(deployment, t=t)
        assert coordinator.setup() == (2, 3, 4, 5)
        shares = {j: int(deployment.nodes[f"edge-{j}"].przs.zero_share(5)[0]) for j in (2, 3, 4, 5)}
        coordinator.close()
    assert _lagrange_at_zero(shares) == 0
    assert _lagrange_at_zero(dict(list(shares.items())[:-1])) == 0  # 2t - 1 points fix degree 2(t - 1)


def test_a_node_lost_after_its_offer_is_left_out_and_the_others_agree_again():
    """edge-1 (leader of every set it is in) goes away after offering: its sets' keys never come, so
    the coordinator runs the agreement once more among the nodes that sealed theirs."""
    t = 2
    with InProcessDeployment(t, N, D) as deployment:

        def lose_edge_1(party: str, message: Message) -> Message:
            if isinstance(message, PRZSPeers) and party == "edge-1":
                deployment.stop_edge(1)
            return message

        coordinator, _ = _setup(deployment, lose_edge_1, t=t)
        assert coordinator.setup() == (2, 3, 4, 5)
        assert list(coordinator.dropped) == [1]
        shares = {j: int(deployment.nodes[f"edge-{j}"].przs.zero_share(9)[0]) for j in (2, 3, 4, 5)}
        coordinator.close()
    assert _lagrange_at_zero(shares) == 0
    assert _lagrange_at_zero(dict(list(shares.items())[:-1])) == 0


def test_no_przs_key_passes_through_the_coordinator():
    with InProcessDeployment(T, N, D) as deployment:
        coordinator, relay = _setup(deployment)
        coordinator.setup()
        keys = {key for node in deployment.nodes.values() for key in node.przs.keys.values()}
        coordinator.close()
    assert len(keys) == 10  # C(5, 3) sets, one key each
    assert relay.seen and not any(key in blob for blob in relay.seen for key in keys)


def _swap_key(party: str, message: Message) -> Message:
    """Offer the coordinator's own X25519 key as edge-2's (to everyone but edge-2), keeping edge-2's signature."""
    if isinstance(message, PRZSPeers) and party != "edge-2":
        mine = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        keys = list(message.public_keys)
        keys[message.indices.index(2)] = mine
        return dataclasses.replace(message, public_keys=keys)
    return message


def _replay_other_offer(party: str, message: Message) -> Message:
    """Relay edge-3's (validly signed) offer as edge-2's."""
    if isinstance(message, PRZSPeers) and party != "edge-2":
        two, three = message.indices.index(2), message.indices.index(3)
        fields = {}
        for name in ("public_keys", "certificates", "signatures"):
            values = list(getattr(message, name))
            values[two] = values[three]
            fields[name] = values
        return dataclasses.replace(message, **fields)
    return message


_ROGUE = issue(make_ca("rogue CA"), "edge-2")
_SESSION: dict[str, bytes] = {}


def _unregistered_certificate(party: str, message: Message) -> Message:
    """Offer the coordinator's key as edge-2's, validly signed with a certificate named edge-2 that nobody registered."""
    if isinstance(message, SetupEdge):
        _SESSION["id"] = message.session
    if isinstance(message, PRZSPeers) and party != "edge-2":
        mine = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signature = _ROGUE.key.sign(offer_payload(_SESSION["id"], 2, T, N, mine), ec.ECDSA(hashes.SHA256()))
        k = message.indices.index(2)
        replaced = {name: list(getattr(message, name)) for name in ("public_keys", "certificates", "signatures")}
        replaced["public_keys"][k], replaced["certificates"][k], replaced["signatures"][k] = mine, _ROGUE.cert_pem, signature
        return dataclasses.replace(message, **replaced)
    return message


def _setup_fails(deployment: InProcessDeployment, tamper) -> dict[int, str]:
    """Run the key agreement through a relay that applies ``tamper``; it must end with fewer than
    t nodes. Returns the nodes dropped (index -> reason)."""
    coordinator, _ = _setup(deployment, tamper)
    with pytest.raises(NotEnoughEdgeNodesError):
        coordinator.setup()
    dropped = dict(coordinator.dropped)
    coordinator.close()
    return dropped


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (_swap_key, "signature does not verify"),
        (_replay_other_offer, "registered to edge-3"),
        (_unregistered_certificate, "registered to nobody"),
    ],
    ids=["swapped-key", "replayed-offer", "unregistered-certificate"],
)
def test_a_substituted_offer_is_refused_naming_the_relay(tamper, why):
    with InProcessDeployment(T, N, D) as deployment:
        dropped = _setup_fails(deployment, tamper)
        assert all(node.przs is None for node in deployment.nodes.values())  # nobody holds keys the relay chose
    assert sorted(dropped) == [1, 3, 4, 5]  # every node shown the substitute refused
    for reason in dropped.values():
        assert reason.startswith("PeerAuthError") and "peer coordinator" in reason and "edge-2" in reason and why in reason


def test_a_node_that_signs_a_low_order_key_is_named():
    """A malicious edge-2 (modelled with its own key) offers the zero point: X25519 with it gives 0."""
    session: dict[str, bytes] = {}

    def low_order(party: str, message: Message) -> Message:
        if isinstance(message, SetupEdge):
            session["id"] = message.session
        if isinstance(message, PRZSPeers) and party != "edge-2":
            k = message.indices.index(2)
            keys, signatures = list(message.public_keys), list(message.signatures)
            keys[k] = bytes(32)
            signatures[k] = deployment.creds["edge-2"].key.sign(offer_payload(session["id"], 2, T, N, bytes(32)), ec.ECDSA(hashes.SHA256()))
            return dataclasses.replace(message, public_keys=keys, signatures=signatures)
        return message

    with InProcessDeployment(T, N, D) as deployment:
        dropped = _setup_fails(deployment, low_order)
    assert sorted(dropped) == [1, 3, 4, 5]
    assert all("peer edge-2" in reason and "low-order" in reason for reason in dropped.values())


def _on_deliver_to_edge_3(change: Callable[[PRZSDeliver], PRZSDeliver]) -> Callable[[str, Message], Message]:
    def tamper(party: str, message: Message) -> Message:
        return change(message) if isinstance(message, PRZSDeliver) and party == "edge-3" else message

    return tamper


def _flip(message: PRZSDeliver) -> PRZSDeliver:
    sealed = list(message.ciphertexts)
    sealed[0] = sealed[0][:-1] + bytes([sealed[0][-1] ^ 1])
    return dataclasses.replace(message, ciphertexts=sealed)


def _relabel(message: PRZSDeliver) -> PRZSDeliver:
    """Swap the set labels of two keys from the same leader (each then opens under the wrong set)."""
    senders = list(message.senders)
    k, m = next((k, m) for k in range(len(senders)) for m in range(k + 1, len(senders)) if senders[k] == senders[m])
    sets = list(message.sets)
    sets[k], sets[m] = sets[m], sets[k]
    return dataclasses.replace(message, sets=sets)


def _withhold(message: PRZSDeliver) -> PRZSDeliver:
    return dataclasses.replace(message, sets=message.sets[1:], senders=message.senders[1:], ciphertexts=message.ciphertexts[1:])


def _claim_other_sender(message: PRZSDeliver) -> PRZSDeliver:
    senders = list(message.senders)
    senders[0] = 5 if senders[0] != 5 else 4
    return dataclasses.replace(message, senders=senders)


@pytest.mark.parametrize(
    ("change", "why"),
    [(_flip, "does not authenticate"), (_relabel, "does not authenticate"), (_withhold, "withheld"), (_claim_other_sender, "does not lead")],
    ids=["flipped-bit", "relabelled-set", "withheld", "other-sender"],
)
def test_a_tampered_sealed_key_is_refused_naming_the_relay(change, why):
    with InProcessDeployment(T, N, D) as deployment:
        coordinator, _ = _setup(deployment, _on_deliver_to_edge_3(change))
        assert coordinator.setup() == (1, 2, 4, 5)  # the others complete: 4 >= t nodes
        dropped = dict(coordinator.dropped)
        coordinator.close()
        assert deployment.nodes["edge-3"].przs is None
    assert list(dropped) == [3]
    assert dropped[3].startswith("PeerAuthError") and "peer coordinator" in dropped[3] and why in dropped[3]


def test_an_edge_node_without_an_identity_refuses_setup():
    node = EdgeNode()
    setup = SetupEdge(index=1, t=T, n=N, d=D, frac_bits=16, tau=0.0, validity_k=40, session=bytes(32))
    with pytest.raises(OutOfPhaseError, match="no TLS identity"):
        node.handle(Envelope("coordinator", 0, setup))


def test_dealt_triples_never_pass_through_the_coordinator():
    """Item 2: the dealer sends each node its triples over its own channel (already so before this change)."""
    with InProcessDeployment(T, N, D) as deployment:
        coordinator, relay = _setup(deployment)
        coordinator.setup()
        relay.call(DEALER_PARTY, TripleRequest(2, coordinator.validity.proof_length, list(range(1, N + 1))), round=1, timeout=5, context={"d": D, "p": P})
        held = [deployment.nodes[f"edge-{j}"].rounds[1].triples for j in range(1, N + 1)]
        coordinator.close()
    assert all(triples is not None and triples[0].shape == (2, D) for triples in held)
    kind = TripleShares.KIND.encode()
    assert not any(kind in blob for blob in relay.seen)
    assert not any(np.ascontiguousarray(triples[0]).tobytes() in blob for triples in held for blob in relay.seen)


def test_a_setup_with_too_many_przs_sets_is_refused_at_once():
    with InProcessDeployment(T, N, D) as deployment:
        setup = SetupEdge(index=1, t=16, n=31, d=D, frac_bits=16, tau=0.0, validity_k=40, session=bytes(32))  # C(30, 15) sets
        start = time.perf_counter()
        with pytest.raises(RemoteError, match="more than 4096 PRZS sets"):
            deployment.coordinator.call("edge-1", setup, round=0, timeout=5)
        assert time.perf_counter() - start < 1.0
        assert deployment.nodes["edge-1"].setup is None


def _run_round(tamper, norms: str = "auto") -> tuple[Coordinator, Exception | None]:
    """One round of 3 devices through a relay that applies ``tamper``: the coordinator after it, and its error."""
    m = 3
    reference = np.array([0.01, -0.02, 0.03, 0.005])
    updates = {i: reference * (1 + 0.1 * i) for i in range(m)}  # all along the reference: all accepted
    deployment = InProcessDeployment(T, N, D)
    coordinator = Coordinator(T, N, D, Relay(deployment.coordinator, tamper), norms=norms)  # type: ignore[arg-type]
    coordinator.setup()
    announcement = coordinator.open_round(1)
    devices = [Device(i, T, N, coordinator.codec, transport=deployment.device_transport(i)) for i in range(m)]
    for i, device in enumerate(devices):
        device.submit(announcement, updates[i])
    challenge = coordinator.challenge(1)
    for device in devices:
        device.prove(challenge)
    try:
        result = coordinator.finish_round(1, reference)
    except NotEnoughEdgeNodesError as error:
        return coordinator, error
    finally:
        coordinator.close()
    assert result.accepted == list(range(m)), result.rejected
    return coordinator, None


def _alter_row(name: str, node: int) -> Callable[[str, Message], Message]:
    """Add 1 to node ``node``'s first share in the relayed ``name`` rows."""

    def tamper(party: str, message: Message) -> Message:
        if not isinstance(message, AggregateRequest):
            return message
        rows = getattr(message, name).copy()
        row = message.points.index(node)
        rows[row, 0] = (int(rows[row, 0]) + 1) % P
        return dataclasses.replace(message, **{name: rows})

    return tamper


def _swap_rows(party: str, message: Message) -> Message:
    """Attribute edge-1's verify shares to edge-2 and the reverse (each node's signature stays on its row)."""
    if not isinstance(message, AggregateRequest):
        return message
    order = list(range(len(message.points)))
    order[0], order[1] = 1, 0
    return dataclasses.replace(message, **{name: getattr(message, name)[order] for name in ("consistency", "dot_ref", "norm2", "proof_consistency", "validity")})


@pytest.mark.parametrize(
    ("tamper", "norms", "what"),
    [
        (_alter_row("dot_ref", 2), "honest-majority", "verify shares of edge-2"),
        (_alter_row("norm2", 2), "honest-majority", "norm2 shares of edge-2"),
        (_swap_rows, "honest-majority", "shares of edge-1"),
        (_alter_row("norm2", 2), "beaver", "norm shares of edge-2"),
        (_alter_row("validity", 2), "beaver", "norm shares of edge-2"),
    ],
    ids=["dot-ref", "hm-norm2", "swapped-nodes", "beaver-norm2", "beaver-validity"],
)
def test_a_relayed_value_the_coordinator_altered_is_refused_naming_it(tamper, norms, what):
    coordinator, error = _run_round(tamper, norms)
    assert error is not None and "aggregate" in str(error)
    assert sorted(coordinator.dropped) == list(range(1, N + 1))  # every node refuses the altered request
    for reason in coordinator.dropped.values():
        assert reason.startswith("PeerAuthError") and "peer coordinator" in reason and what in reason and "did not sign" in reason


def test_relayed_values_reach_the_nodes_signed_and_unaltered_in_an_honest_round():
    for norms in ("auto", "honest-majority", "beaver"):
        coordinator, error = _run_round(None, norms)
        assert error is None and not coordinator.dropped


def _replace_coin(party: str, message: Message) -> Message:
    """Relay a coin of the coordinator's choice as edge-2's (to grind the proof checks' coins)."""
    if isinstance(message, VerifyRequest):
        coins = list(message.coins)
        coins[message.coin_nodes.index(2)] = b"\x07" * 32
        return dataclasses.replace(message, coins=coins)
    return message


def test_a_relayed_coin_the_coordinator_chose_is_refused_naming_it():
    coordinator, error = _run_round(_replace_coin)
    assert error is not None and "verify" in str(error)
    dropped = dict(coordinator.dropped)
    assert "this node's coin" in dropped.pop(2)  # edge-2 finds its own coin changed
    assert sorted(dropped) == [1, 3, 4, 5]
    for reason in dropped.values():
        assert reason.startswith("PeerAuthError") and "peer coordinator" in reason and "coin of edge-2 that it did not sign" in reason


def test_a_relay_that_hides_a_signed_mismatch_is_refused():
    """A node's signed ``mismatched`` list must be inside the relayed ``rejected`` (else a device whose
    upload does not match its commitment could be let in by dropping the claim)."""
    key = ec.generate_private_key(ec.SECP256R1())
    rows = np.arange(3, dtype=np.uint64).reshape(1, 3)
    norm2_hash = signed_shares.field_hash(rows[0])
    digest = signed_shares.verify_digest(
        bytes(32), 1, 1, consistency=rows[0], dot_ref=rows[0], norm2_hash=norm2_hash, proof_consistency=rows[0], validity_hash=norm2_hash, request=bytes(32),
        mismatched=[2],
    )
    signature = signed_shares.sign(key, digest)

    def request(rejected: list[int]) -> AggregateRequest:
        return AggregateRequest(
            [1], rows, rows, rows, 4, np.ones(3), rejected, rows, rows, [signature], [norm2_hash], [[2]], [], []
        )

    check = dict(session=bytes(32), round=1, keys={1: key.public_key()}, relay="coordinator", me="edge-2", columns=[], verified=bytes(32))
    signed_shares.check_relayed(request([2]), **check)  # as signed: accepted
    with pytest.raises(PeerAuthError, match=r"peer coordinator.*left devices at positions \[2\]"):
        signed_shares.check_relayed(request([]), **check)
    with pytest.raises(PeerAuthError, match="did not sign"):
        signed_shares.check_relayed(request([2]), **{**check, "round": 2})  # replayed into another round
