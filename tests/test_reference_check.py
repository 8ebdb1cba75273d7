"""The relay cannot choose the public reference ``r`` of rule "cosine" (docs/security.md).

``<g_i, r>`` is opened by design, so a relay that picks ``r = e_c`` would read ``g_i[c]`` of every
device. An edge node whose operator gives it the root-set reference (:class:`RootReference`:
``EdgeNode.reference_source``, ``ppbfl edge --reference``) takes the round's global model from the
request, checks it against its hash and the hash the round was opened with (where it reads the
chain), computes ``r`` itself and refuses, before any share, a relayed reference more than its
tolerance away (``ReferenceMismatchError`` naming the coordinator and ``reference``). The oracle
for rounds that complete is the plaintext FLTrust aggregate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ppbfl.chain import Chain
from ppbfl.chain.rounds import Phase
from ppbfl.cli import main
from ppbfl.defense.submission import codec_for_length
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.fl.reference import RootReference, load_reference_spec
from ppbfl.protocol import round as round_module
from ppbfl.protocol.creds import write_credentials
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.edge_node import REFERENCE_TOLERANCE, edge_party
from ppbfl.protocol.flame_decision import GlobalModelError, model_hash
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.messages import VerifyRequest
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.signed_shares import request_hash
from tests.protocol_helpers import plaintext_aggregate
from tests.test_adversarial_verify_agreement import Relay, short_deadlines

T, N, M = 2, 4, 5
MALICIOUS = {1}
SPEC = RootReference.spec_for("breast_cancer", range(12), model="logreg", seed=5)  # d = 30 * 2 + 2
ATOL = 5e-5
UNIT = 2.0**-16  # one fixed-point unit of the default codec


@pytest.fixture(scope="module")
def root() -> RootReference:
    return RootReference.from_spec(SPEC)


def global_model(seed: int, d: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=d) * 0.1).astype(np.float32)


def round_inputs(root: RootReference, rnd: int, g: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """The honest reference of round ``rnd`` from ``g``, honest updates near it, the malicious one sign-flipped."""
    reference = root(rnd, g).astype(np.float64)
    rng = np.random.default_rng(rnd)
    updates = {i: reference + rng.normal(size=reference.size) * np.abs(reference).mean() for i in range(M)}
    for i in MALICIOUS:
        updates[i] = -3.0 * updates[i]
    return updates, reference


def shifted(reference: np.ndarray, units: int, entry: int = 7) -> np.ndarray:
    out = reference.copy()
    out[entry] += units * UNIT
    return out


def unit_vector(d: int, c: int = 3) -> np.ndarray:
    e = np.zeros(d)
    e[c] = 1.0
    return e


def assert_fltrust(result, updates, reference) -> None:
    assert sorted(set(range(M)) - set(result.accepted)) == sorted(MALICIOUS)
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(updates, reference)[0], atol=ATOL)


def assert_refused_everywhere(federation, rnd: int, *needles: str) -> None:
    dropped = federation.coordinator.dropped
    assert sorted(dropped) == list(range(1, N + 1)), dropped
    assert all(all(needle in why for needle in needles) for why in dropped.values()), dropped
    assert all(node.rounds[rnd].verified is None for node in federation.deployment.nodes.values())  # no share left a node


def test_an_honest_round_with_node_side_references_completes_and_equals_the_round_without_the_check(root):
    g = global_model(1, root.d)
    updates, reference = round_inputs(root, 1, g)
    with Federation.in_process(T, N, root.d, M) as federation:
        nodes = federation.deployment.nodes
        asked: dict[str, list[int]] = {party: [] for party in nodes}
        for party, node in nodes.items():
            node.reference_source = lambda rnd, model, party=party: asked[party].append(rnd) or root(rnd, model)
        checked = federation.run_round(1, updates, reference, model=g, model_hash=model_hash(g))
        assert asked == {party: [1] for party in nodes}  # every node computed round 1's reference itself
        assert all(np.array_equal(node.rounds[1].verified[0].model, g) for node in nodes.values())
        for node in nodes.values():
            node.reference_source = None  # the relay's word, as before
        unchecked = federation.run_round(2, updates, reference)
    assert_fltrust(checked, updates, reference)
    assert checked.accepted == unchecked.accepted
    assert checked.aggregate.tobytes() == unchecked.aggregate.tobytes()


def test_a_reference_within_the_tolerance_is_taken_and_one_unit_beyond_is_refused_by_every_node(root):
    g = global_model(2, root.d)
    updates, reference = round_inputs(root, 1, g)
    safe = codec_for_length(FixedPointCodec(), root.d)
    with Federation.in_process(T, N, root.d, M) as federation:
        nodes = federation.deployment.nodes
        for node in nodes.values():
            node.reference_source = root
        edge = shifted(reference, REFERENCE_TOLERANCE)
        result = federation.run_round(1, updates, edge, model=g, model_hash=model_hash(g))
        assert sorted(result.online) == list(range(1, N + 1))
        assert all(np.array_equal(node.rounds[1].reference, safe.encode(edge)) for node in nodes.values())  # the request's, one for all
        assert_fltrust(result, updates, edge)
        updates, reference = round_inputs(root, 2, g)
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
            federation.run_round(2, updates, shifted(reference, REFERENCE_TOLERANCE + 1), model=g, model_hash=model_hash(g))
        assert_refused_everywhere(
            federation, 2, "PeerAuthError", "peer coordinator", f"field 'reference': entry 7 is {REFERENCE_TOLERANCE + 1} fixed-point units from this node's own reference",
        )
        with pytest.raises(NotEnoughEdgeNodesError, match="verify"):  # no model: a node with a reference source cannot check
            federation.run_round(3, updates, reference)
        assert_refused_everywhere(federation, 3, "GlobalModelError", "'model'")
        result = federation.run_round(4, updates, reference, model=g, model_hash=model_hash(g))
    assert_fltrust(result, updates, reference)


@pytest.fixture
def tier(root):
    """An in-process (2, 4) tier on an embedded chain (nodes read it: ``read_chain``), each node with its reference source."""
    deployment = InProcessDeployment(T, N, root.d, signed_uploads=True)
    with Chain.embedded(accounts=M + N + 4) as chain:
        ledger = ChainLedger(chain, T, N, M, contract=short_deadlines(chain))
        relay = Relay(deployment.coordinator)
        coordinator = Coordinator(T, N, root.d, relay, codec=FixedPointCodec(), ledger=ledger, device_keys=deployment.device_keys)
        coordinator.setup()
        with Federation(deployment, coordinator, range(M), ledger=ledger, owns_deployment=True) as federation:
            for node in deployment.nodes.values():
                node.reference_source = root
            yield federation, relay, ledger


def test_a_relay_that_chooses_e_c_is_refused_by_every_node_the_round_aborts_and_the_next_one_works(root, tier):
    federation, _, ledger = tier
    g = global_model(3, root.d)
    updates, reference = round_inputs(root, 1, g)
    with pytest.raises(NotEnoughEdgeNodesError, match="verify"):  # posted on chain and sent to all: one request, the relay's r
        federation.run_round(1, updates, unit_vector(root.d), model=g, model_hash=model_hash(g))
    assert_refused_everywhere(federation, 1, "PeerAuthError", "peer coordinator", "field 'reference': entry 3 is", "from this node's own reference")
    assert ledger.contract.round_state(1).phase == Phase.FAILED
    updates, reference = round_inputs(root, 2, g)
    result = federation.run_round(2, updates, reference, model=g, model_hash=model_hash(g))
    assert_fltrust(result, updates, reference)
    assert ledger.contract.round_state(2).phase == Phase.CLOSED


def test_a_relay_that_swaps_model_and_hash_together_is_refused_by_the_nodes_that_read_the_chain(root, tier, monkeypatch):
    """The relay sends another model ``G'`` with its own hash and the reference computed from it,
    and posts that request's hash: it passes the request's own checks; the hash the round was opened
    with on chain does not match. A node without a chain view (edge-1 here) cannot tell (weaker)."""
    federation, relay, ledger = tier
    g, other = global_model(4, root.d), global_model(5, root.d)
    safe = codec_for_length(FixedPointCodec(), root.d)

    def swap(message: VerifyRequest) -> VerifyRequest:
        return dataclasses.replace(message, model=other, model_hash=model_hash(other), reference=safe.encode(root(1, other).astype(np.float64)))

    monkeypatch.setattr(round_module, "request_hash", lambda message: request_hash(swap(message)))  # posts the swapped request's hash
    relay.alter = lambda to, message: swap(message)
    blind = federation.deployment.nodes[edge_party(1)]
    blind.announced_model = None  # no chain view of the model hash
    updates, reference = round_inputs(root, 1, g)
    with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
        federation.run_round(1, updates, reference, model=g, model_hash=model_hash(g))
    dropped = federation.coordinator.dropped
    assert sorted(dropped) == [2, 3, 4]
    assert all("GlobalModelError" in why and "'model_hash'" in why and "opened with" in why for why in dropped.values())
    assert blind.rounds[1].verified is not None  # edge-1 answered the swapped request
    assert ledger.contract.round_state(1).phase == Phase.FAILED


def test_the_coordinator_refuses_a_model_that_is_not_the_announced_one_before_sending(root):
    g = global_model(6, root.d)
    updates, reference = round_inputs(root, 1, g)
    with Federation.in_process(T, N, root.d, M) as federation:
        with pytest.raises(GlobalModelError, match="'model'"):
            federation.run_round(1, updates, reference, model=g, model_hash=model_hash(g + np.float32(1)))
        assert all(not node.rounds.get(1) or node.rounds[1].verified is None for node in federation.deployment.nodes.values())


def test_ppbfl_edge_refuses_a_bad_reference_spec_before_serving(tmp_path, capsys):
    write_credentials(tmp_path, ["edge-1"])
    spec = tmp_path / "reference.json"
    SPEC.write(spec)
    assert load_reference_spec(spec) == SPEC
    bad = tmp_path / "bad.json"
    bad.write_text(spec.read_text().replace('"dataset": "breast_cancer"', '"dataset": "mnist"'))
    base = ["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt")]
    assert main([*base, "--reference", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppbfl edge: ConfigError: reference.dataset"), err
    beyond = tmp_path / "beyond.json"
    RootReference.spec_for("heart_failure", [0, 10_000]).write(beyond)
    assert main([*base, "--reference", str(beyond)]) == 2
    assert "reference.root" in capsys.readouterr().err
    assert main([*base, "--reference", str(spec), "--reference-tolerance", "-1"]) == 2
    assert "ConfigError: reference_tolerance: -1" in capsys.readouterr().err


@pytest.mark.slow  # three edge processes each import torch and sklearn to load the spec
def test_edge_processes_with_a_reference_file_compute_r_themselves_and_refuse_e_c(root, tmp_path):
    spec = tmp_path / "reference.json"
    SPEC.write(spec)
    g = global_model(7, root.d)
    updates, reference = round_inputs(root, 1, g)
    n = 3
    with GrpcDeployment(T, n, root.d, reference=spec) as deployment:  # each process: make_edge_node(reference=...), as `ppbfl edge --reference`
        coordinator = Coordinator(T, n, root.d, deployment.coordinator)
        with Federation(deployment, coordinator, range(M)) as federation:
            result = federation.run_round(1, updates, reference, model=g, model_hash=model_hash(g))
            assert sorted(result.online) == list(range(1, n + 1))  # each process's own r is within the tolerance of this one's
            assert_fltrust(result, updates, reference)
            with pytest.raises(NotEnoughEdgeNodesError, match="verify"):
                federation.run_round(2, updates, unit_vector(root.d), model=g, model_hash=model_hash(g))
            dropped = coordinator.dropped
            assert sorted(dropped) == list(range(1, n + 1))
            assert all("peer coordinator" in why and "from this node's own reference" in why for why in dropped.values()), dropped
