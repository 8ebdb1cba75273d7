"""An edge node that missed a round's trust vote catches up from the chain and votes again.

Three rounds on an embedded chain (t = 2 of n = 3 nodes): node 3 is unreachable when round 2's
trust is voted (round 2 commits with nodes 1 and 2). Before round 3's vote it adopts round 2 from
the keeper's store, checked against the chain alone, so its round-3 vote counts again (3
signatures). Forged copies of round 2 -- a lifted state with the root recomputed, a record left
out, another device's record in its place -- are refused and adopt nothing."""

from __future__ import annotations

import dataclasses

import pytest

from ppbfl.chain.merkle import root_of_leaves
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.record import record_leaves
from ppbfl.trust.reputation import update
from ppbfl.trust.store import TrustStore
from ppbfl.trust.witness import TrustWitness
from tests.protocol_helpers import synthetic_round

T, N, D, M = 2, 3, 16, 4
SIGN_FLIPPER, LATE = 1, "edge-3"
CONFIG = TrustConfig(pow_min_bits=2, pow_max_bits=6)


@pytest.fixture(scope="module")
def run():
    """Yields (ledger, keeper, nodes, signatures per round, a function running round r)."""
    deployment = InProcessDeployment(T, N, D)
    with open_ledger("embedded", T, N, devices=M, trust=initial_trust(CONFIG)) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        keeper = TrustKeeper(range(M), CONFIG, ledger=ledger, voters=list(deployment.nodes.values()))
        federation = Federation(deployment, coordinator, range(M), ledger=ledger, trust=keeper)
        late = deployment.nodes[LATE]
        vote = late.trust_vote

        def unreachable_in_round_2(round, context, commitments, refused=(), **options):
            if round == 2:
                raise OutOfPhaseError(LATE, "unreachable")
            return vote(round, context, commitments, refused, **options)

        late.trust_vote = unreachable_in_round_2  # type: ignore[method-assign]
        signatures: dict[int, int] = {}
        commit = ledger.contract.commit_trust

        def counting(round, root, slots, words, sigs, **kw):
            signatures[round] = len(sigs)
            return commit(round, root, slots, words, sigs, **kw)

        ledger.contract.commit_trust = counting  # type: ignore[method-assign]
        for r in (1, 2, 3):
            updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=r)
            federation.run_round(r, updates, reference)

        def run_round(r):
            updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=r)
            federation.run_round(r, updates, reference)

        yield ledger, keeper, deployment.nodes, signatures, run_round
        federation.close()
        deployment.close()


def test_a_node_that_missed_a_round_catches_up_and_votes_again(run) -> None:
    ledger, keeper, nodes, signatures, _ = run
    assert signatures == {1: 3, 2: 2, 3: 3}  # node 3 left out of round 2 only
    for node in nodes.values():
        witness = node.trust_witness
        assert witness is not None and witness.store.rounds() == [1, 2, 3] and witness.states == keeper.states
        for r in (1, 2, 3):  # its store holds what the chain anchored (its proofs verify)
            assert witness.store.root(r) == ledger.contract.round_state(r).anchor


def _behind(keeper: TrustKeeper) -> TrustWitness:
    """A witness that voted on round 1 only (a copy of round 1's records in its own store)."""
    store = TrustStore()
    store.add_round(1, keeper.store.records(1))
    return TrustWitness(range(M), CONFIG, store)


def _lifted(records):
    """Round 2's records with the sign flipper's after-state as if it had been accepted, the root refolded."""
    out = []
    for x in records:
        if x.device == SIGN_FLIPPER:
            x = dataclasses.replace(x, evidence=dataclasses.replace(x.evidence, reason=0))
            x = dataclasses.replace(x, after=update(x.before, x.evidence, CONFIG))
        out.append(x)
    return out


