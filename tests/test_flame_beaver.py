"""FLAME's Gram matrix from Beaver triples (rule "flame" in Beaver mode, docs/flame.md "Modes").

At the default ``t = 3, n = 5`` (``k = 2t - 1`` nodes online) the honest-majority Gram sharing
(degree ``2(t - 1) = k - 1``) has no redundancy; in Beaver mode the dealer also deals the pair
products ``<a_r, a_s>`` of the square triples, every node turns the one opened ``g - a`` into
degree-``(t - 1)`` shares of every ``<g_i, g_j>``, and one lying node is corrected and named.
Oracles: brute-force integer Gram matrices (the dealer), the float FLAME oracle and the plaintext
twin (tests/test_flame.py), the relay's request counts (one ``BeaverOpen`` per node and round).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense.rule import DecisionRule
from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61
from ppbfl.fl.aggregators import AggregationContext, make_aggregator
from ppbfl.fl.detection import excluded_devices
from ppbfl.fl.federation import Federation
from ppbfl.mpc import deal_square_triples, gram_from_opened, sub
from ppbfl.mpc.beaver import masked_projections
from ppbfl.protocol import signed_shares
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import PeerAuthError, PeerUnavailableError, RemoteError
from ppbfl.protocol.flame_decision import pair_count
from ppbfl.protocol.messages import BeaverCheck, BeaverOpen, EpsCheck, GramShares, TripleShares
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, OutOfPhaseError
from ppbfl.sharing import share
from ppbfl.sharing.robust import robust_reconstruct
from tests.test_adversarial_attribution import CountingRelay, unchecked
from tests.test_flame import D, M, assert_twins, flame_oracle, updates
from tests.test_flame_models import backdoor_case, context

P = GF61.p
T, N = 3, 5  # the default tier: k = 5 = 2t - 1 nodes online
CODEC = FixedPointCodec(frac_bits=16, max_abs=64.0)


def _brute_gram(rows: np.ndarray) -> list[int]:
    """``<v_r, v_s> mod p`` for ``r < s`` in Python integers (row-major upper triangle)."""
    v = rows.astype(object)
    return [int(np.dot(v[r], v[s]) % P) for r in range(len(v)) for s in range(r + 1, len(v))]


def _opened(shares: np.ndarray, t: int) -> np.ndarray:
    """Open (n, ...) shares robustly, requiring every share on one degree-(t - 1) polynomial."""
    rows = shares.reshape(shares.shape[0], -1)
    result = robust_reconstruct(rows, list(range(1, shares.shape[0] + 1)), t)
    assert result.wrong_points == ()
    return result.secret.reshape(shares.shape[1:])


@settings(max_examples=20, deadline=None)
@given(t=st.integers(1, 4), extra=st.integers(0, 3), k=st.integers(1, 5), d=st.integers(1, 6), seed=st.integers(0, 2**32))
def test_dealt_pair_products_and_beaver_gram_open_to_the_brute_force_gram(t, extra, k, d, seed):
    n = t + extra
    rng = FieldRNG(seed.to_bytes(32, "little"))
    dealt = deal_square_triples(k, d, t, n, rng=rng, pairs=True)
    a = _opened(np.stack([s.a for s in dealt]), t)  # (k, d)
    assert all(s.pairs.shape == (pair_count(k),) for s in dealt)
    assert list(_opened(np.stack([s.pairs for s in dealt]), t)) == _brute_gram(a)
    assert list(_opened(np.stack([s.c for s in dealt]), t)) == [int(np.dot(r, r) % P) for r in a.astype(object)]
    # the parties' Gram shares of shared x from the one opening eps = x - a
    x = rng.random(k * d).reshape(k, d)
    x_shares = np.stack([share(row, t, n, rng=rng) for row in x], axis=1)  # (n, k, d)
    eps = _opened(np.stack([sub(x_shares[j], dealt[j].a) for j in range(n)]), t)
    gram = np.stack([gram_from_opened(eps, dealt[j].a, dealt[j].pairs) for j in range(n)])
    assert list(_opened(gram, t)) == _brute_gram(x)


@settings(max_examples=20, deadline=None)
@given(t=st.integers(1, 3), extra=st.integers(0, 3), k=st.integers(1, 4), d=st.integers(1, 6), width=st.integers(0, 4),
       seed=st.integers(0, 2**32), shift=st.integers(1, P - 1))
def test_eps_checks_of_the_shares_open_to_the_projection_of_eps_and_not_of_a_shifted_one(t, extra, k, d, width, seed, shift):
    n = t + extra
    rng = FieldRNG(seed.to_bytes(32, "little"))
    eps, proof = rng.random(k * d).reshape(k, d), rng.random(k * width).reshape(k, width)
    eps_shares = np.stack([share(row, t, n, rng=rng) for row in eps], axis=1)  # (n, k, d)
    proof_shares = np.stack([share(row, t, n, rng=rng) for row in proof], axis=1) if width else np.zeros((n, k, 0), dtype=np.uint64)
    key = seed.to_bytes(32, "big")
    checks = np.stack([masked_projections(eps_shares[j], proof_shares[j], key) for j in range(n)])
    opened = _opened(checks, t)
    assert list(opened) == list(masked_projections(eps, proof, key))
    shifted = eps.copy()  # one entry of the relayed eps off: its projection differs (rho has no zero entry w.h.p.)
    shifted[k - 1, d - 1] = (int(shifted[k - 1, d - 1]) + shift) % P
    assert masked_projections(shifted, proof, key)[k - 1] != opened[k - 1]


def test_without_pairs_the_dealer_deals_none():
    dealt = deal_square_triples(3, 4, 2, 3, pairs=False)
    assert all(s.pairs.shape == (0,) for s in dealt)


@pytest.mark.parametrize("seed, bad, kind", [(1, 3, "sign_flip"), (2, 4, "backdoor")])
def test_secure_flame_in_beaver_mode_decides_and_aggregates_as_its_plaintext_twin(seed, bad, kind):
    u = updates(seed, bad, kind)
    twin, plain = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(u, AggregationContext())
    secure = make_aggregator("ppbfl_flame", {"t": T, "n": N, "dot_mode": "beaver"})
    try:
        out, info = secure.aggregate(u, AggregationContext())
        assert secure._filter is not None and secure._filter.federation is not None
        assert secure._filter.federation.coordinator.norms == "beaver"
    finally:
        secure.close()
    assert_twins(out, info, twin, plain, u)
    assert set(info["accepted"]).isdisjoint(range(bad))
    assert excluded_devices("ppbfl_flame", info, M) == excluded_devices("flame", plain, M)


def test_secure_flame_on_models_in_beaver_mode_decides_and_aggregates_as_its_plaintext_twin():
    g, u = backdoor_case(0)
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    secure = make_aggregator("ppbfl_flame_models", {"t": T, "n": N, "dot_mode": "beaver"})
    try:
        out, info = secure.aggregate(u, context(g))
    finally:
        secure.close()
    assert_twins(out, info, twin, plain, u)
    assert set(plain["accepted"]).isdisjoint(range(3))  # the backdoor is out


def _federation(*, relay=None, ledger=None, norms="auto") -> Federation:
    """A (3, 5) FLAME tier with a dealer whose nodes' operators configured rule "flame" (norms "auto")."""
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, decision_rule=DecisionRule(rule="flame"))
    transport = deployment.coordinator if relay is None else relay(deployment.coordinator)
    coordinator = Coordinator(T, N, D, transport, codec=CODEC, ledger=ledger, device_keys=deployment.device_keys, norms=norms, rule="flame")
    coordinator.setup()
    return Federation(deployment, coordinator, range(M), ledger=ledger, owns_deployment=True, strict=False)


