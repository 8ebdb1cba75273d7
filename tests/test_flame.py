"""FLAME: the plaintext rule against an independent float oracle, the secure rule (the protocol with
rule "flame") against its plaintext twin, minorities excluded, bad configurations and lying peers.

Fixed-point bound (as in tests/test_fl_secure_aggregator.py): each aggregate entry is
``sum_kept Q(c_i) Q(g_ij) / K`` with ``Q`` rounding to ``h = 2^-(f+1)``, so it is within
``h (1 + sum_kept |g_ij| / K)`` of the float value; the tests allow twice that.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN
from sklearn.metrics.pairwise import cosine_distances

from ppbfl.defense.flame_noise import gaussian_from_key, set_count
from ppbfl.errors import ConfigError as CoreConfigError
from ppbfl.field import ops
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.aggregators import AggregationContext, make_aggregator
from ppbfl.fl.detection import excluded_devices
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.federation import Federation
from ppbfl.protocol import signed_shares
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import NOISE_COUNTER, edge_party
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.flame_decision import pair_count
from ppbfl.protocol.messages import GramRequest, GramShares, SetupEdge
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, OutOfPhaseError

D = 24
M = 10


def updates(seed: int, bad: int, kind: str = "sign_flip") -> np.ndarray:
    """``M`` honest updates around one direction (lengths 0.5x..1.5x); the first ``bad`` are
    sign-flipped and boosted 4x (``sign_flip``) or pulled towards a fixed backdoor direction (``backdoor``)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(0, 0.05, D)
    u = (direction + rng.normal(0, 0.02, (M, D))) * rng.uniform(0.5, 1.5, (M, 1))
    if kind == "sign_flip":
        u[:bad] *= -4.0
    else:
        trigger = np.zeros(D)
        trigger[:3] = 0.3
        u[:bad] = 0.2 * u[:bad] + trigger + rng.normal(0, 0.01, (bad, D))
    return u


def flame_oracle(u: np.ndarray) -> tuple[set[int], np.ndarray, float]:
    """FLAME in floats, written from the paper with sklearn directly: ``(kept, aggregate, S)``."""
    labels = HDBSCAN(min_cluster_size=len(u) // 2 + 1, min_samples=1, metric="precomputed", allow_single_cluster=True,
                     copy=True).fit(cosine_distances(u).astype(np.float64)).labels_
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    kept = np.flatnonzero(labels == values[np.argmax(counts)])
    norms = np.linalg.norm(u, axis=1)
    s = float(np.median(norms[kept]))
    clipped = u[kept] * np.minimum(1.0, s / norms[kept])[:, None]
    return {int(i) for i in kept}, clipped.mean(axis=0), s


@pytest.fixture(scope="module")
def secure():
    rule = make_aggregator("ppbfl_flame", {"t": 2, "n": 5})
    yield rule
    rule.close()


def assert_twins(out, info, twin, plain, u):
    """A secure FLAME's output ``out`` / ``info`` equals its float twin's ``twin`` / ``plain`` on
    updates ``u``: same kept devices and reasons, no wrong edge node, the aggregate within the
    fixed-point rounding of the kept updates."""
    assert info["accepted"] == plain["accepted"]
    assert info["reasons"] == plain["reasons"]
    assert info["wrong_edge_nodes"] == []
    kept = plain["accepted"]
    h = 2.0 ** -(info["frac_bits"] + 1)
    tolerance = 2 * h * (1 + np.abs(u[kept]).sum(axis=0) / len(kept))
    assert np.all(np.abs(out.astype(np.float64) - twin.astype(np.float64)) <= tolerance + 1e-7)  # + float32 output rounding


@pytest.mark.parametrize("seed, bad, kind", [(0, 0, "sign_flip"), (1, 3, "sign_flip"), (2, 4, "backdoor")])
def test_plaintext_flame_equals_the_float_oracle_and_excludes_the_minority(seed, bad, kind):
    u = updates(seed, bad, kind)
    kept, expected, _ = flame_oracle(u)
    out, info = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(u, AggregationContext())
    assert set(info["accepted"]) == kept
    assert kept.isdisjoint(range(bad))  # every malicious update is out
    assert len(kept) >= M // 2 + 1
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    assert excluded_devices("flame", info, M) == frozenset(range(M)) - kept


def test_plaintext_noise_has_std_lambda_times_the_clip_bound():
    rng = np.random.default_rng(5)
    u = rng.normal(0, 0.05, D * 200) + rng.normal(0, 0.01, (M, D * 200))
    _, clean, s = flame_oracle(u)
    noisy, info = make_aggregator("flame", {"noise_lambda": 0.01, "seed": 3}).aggregate(u, AggregationContext(seed=0, round=1))
    assert info["noise_std"] == pytest.approx(0.01 * s)
    residual = noisy.astype(np.float64) - clean
    assert abs(residual.mean()) < 4 * 0.01 * s / np.sqrt(residual.size)
    assert residual.std() == pytest.approx(0.01 * s, rel=0.05)  # n = 4800: std error ~1 %