@pytest.mark.parametrize("forge, problem", [
    (_lifted, "do not fold to the anchored root"),
    (lambda records: records[:-1], "do not fold to the anchored root"),
    (lambda records: [records[0], *records[:-1]], "do not fold to the anchored root"),
])
def test_a_forged_copy_of_a_missed_round_is_refused(run, forge, problem) -> None:
    ledger, keeper, _, _, _ = run
    witness = _behind(keeper)
    honest = keeper.store.records(2)
    forged = forge(honest)
    assert forged != honest
    with pytest.raises(ConfigError) as caught:
        witness.catch_up(3, ledger.contract, lambda r: forged if r == 2 else keeper.store.records(r))
    assert caught.value.key == "records" and "round 2" in str(caught.value) and problem in str(caught.value)
    assert witness.store.rounds() == [1] and witness.round == 1  # nothing adopted
    assert witness.catch_up(3, ledger.contract, keeper.store.records) == [2]  # the honest copy is
    assert witness.states == {x.device: x.after for x in honest}
    assert witness.catch_up(3, ledger.contract, keeper.store.records) == []  # not behind any more


def test_a_copy_that_folds_to_the_root_but_breaks_the_rule_is_refused(run) -> None:
    """Even with the anchor matched (a forged anchor cannot be: t nodes signed it), the rule is checked:
    the audit runs against the witness's own previous states and the decisions agreed on chain."""
    ledger, keeper, _, _, _ = run
    witness = _behind(keeper)
    witness.states = {**witness.states, 0: dataclasses.replace(witness.states[0], positive=witness.states[0].positive + 1)}
    with pytest.raises(ConfigError) as caught:
        witness.catch_up(3, ledger.contract, keeper.store.records)
    assert "device 0: before" in str(caught.value)
    lifted = _lifted(keeper.store.records(2))
    assert root_of_leaves([leaf.tobytes() for leaf in record_leaves(lifted)]) != ledger.contract.round_state(2).anchor


def test_a_node_whose_stored_round_diverged_is_repaired_from_the_chain(run) -> None:
    """A witness that voted round 2 from other decisions (every device accepted) holds a round 2
    that is not the anchored one: not behind, so plain catch-up changes nothing; with ``repair``
    (what the keeper asks after the node's vote did not match) round 2 is replaced by the
    checked copy; an honest witness is left as it is."""
    ledger, keeper, _, _, _ = run
    witness = _behind(keeper)
    decided = {i: DeviceDecision(0.9, None, 1.0, 1.0, "accepted") for i in range(M)}
    witness.vote(2, decided, {})
    assert witness.store.root(2) != ledger.contract.round_state(2).anchor
    assert witness.catch_up(3, ledger.contract, keeper.store.records) == []
    assert witness.catch_up(3, ledger.contract, keeper.store.records, repair=True) == [2]
    assert witness.store.rounds() == [1, 2] and witness.store.root(2) == ledger.contract.round_state(2).anchor
    assert witness.states == {x.device: x.after for x in keeper.store.records(2)}
    assert witness.catch_up(3, ledger.contract, keeper.store.records, repair=True) == []


def test_a_node_whose_vote_diverged_is_repaired_by_the_keeper_and_counts_again(run) -> None:
    """End to end (runs rounds 4 and 5 on the module's chain, so last in this file): node 2's stored
    round 3 is replaced by a lifted copy (as if it had voted from other inputs); its round-4 vote
    does not count (2 signatures); before round 5 the keeper has it repair from the chain and it
    counts again (3 signatures), its store holding the anchored rounds."""
    ledger, keeper, nodes, signatures, run_round = run
    witness = nodes["edge-2"].trust_witness
    lifted = _lifted(keeper.store.records(3))
    witness.store.add_round(3, lifted, replace=True)
    witness.states = {x.device: x.after for x in lifted}
    run_round(4)
    run_round(5)
    assert signatures[4] == 2 and signatures[5] == 3
    assert witness.store.rounds() == [1, 2, 3, 4, 5]
    assert [witness.store.root(r) for r in range(1, 6)] == [ledger.contract.round_state(r).anchor for r in range(1, 6)]
    assert witness.states == keeper.states