def _lie_in_gram(federation: Federation, j: int) -> None:
    """Node ``j`` adds 99 to every one of its Gram shares (and signs its lie)."""
    node = federation.deployment.nodes[edge_party(j)]
    honest = node._gram

    def lying(envelope, message):
        gram = ops.add(honest(envelope, message).gram, np.full(pair_count(M), 99, dtype=np.uint64))
        return GramShares(gram, node._sign(signed_shares.gram_digest(node._session, envelope.round, j, gram)))

    node._gram = lying


def _lie_in_eps(federation: Federation, j: int) -> None:
    """Node ``j`` adds 1 to its share of the first device's ``g - a`` (its one BeaverOpen reply)."""
    node = federation.deployment.nodes[edge_party(j)]
    honest = node._beaver_open

    def lying(envelope, message):
        reply = honest(envelope, message)
        reply.eps[0, 0] = (reply.eps[0, 0] + np.uint64(1)) % np.uint64(P)
        return reply

    node._beaver_open = lying


@pytest.mark.parametrize("lie", [_lie_in_gram, _lie_in_eps], ids=["gram", "eps"])
def test_a_liar_at_2t_minus_1_nodes_is_corrected_and_named_and_the_decisions_are_flames(lie):
    u = updates(1, 3)
    with _federation(relay=CountingRelay) as federation:
        lie(federation, 4)
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        relay = federation.coordinator.transport
    kept, expected, _ = flame_oracle(u)
    assert result.mode == "beaver" and result.liars == (4,)
    assert set(result.accepted) == kept
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-4)
    for j in range(1, N + 1):  # one opening of the triples per node and round, the Gram matrix from it
        assert relay.counts[edge_party(j), "BeaverOpen"] == 1
        assert relay.counts[edge_party(j), "VerifyRequest"] == 1


