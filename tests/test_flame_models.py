"""FLAME on local models on shares (``ppbfl_flame_models``, rule "flame" with flame_space "models")
against its plaintext twin ``flame_models``; a device at the global model's negative; a relay that
sends another global model; the no-wrap guard of ``<G, g_i>``.

Fixed-point bound as in tests/test_flame.py: each aggregate entry is within
``h (1 + sum_kept |g_ij| / K)`` of the float value (``h = 2^-(f+1)``); the tests allow twice that.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.cli import main
from ppbfl.defense.rule import DecisionRule, load_decision_rule
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.aggregators import GLOBAL_MODEL, AggregationContext, make_aggregator
from ppbfl.fl.detection import excluded_devices
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.federation import Federation
from ppbfl.fl.secure_aggregator import TRUST_CHAIN
from ppbfl.protocol.creds import write_credentials
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.flame_decision import GlobalModelError, decide_flame_request, exact_norm2, model_hash
from ppbfl.protocol.messages import FlameAggregateRequest
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.trust.config import TrustConfig
from tests.test_flame import assert_twins

D = 24
M = 10
BAD = 3


def backdoor_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, updates)``: a converged-looking global model ``G`` (norm ~2.5) and ``M`` updates, the
    honest ones short and scattered (norm ~0.1), the first ``BAD`` a longer pull (norm ~0.5)
    towards a backdoor direction: close in angle to each other, far in Euclidean distance."""
    rng = np.random.default_rng(seed)
    g = rng.normal(0.0, 0.5, D)
    u = rng.normal(0.0, 0.02, (M, D))
    trigger = np.zeros(D)
    trigger[:4] = 0.25
    u[:BAD] = trigger + rng.normal(0.0, 0.02, (BAD, D))
    return g, u


def context(g: np.ndarray) -> AggregationContext:
    return AggregationContext(extra={GLOBAL_MODEL: g.astype(np.float32)})


@pytest.fixture(scope="module")
def secure():
    rule = make_aggregator("ppbfl_flame_models", {"t": 2, "n": 5})
    yield rule
    rule.close()




@pytest.mark.parametrize("seed", [0, 1])
def test_secure_flame_on_models_decides_and_aggregates_as_its_plaintext_twin(secure, seed):
    g, u = backdoor_case(seed)
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    out, info = secure.aggregate(u, context(g))
    assert_twins(out, info, twin, plain, u)
    assert set(plain["accepted"]).isdisjoint(range(BAD))  # the backdoor is out
    assert len(plain["accepted"]) >= M // 2 + 1
    assert excluded_devices("ppbfl_flame_models", info, M) == excluded_devices("flame_models", plain, M)


def test_a_device_near_the_global_models_negative_is_computed_exactly(secure):
    g, u = backdoor_case(2)
    u[BAD] = -g.astype(np.float32) + 0.05  # its local model is short: <G, g_i> ~ -||G||^2
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    out, info = secure.aggregate(u, context(g))
    assert_twins(out, info, twin, plain, u)
    assert BAD not in info["accepted"]


def test_a_device_at_the_global_models_negative_is_rejected_zero_norm_by_both_twins(secure):
    g, u = backdoor_case(3)
    u[BAD] = -g.astype(np.float32)  # local model exactly 0: no cosine (it must not abort the round)
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    out, info = secure.aggregate(u, context(g))
    assert info["reasons"][BAD] == plain["reasons"][BAD] == "zero norm: the local model G + g is zero"
    assert_twins(out, info, twin, plain, u)


def test_registry_and_configuration():
    with pytest.raises(ConfigError, match=r"defence_params\.ppbfl_flame_models\.dot_mode"):
        make_aggregator("ppbfl_flame_models", {"dot_mode": "dealer"})
    rule = make_aggregator("ppbfl_flame_models", {"t": 2, "n": 3})
    with pytest.raises(Exception, match="global model"):
        rule.aggregate(np.zeros((3, 4)), AggregationContext())
    with pytest.raises(ConfigError, match="flame_space"):
        Coordinator(2, 3, 4, transport=None, rule="cosine", flame_space="models")  # type: ignore[arg-type]