@pytest.mark.parametrize("seed, bad, kind", [(1, 3, "sign_flip"), (2, 4, "backdoor")])
def test_secure_flame_decides_and_aggregates_as_its_plaintext_twin(secure, seed, bad, kind):
    u = updates(seed, bad, kind)
    twin, plain = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(u, AggregationContext())
    out, info = secure.aggregate(u, AggregationContext())
    assert_twins(out, info, twin, plain, u)
    assert set(info["accepted"]).isdisjoint(range(bad))
    assert excluded_devices("ppbfl_flame", info, M) == excluded_devices("flame", plain, M)


def test_a_node_lying_about_its_gram_shares_is_corrected_and_named():
    u = updates(1, 3)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with Federation.in_process(2, 5, D, M, codec=codec, rule="flame", strict=False) as federation:
        node = federation.deployment.nodes[edge_party(4)]
        honest = node._gram

        def lying(envelope, message):
            gram = ops.add(honest(envelope, message).gram, np.full(pair_count(M), 99, dtype=np.uint64))
            return GramShares(gram, node._sign(signed_shares.gram_digest(node._session, envelope.round, 4, gram)))  # it signs its lie

        node._gram = lying
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
    kept, expected, _ = flame_oracle(u)
    assert 4 in result.liars
    assert set(result.accepted) == kept
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-3)


def test_a_gram_row_the_relay_altered_is_refused_naming_it():
    u = updates(1, 3)
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with Federation.in_process(2, 5, D, M, codec=codec, rule="flame", strict=False) as federation:
        for j in range(1, 6):
            node = federation.deployment.nodes[edge_party(j)]

            def altered(envelope, message, honest=node._flame_aggregate):  # what a relay that edits edge-2's row delivers
                gram = message.gram.copy()
                row = message.points.index(2)
                gram[row, 0] = (int(gram[row, 0]) + 1) % codec.field.p
                return honest(envelope, dataclasses.replace(message, gram=gram))

            node._flame_aggregate = altered
        with pytest.raises(NotEnoughEdgeNodesError):
            federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        dropped = federation.coordinator.dropped
    assert sorted(dropped) == [1, 2, 3, 4, 5]  # every node refuses the altered request
    assert all(r.startswith("PeerAuthError") and "peer coordinator" in r and "Gram shares of edge-2 that it did not sign" in r for r in dropped.values())


@pytest.mark.parametrize("params, key", [
    ({"dot_mode": "dealer"}, "defence_params.ppbfl_flame.dot_mode"),
    ({"t": 3, "n": 4, "dot_mode": "beaver"}, "defence_params.ppbfl_flame.n"),
    ({"noise_lambda": -0.001}, "defence_params.ppbfl_flame.noise_lambda"),
    ({"tau": 0.2}, "defence_params.ppbfl_flame.tau"),
    ({"t": 3, "n": 4}, "defence_params.ppbfl_flame.n"),
    ({"max_abs": -1.0}, "defence_params.ppbfl_flame.max_abs"),
])
def test_bad_secure_flame_config_is_a_typed_error_naming_the_key(params, key):
    with pytest.raises(ConfigError) as error:
        make_aggregator("ppbfl_flame", params)
    assert error.value.key == key


@pytest.mark.parametrize("params, key", [
    ({"noise_lambda": -0.1}, "defence_params.flame.noise_lambda"),
    ({"noise_lambda": float("inf")}, "defence_params.flame.noise_lambda"),
    ({"noise_lambda": True}, "defence_params.flame.noise_lambda"),
    ({"seed": -1}, "defence_params.flame.seed"),
    ({"lambda": 0.1}, "defence_params.flame.lambda"),
])
def test_bad_plaintext_flame_config_is_a_typed_error_naming_the_key(params, key):
    with pytest.raises(ConfigError) as error:
        make_aggregator("flame", params)
    assert error.value.key == key


def test_the_coordinator_refuses_an_unknown_rule_and_flame_below_n_2t_minus_1():
    deployment = InProcessDeployment(2, 3, D)
    try:
        for t, kwargs in ((2, {"rule": "krum"}), (3, {"rule": "flame", "norms": "beaver"})):
            with pytest.raises(CoreConfigError) as error:
                Coordinator(t, 3, D, deployment.coordinator, **kwargs)
            assert error.value.key == "rule"
    finally:
        deployment.close()