def test_a_gram_liar_at_2t_minus_1_nodes_is_named_on_chain():
    from ppbfl.protocol.ledger import open_ledger

    u = updates(2, 4, "backdoor")
    with open_ledger("embedded", T, N, devices=M) as ledger, _federation(ledger=ledger) as federation:
        _lie_in_gram(federation, 2)
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        assert result.mode == "beaver" and result.liars == (2,)
        assert ledger.contract.round_state(1).reported_liars == (2,)
    kept, expected, _ = flame_oracle(u)
    assert set(result.accepted) == kept
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-4)


def test_a_relay_that_opens_an_honest_majority_gram_below_2t_plus_1_is_refused_by_operator_configured_nodes():
    # the relay (colluding with a Gram liar) asks for honest-majority norms and Gram at k = 2t - 1, where
    # one lie would go unseen; nodes whose operator configured rule "flame" with norms "auto" refuse it
    u = updates(1, 3)
    with _federation(norms="honest-majority") as federation:
        _lie_in_gram(federation, 4)
        with pytest.raises(NotEnoughEdgeNodesError, match="aggregate"):
            federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        refused = {j: why for j, why in federation.coordinator.dropped.items() if "operator requires 7" in why}
    assert sorted(refused) == [1, 2, 3, 4, 5]


class ShiftingRelay(CountingRelay):
    """Adds ``0.5`` (encoded) to every entry of the first device's opened ``eps`` in ``BeaverCheck``,
    for the nodes in ``targets`` (all: the same shifted eps to every node)."""

    targets = range(1, N + 1)

    def call(self, party, message, **kwargs):
        if isinstance(message, BeaverCheck) and party in {edge_party(j) for j in self.targets}:
            eps = message.eps.copy()
            eps[0] = (eps[0] + CODEC.encode(np.full(1, 0.5))[0]) % np.uint64(P)
            message = dataclasses.replace(message, eps=eps)
        return super().call(party, message, **kwargs)


class ShiftsForEdge1(ShiftingRelay):
    targets = (1,)


def test_a_relay_that_shifts_the_opened_eps_is_refused_by_every_node_before_anything_is_computed_from_it():
    # without the eps check every Beaver value of device 0 would be computed for g_0 + delta (its
    # norm opened as ||g_0 + 0.5||^2 = 6.69 instead of 0.78, nobody named): the relay would steer the
    # decision and learn ||g + delta||^2 for a delta of its choice
    u = updates(1, 3)
    with _federation(relay=ShiftingRelay) as federation:
        unchecked(federation.coordinator)
        with pytest.raises(NotEnoughEdgeNodesError):
            federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        dropped = federation.coordinator.dropped
        finished = [j for j in range(1, N + 1) if federation.deployment.nodes[edge_party(j)].rounds[1].finished is not None]
    assert sorted(dropped) == [1, 2, 3, 4, 5] and finished == []  # no node made a norm or Gram share from the shifted eps
    why = "relayed an eps that is not the opening of the nodes' shares of g - a (devices [0])"
    assert all(r.startswith("PeerAuthError") and "peer coordinator" in r and why in r for r in dropped.values()), dropped


def test_a_node_sent_another_eps_than_its_peers_refuses_their_checks_naming_the_relay():
    u = updates(1, 3)
    with _federation(relay=ShiftsForEdge1) as federation:
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        relay, node = federation.coordinator.transport, federation.deployment.nodes[edge_party(1)]
        assert node.rounds[1].finished is None  # its check did not open with the others': it got no finish
        others = relay.last[edge_party(2), "BeaverFinish"]  # the peers' signed checks, over the eps they were sent
        with pytest.raises((PeerAuthError, RemoteError), match=r"peer coordinator.*that it did not sign for the eps it sent this node"):
            relay.inner.call(edge_party(1), others, round=1, timeout=5, context={"d": D})
        checked = relay.last[edge_party(2), "BeaverCheck"]  # one eps per node and round: a retry gets the same reply
        again = relay.inner.call(edge_party(2), checked, round=1, timeout=5, context={"d": D}).message
        np.testing.assert_array_equal(again.checks, federation.deployment.nodes[edge_party(2)].rounds[1].checked[1].checks)
        with pytest.raises((OutOfPhaseError, RemoteError), match="already checked an eps"):
            relay.inner.call(edge_party(2), relay.last[edge_party(1), "BeaverCheck"], round=1, timeout=5, context={"d": D})
    kept, expected, _ = flame_oracle(u)
    assert set(result.accepted) == kept and 1 not in result.online
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-4)