def run_with_relay(alter, g, u):
    """One FLAME-on-models round in process whose relay delivers ``alter(VerifyRequest)`` to every node."""
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with Federation.in_process(2, 5, D, M, codec=codec, rule="flame", flame_space="models", strict=False) as federation:
        for j in range(1, 6):
            node = federation.deployment.nodes[edge_party(j)]
            node._verify = lambda envelope, message, honest=node._verify: honest(envelope, alter(message))
        try:
            return federation.run_round(1, {i: u[i] for i in range(M)}, g, model_hash=model_hash(g)), federation.coordinator.dropped
        except NotEnoughEdgeNodesError:
            return None, federation.coordinator.dropped


@pytest.mark.parametrize("field, alter", [
    ("model_hash", lambda g2: lambda m: dataclasses.replace(m, model=g2)),  # another G under the announced hash
    ("reference", lambda g2: lambda m: dataclasses.replace(m, reference=FixedPointCodec(frac_bits=16, max_abs=64.0).encode(g2))),
])
def test_a_relay_that_sends_another_global_model_is_refused_naming_the_field(field, alter):
    g, u = backdoor_case(0)
    g = g.astype(np.float32)
    other = (g + np.float32(0.5)).astype(np.float32)
    result, dropped = run_with_relay(alter(other), g, u)
    assert result is None
    assert sorted(dropped) == [1, 2, 3, 4, 5]
    assert all("GlobalModelError" in why and f"field {field!r}" in why for why in dropped.values())


def test_the_coordinator_refuses_a_model_that_is_not_the_announced_one():
    g, u = backdoor_case(0)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with (
        Federation.in_process(2, 3, D, M, codec=codec, rule="flame", flame_space="models", strict=False) as federation,
        pytest.raises(GlobalModelError, match="model_hash"),
    ):
        federation.run_round(1, {i: u[i] for i in range(M)}, g, model_hash=model_hash(g + 1.0))


def test_the_no_wrap_guard_rejects_a_device_whose_inner_product_with_g_could_wrap():
    """The round's real request, decided against a huge (hypothetical) encoded ``G``: every device's
    ``||g_i|| ||G||`` then reaches ``p / 2`` and none is clustered on a possibly wrapped value."""
    g, u = backdoor_case(0)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    seen: list[FlameAggregateRequest] = []
    with Federation.in_process(2, 5, D, M, codec=codec, rule="flame", flame_space="models", strict=False) as federation:
        node = federation.deployment.nodes[edge_party(1)]
        node._flame_aggregate = lambda envelope, message, honest=node._flame_aggregate: seen.append(message) or honest(envelope, message)
        result = federation.run_round(1, {i: u[i] for i in range(M)}, g, model_hash=model_hash(g))
        reference = codec.encode(g.astype(np.float32).astype(np.float64))
    request = seen[0]
    same = decide_flame_request(request, reference, t=2, codec=codec, space="models")
    assert [d.reason for d in same.decisions] == [d.reason for d in result.decision.decisions]
    huge = np.full(D, codec.field.p // 2 - 7, dtype=np.uint64)  # centred ~2^60 per entry
    wrapped = decide_flame_request(request, huge, t=2, codec=codec, space="models")
    assert all(d.reason.startswith("out of range: <G, g> could wrap") for d in wrapped.decisions)
    assert wrapped.total_weight == 0


def test_an_operator_pinned_models_space_refuses_a_relay_that_downgrades_to_updates():
    pinned = DecisionRule(rule="flame", flame_space="models")
    assert pinned.mismatch("flame", 0.0, False, 0.0, "updates") == ("flame_space", "updates", "models")
    with InProcessDeployment(2, 3, D, decision_rule=pinned) as deployment:
        coordinator = Coordinator(2, 3, D, deployment.coordinator, rule="flame", flame_space="updates")
        with pytest.raises(NotEnoughEdgeNodesError):
            coordinator.setup()
        assert all("SetupRuleError" in why and "flame_space" in why for why in coordinator.dropped.values())
        coordinator.close()


def test_a_relay_that_swaps_model_and_hash_together_is_refused_by_nodes_that_read_the_announced_hash():
    """A relay that replaces ``G`` *and* the hash in the verify request passes the request's own
    check; a node that reads the round's hash itself (the chain's, :attr:`EdgeNode.announced_model`)
    refuses it, naming ``model_hash``."""
    g, u = backdoor_case(0)
    g = g.astype(np.float32)
    other = (g + np.float32(0.5)).astype(np.float32)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)

    def swap(message):
        return dataclasses.replace(message, model=other, model_hash=model_hash(other), reference=codec.encode(other.astype(np.float64)))

    with Federation.in_process(2, 5, D, M, codec=codec, rule="flame", flame_space="models", strict=False) as federation:
        for j in range(1, 6):
            node = federation.deployment.nodes[edge_party(j)]
            node.announced_model = lambda r: model_hash(g)  # what the chain says round r was opened with
            node._verify = lambda envelope, message, honest=node._verify: honest(envelope, swap(message))
        with pytest.raises(NotEnoughEdgeNodesError):
            federation.run_round(1, {i: u[i] for i in range(M)}, g, model_hash=model_hash(g))
        dropped = federation.coordinator.dropped
    assert sorted(dropped) == [1, 2, 3, 4, 5]
    assert all("GlobalModelError" in why and "'model_hash'" in why and "opened with" in why for why in dropped.values())