def test_nodes_refuse_requests_of_the_rule_they_were_not_set_up_with():
    """An untrusted coordinator cannot switch a cosine tier to FLAME (or back) by its requests alone."""
    deployment = InProcessDeployment(2, 3, D)
    try:
        call = deployment.coordinator.call
        base = {"index": 1, "t": 2, "n": 3, "d": D, "frac_bits": 16, "tau": 0.0, "validity_k": 40, "session": b"\x01" * 32}
        with pytest.raises((OutOfPhaseError, RemoteError), match="rule"):
            call(edge_party(1), SetupEdge(**base, rule="median"), round=0, timeout=5)
        with pytest.raises((OutOfPhaseError, RemoteError), match="rule"):
            call(edge_party(1), SetupEdge(**{**base, "t": 3}, rule="flame"), round=0, timeout=5)  # n < 2t - 1
        call(edge_party(1), SetupEdge(**base), round=0, timeout=5)  # rule "cosine"
        with pytest.raises((OutOfPhaseError, RemoteError), match="rule 'flame'"):
            call(edge_party(1), GramRequest([]), round=1, timeout=5)
    finally:
        deployment.close()


def test_a_gram_request_for_other_devices_than_the_verified_ones_is_refused():
    u = updates(0, 0)
    with Federation.in_process(2, 5, D, M, codec=FixedPointCodec(frac_bits=16, max_abs=64.0), rule="flame", strict=False) as federation:
        federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
        with pytest.raises((OutOfPhaseError, RemoteError), match="same devices"):
            federation.deployment.coordinator.call(edge_party(1), GramRequest([0, 1]), round=1, timeout=5)


def test_noise_on_shares_has_the_twins_distribution_and_no_single_node_can_remove_it():
    """The secure aggregate minus the noiseless twin is N(0, (lambda S)^2) per coordinate; what one
    node can compute of it from its own PRZS keys leaves the sets it is not in (here 1 of 5:
    variance (lambda S)^2 / 5); all nodes' keys together give all of it."""
    t, n, d, lam = 2, 5, 2000, 0.02
    rng = np.random.default_rng(7)
    direction = rng.normal(0, 0.01, d)
    u = direction + rng.normal(0, 0.004, (M, d))
    twin, plain = make_aggregator("flame", {"noise_lambda": 0.0}).aggregate(u, AggregationContext())
    std = lam * plain["clip_bound"]
    codec = FixedPointCodec(frac_bits=16, max_abs=64.0)
    with Federation.in_process(t, n, d, M, codec=codec, rule="flame", flame_noise=lam, strict=False) as federation:
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(d))
        keys = {j: dict(federation.deployment.nodes[edge_party(j)].przs.keys) for j in range(1, n + 1)}
    assert result.accepted == plain["accepted"]
    noise = result.aggregate - twin
    assert abs(noise.mean()) < 4 * std / np.sqrt(d)
    assert noise.std() == pytest.approx(std, rel=0.1)  # d = 2000: std error ~1.6 %
    per_set = std / np.sqrt(set_count(t, n))

    def known(sets):
        return sum(gaussian_from_key(key, NOISE_COUNTER + 1, d, codec.field) for key in sets.values()) * per_set

    everything = {a: k for mine in keys.values() for a, k in mine.items()}
    assert len(everything) == set_count(t, n)
    np.testing.assert_allclose(noise, known(everything), atol=1e-4)  # all keys: the noise itself
    left = noise - known(keys[1])  # node 1 misses the set {2, 3, 4, 5}
    assert left.std() == pytest.approx(per_set, rel=0.1)


def test_flame_falls_back_to_a_beaver_gram_matrix_when_fewer_than_2t_minus_1_nodes_are_online():
    u = updates(1, 3)
    with Federation.in_process(2, 3, D, M, codec=FixedPointCodec(frac_bits=16, max_abs=64.0), rule="flame", strict=False) as federation:
        federation.coordinator.setup()
        federation.deployment.stop_edge(3)
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D))
    kept, expected, _ = flame_oracle(u)
    assert result.mode == "beaver" and result.online == (1, 2)
    assert set(result.accepted) == kept
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-4)


def test_a_device_with_zero_trust_is_not_clustered_and_the_rest_is_flame_on_the_others():
    u = updates(1, 3)
    with Federation.in_process(2, 5, D, M, codec=FixedPointCodec(frac_bits=16, max_abs=64.0), rule="flame", strict=False) as federation:
        result = federation.run_round(1, {i: u[i] for i in range(M)}, np.zeros(D), trust={5: 0.0, 6: 0.5})
    assert result.rejected[5] == "zero trust"
    others = [i for i in range(M) if i != 5]
    kept, expected, _ = flame_oracle(u[others])
    assert set(result.accepted) == {others[k] for k in kept}
    np.testing.assert_allclose(result.aggregate, expected, atol=1e-3)