class ReordersForEdge1AtThreeNodes(CountingRelay):
    """Once set up (``offline`` set), edge-4 and edge-5 are unreachable (k = t = 3: no redundancy in
    any opening) and edge-1's ``BeaverOpen`` names the devices in reverse order."""

    offline = False

    def call(self, party, message, **kwargs):
        if self.offline and party in (edge_party(4), edge_party(5)):
            raise PeerUnavailableError(party, 1, 1.0, "UNAVAILABLE", "offline in this test")
        if isinstance(message, BeaverOpen) and party == edge_party(1):
            message = BeaverOpen(list(reversed(message.devices)))
        return super().call(party, message, **kwargs)


def test_a_node_sent_another_beaver_open_order_than_its_peers_is_caught_before_any_norm_at_k_equals_t():
    # at k = t any t points interpolate, so the eps the relay opens from a mixed order passes every
    # projection check; what catches it is the device order inside the signed check's seed: without
    # it, every node would compute norm and Gram shares of Lagrange mixtures of different devices'
    # shares (with t - 1 colluding nodes, a quadratic function of an honest node's share)
    u = updates(1, 3)
    with _federation(relay=ReordersForEdge1AtThreeNodes) as federation:
        unchecked(federation.coordinator)
        federation.coordinator.transport.offline = True
        with pytest.raises(NotEnoughEdgeNodesError):
            federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        relay, nodes = federation.coordinator.transport, federation.deployment.nodes
        assert relay.counts[edge_party(1), "BeaverFinish"] == 1  # the mixed eps reached the finish step
        assert all(nodes[edge_party(j)].rounds[1].finished is None for j in (1, 2, 3))  # no norm or Gram share made
        dropped = federation.coordinator.dropped
    assert sorted(j for j in dropped if j <= 3) == [1, 2, 3]
    assert all("peer coordinator" in dropped[j] and "did not sign for the eps it sent this node" in dropped[j] for j in (1, 2, 3)), dropped


def _lie_in_eps_check(federation: Federation, j: int) -> None:
    """Node ``j`` adds 1 to its eps check of the first device (and signs its lie)."""
    node = federation.deployment.nodes[edge_party(j)]
    honest = node._beaver_check

    def lying(envelope, message):
        checks = honest(envelope, message).checks.copy()
        checks[0] = (checks[0] + np.uint64(1)) % np.uint64(P)
        seed = signed_shares.eps_check_seed(node._session, envelope.round, node.rounds[envelope.round].eps_devices, message.eps, message.proof_eps)
        return EpsCheck(checks, node._sign(signed_shares.eps_check_digest(node._session, envelope.round, j, seed=seed, checks=checks)))

    node._beaver_check = lying


def test_a_node_lying_in_its_eps_check_is_corrected_and_named():
    u = updates(1, 3)
    with _federation() as federation:
        _lie_in_eps_check(federation, 5)
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
    kept, expected, _ = flame_oracle(u)
    assert result.mode == "beaver" and result.liars == (5,)
    assert set(result.accepted) == kept
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-4)


def test_a_node_refuses_pair_products_that_do_not_fit_its_triples():
    with _federation() as federation:
        node = federation.deployment.nodes[edge_party(1)]
        dealer = federation.deployment._handlers["dealer"].transport  # the dealer's own channel
        k, width = 3, node.validity.proof_length
        triples = (np.zeros((k, D), dtype=np.uint64), np.zeros(k, dtype=np.uint64), np.zeros((k, width), dtype=np.uint64), np.zeros(k, dtype=np.uint64))
        with pytest.raises((OutOfPhaseError, RemoteError), match=r"pair products of shape \(2,\): expected \(3,\)"):
            dealer.call(edge_party(1), TripleShares(*triples, np.zeros(2, dtype=np.uint64)), round=1, timeout=5, context={"d": D})
        dealer.call(edge_party(1), TripleShares(*triples, np.zeros(3, dtype=np.uint64)), round=1, timeout=5, context={"d": D})
        assert node.rounds[1].pairs is not None and node.rounds[1].pairs.shape == (3,)