def test_ppbfl_edge_flame_space_is_an_operator_option_and_only_under_flame(tmp_path, capsys):
    write_credentials(tmp_path, ["edge-1"])
    base = ["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt")]
    assert main([*base, "--rule", "cosine", "--flame-space", "models"]) == 2  # refused before serving
    err = capsys.readouterr().err
    assert err.startswith("ppbfl edge: ConfigError: ") and "decision_rule.flame_space" in err, err
    with pytest.raises(ConfigError, match=r"rule\.flame_space"):
        load_decision_rule({"rule": "flame", "flame_space": "weights"})


def test_a_node_lying_about_its_shares_of_g_dot_g_i_is_corrected_and_named():
    g, u = backdoor_case(0)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    with Federation.in_process(
        2, 5, D, M, codec=codec, rule="flame", flame_space="models", strict=False, behaviours={4: "tamper-verify"},
    ) as federation:
        result = federation.run_round(1, {i: u[i] for i in range(M)}, g, model_hash=model_hash(g))
    assert 4 in result.liars
    assert result.accepted == plain["accepted"]
    np.testing.assert_allclose(result.aggregate, twin, atol=1e-3)


def test_on_the_embedded_chain_the_nodes_bind_g_to_the_hash_the_round_was_opened_with_on_chain():
    """``ppbfl_flame_models`` with a chain (the runner's ``trust.chain``): same decisions as the twin,
    the round opened on chain for ``G``'s hash, and every node reads that hash from the contract."""
    g, u = backdoor_case(0)
    rule = make_aggregator("ppbfl_flame_models", {"t": 2, "n": 3})
    extra = {GLOBAL_MODEL: g.astype(np.float32), TRUST_CHAIN: TrustConfig(pow_max_bits=12)}
    try:
        out, info = rule.aggregate(u, AggregationContext(extra=extra))
        federation = rule._filter.federation
        assert federation.ledger.contract.round_state(1).model_hash == model_hash(g)
        assert all(node.announced_model(1) == model_hash(g) for node in federation.deployment.nodes.values())
    finally:
        rule.close()
    twin, plain = make_aggregator("flame_models", {"noise_lambda": 0.0}).aggregate(u, context(g))
    assert_twins(out, info, twin, plain, u)


@given(st.lists(st.integers(-(2**60) + 1, 2**60 - 1), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_exact_norm2_is_the_integer_sum_of_squares_on_both_paths(values):
    p = FixedPointCodec().field.p
    encoded = np.array([v % p for v in values], dtype=np.uint64)
    assert exact_norm2(encoded, p) == sum(v * v for v in values)
    small = [v % 1000 - 500 for v in values]
    assert exact_norm2(np.array([v % p for v in small], dtype=np.uint64), p) == sum(v * v for v in small)
