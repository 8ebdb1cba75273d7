"""Trust on chain: rounds of the protocol with a TrustKeeper -- records anchored by commitTrust,
proofs checked against the chain alone, PoW difficulty derived by the contract from the trust it
stores, and the contract refusing whoever may not set trust, anchor or difficulty."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.pow import bind_commitment, pow_stamp, pow_valid
from ppbfl.chain.votes import TrustVote
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.pow import pow_bits_for
from ppbfl.trust.proof import TrustProof, verify_on_chain
from tests.protocol_helpers import InconsistentDevice, synthetic_round

T, N, D, M = 2, 3, 64, 6
SIGN_FLIPPER, INCONSISTENT = 1, 4
CONFIG = TrustConfig(pow_min_bits=4, pow_max_bits=12)


def _forge_then_commit(ledger, keys, attempts, honest_commit, round_, root, slots, words, signatures, **kw):
    """Round 2's commitTrust as a dishonest coordinator would relay it, then the honest one: each
    forgery's revert error name goes to ``attempts``."""
    if round_ == 2:
        forged_root = bytes(32 - 1) + b"\x07"
        lifted = [w | 0x7FFF << (16 * (INCONSISTENT % 16)) if s == INCONSISTENT // 16 else w for s, w in zip(slots, words)]
        colluder = TrustVote(forged_root, tuple(slots), tuple(lifted)).sign(keys[1], ledger.context, round_)
        stranger = TrustVote(root, tuple(slots), tuple(words)).sign(ChainKey.generate(), ledger.context, round_)
        for name, args in {
            "forged root": (root[:-1] + bytes([root[-1] ^ 1]), slots, words, signatures),
            "altered words": (root, slots, lifted, signatures),
            "one colluding node": (forged_root, slots, lifted, [colluder]),
            "a node twice": (root, slots, words, [signatures[0], signatures[0]]),
            "an unregistered signer": (root, slots, words, [signatures[0], stranger]),
            "no signatures": (root, slots, words, []),
        }.items():
            try:
                honest_commit(round_, *args, **kw)
                attempts[name] = "accepted"
            except ChainRevertError as error:
                attempts[name] = error.error
    return honest_commit(round_, root, slots, words, signatures, **kw)


@pytest.fixture(scope="module")
def rounds():
    """Two rounds: device 1 sign-flips (cosine rejection), device 4 sends inconsistent shares,
    device 5 drops out in round 2. The devices are registered with the model's initial trust.
    Yields (ledger, federation, keeper, per-round RoundTrust, RoundResults, device -> (trust, PoW
    bits) the contract held before round 1)."""
    keys = {j: ChainKey.generate() for j in range(1, N + 1)}  # the test holds the nodes' keys (a colluding node)
    deployment = InProcessDeployment(T, N, D, chain_keys=keys)
    with open_ledger("embedded", T, N, devices=M, trust=initial_trust(CONFIG)) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        keeper = TrustKeeper(range(M), CONFIG, ledger=ledger, voters=list(deployment.nodes.values()))
        federation = Federation(  # registers the devices' own chain accounts
            deployment, coordinator, range(M), ledger=ledger, factories={INCONSISTENT: InconsistentDevice}, trust=keeper,
        )
        first = {i: (ledger.contract.trust(i), ledger.contract.device(ledger.device_accounts[i])[2]) for i in range(M)}
        outcomes, results = [], []
        attempts: dict[str, str] = {}
        honest_commit = ledger.contract.commit_trust
        ledger.contract.commit_trust = lambda *args, **kw: _forge_then_commit(ledger, keys, attempts, honest_commit, *args, **kw)
        for r in (1, 2):
            updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=r)
            if r == 2:
                del updates[5]
            results.append(federation.run_round(r, updates, reference))  # weighted with, and reported to, the keeper
            outcomes.append(keeper.last)
        ledger.contract.commit_trust = honest_commit
        yield ledger, federation, keeper, outcomes, results, first, keys, attempts
        federation.close()
        deployment.close()


def test_the_contract_refuses_trust_the_edge_nodes_did_not_compute(rounds) -> None:
    """A coordinator relaying round 2's trust with a forged root, the quarantined device's trust
    lifted, a single colluding node's signature, one node twice, an unregistered key or no
    signature is refused with a typed revert; the honest update (t nodes' own) is on chain."""
    ledger, _, keeper, outcomes, *_, attempts = rounds
    assert attempts == {
        "forged root": "UnknownSigner", "altered words": "UnknownSigner", "one colluding node": "TrustNotAgreed",
        "a node twice": "AlreadyPosted", "an unregistered signer": "UnknownSigner", "no signatures": "SignaturesMissing",
    }
    assert ledger.contract.round_state(2).anchor == outcomes[1].root
    assert ledger.contract.trust(ledger.device_ids[INCONSISTENT]) == 0.0 == keeper.states[INCONSISTENT].weight_trust


def test_each_edge_node_computed_the_committed_update_itself(rounds) -> None:
    """Every node's witness holds the keeper's states, computed from the decisions it signed."""
    _, federation, keeper, *_ = rounds
    for node in federation.deployment.nodes.values():
        assert node.trust_witness is not None and node.trust_witness.round == 2
        assert node.trust_witness.states == keeper.states


def test_the_round_weights_with_the_trust_of_the_round_before(rounds) -> None:
    ledger, _, keeper, outcomes, results, _, *_ = rounds
    assert results[0].trust == {i: 0.75 for i in range(M)}  # initial evidence r = 2: 3/4
    for before, result in zip(outcomes, results[1:]):
        assert result.trust == {x.device: x.after.weight_trust / 2**15 for x in before.records if x.device in result.trust}
    assert results[1].rejected[INCONSISTENT] == "inconsistent shares"
    assert keeper.states[0].trust > keeper.states[5].trust > keeper.states[SIGN_FLIPPER].trust > keeper.states[INCONSISTENT].trust
    assert INCONSISTENT in keeper.quarantined and outcomes[1].quarantined == (INCONSISTENT,)
    for i in range(M):  # chain trust = the keeper's weight trust
        assert round(ledger.contract.trust(ledger.device_ids[i]) * 2**15) == keeper.states[i].weight_trust


def test_every_record_proves_against_the_chain_alone(rounds) -> None:
    ledger, _, keeper, outcomes, _, _, *_ = rounds
    for outcome in outcomes:
        assert ledger.contract.round_state(outcome.round).anchor == outcome.root
        for i in range(M):
            proof = TrustProof.from_json(keeper.store.prove(i, outcome.round).to_json())  # what `ppbfl trust prove` prints
            assert verify_on_chain(proof, ledger.contract)
    proof = keeper.store.prove(INCONSISTENT, 2)
    forged = dataclasses.replace(proof.record, after=dataclasses.replace(proof.record.after, quarantined=False))
    assert not verify_on_chain(dataclasses.replace(proof, record=forged), ledger.contract)
    never = dataclasses.replace(proof, record=dataclasses.replace(proof.record, round=9))
    assert not verify_on_chain(never, ledger.contract)  # a round with no anchor


def test_an_edited_database_row_fails_against_the_chain(rounds) -> None:
    ledger, _, keeper, _, _, _, *_ = rounds
    with keeper.store.engine.begin() as connection:
        connection.execute(text("UPDATE trust_records SET reason = 0 WHERE round = 2 AND device = :d"), {"d": INCONSISTENT})
    try:
        assert not verify_on_chain(keeper.store.prove(INCONSISTENT, 2), ledger.contract)
    finally:
        with keeper.store.engine.begin() as connection:
            connection.execute(text("UPDATE trust_records SET reason = 2 WHERE round = 2 AND device = :d"), {"d": INCONSISTENT})
    assert verify_on_chain(keeper.store.prove(INCONSISTENT, 2), ledger.contract)


def test_the_contract_derives_each_devices_difficulty_from_its_trust(rounds) -> None:
    ledger, _, keeper, outcomes, _, _, *_ = rounds
    assert ledger.contract.pow_range() == (4, 12, round(0.9 * 2**15))
    for x in outcomes[-1].records:
        _, _, bits = ledger.contract.device(ledger.device_accounts[x.device])
        assert bits == x.pow_bits == pow_bits_for(keeper.states[x.device].weight_trust, CONFIG)
    assert outcomes[-1].records[INCONSISTENT].pow_bits == 12  # quarantined: the most work
    assert outcomes[-1].records[0].pow_bits < 12


def test_round_one_difficulty_follows_the_models_initial_trust_not_one(rounds) -> None:
    _, _, _, _, results, first, *_ = rounds
    initial = 3 * 2**15 // 4  # r = 2, s = 0: floor(2^15 * 3 / 4), computed here from the rule, not the code
    assert initial_trust(CONFIG) == initial / 2**15
    # what the contract held when round 1's devices stamped: the registered trust and the bits it derives from it
    expected_bits = 12 - (12 - 4) * initial // round(0.9 * 2**15)  # max - floor((max - min) * T / F): 12 - 6 = 6
    assert expected_bits == 6
    assert first == {i: (initial / 2**15, expected_bits) for i in range(M)}
    assert results[0].trust == {i: initial / 2**15 for i in range(M)}  # round 1 weighted with the same trust
    # the registered trust of 1.0 (the ledger's default) would have given the trusted minimum instead
    assert pow_bits_for(2**15, CONFIG) == 4 != expected_bits


def test_a_stamp_at_the_trusted_difficulty_is_refused_for_a_quarantined_device(rounds) -> None:
    ledger, federation, _, _, _, _, *_ = rounds
    board = federation.devices[INCONSISTENT].board  # the device's own key signs its commitments
    account = board.account
    deployment = (ledger.contract.address, ledger.contract.chain_id)
    ledger.open_round(3, bytes(32))
    root = next(
        r for r in (bytes([k]) * 32 for k in range(1, 256))
        if not pow_valid(*deployment, account, 3, r, pow_stamp(*deployment, account, 3, r, 4), 12)
    )
    with pytest.raises(ChainRevertError) as caught:  # stamped at the trusted 4 bits: below its 12, reverted
        ledger.contract.relay_commit(ledger.contract.sign_commit(board.key, 3, root, pow_stamp(*deployment, account, 3, root, 4), 4), account)
    assert caught.value.error == "StalePow" and caught.value.args_by_name["required"] == 12
    assert not ledger.contract.pow_refused(3, INCONSISTENT)
    ledger.contract.relay_commit(ledger.contract.sign_commit(board.key, 3, root, pow_stamp(*deployment, account, 3, root, 12), 12), account)
    assert ledger.commitment(3, INCONSISTENT) == bind_commitment(root, 3, INCONSISTENT)


def test_trust_is_committed_once_after_the_round_and_only_the_admin_sets_the_range(rounds) -> None:
    ledger, _, _, _, _, _, keys, _ = rounds
    contract, device = ledger.contract, ledger.chain.new_account()  # neither admin nor coordinator, as a device
    vote = TrustVote.of(b"\x01" * 32, [0], [2**15])
    signed = [vote.sign(key, ledger.context, 3) for key in keys.values()]
    for call, error in [
        (lambda: contract.commit_trust(2, vote.root, vote.slots, vote.words, [vote.sign(k, ledger.context, 2) for k in keys.values()]), "AlreadyDone"),
        (lambda: contract.commit_trust(3, vote.root, vote.slots, vote.words, signed, sender=device), "WrongPhase"),  # round 3 is still open
        (lambda: contract.set_pow_range(0, 8, sender=device), "NotAdmin"),
        (lambda: contract.set_pow_range(0, 8, 0), "BadTrust"),
        (lambda: contract.set_pow_range(0, 8, 2**15 + 1), "BadTrust"),
        (lambda: contract.set_pow_range(9, 8), "BadPowBits"),
        (lambda: contract.set_pow_range(0, 65), "BadPowBits"),
    ]:
        with pytest.raises(ChainRevertError) as caught:
            call()
        assert caught.value.error == error


def test_anyone_can_check_the_store_against_the_agreed_decisions(rounds) -> None:
    from ppbfl.chain.merkle import root_of_leaves
    from ppbfl.trust.audit import audit_records, audit_store
    from ppbfl.trust.reputation import update

    ledger, _, keeper, _, _, _, *_ = rounds
    assert audit_store(keeper.store, ledger.contract, CONFIG) == {1: [], 2: []}
    # a relay that anchors its own story: device 4 "accepted" in round 2, states recomputed, root of the lie
    records = keeper.store.records(2)
    lie = records[INCONSISTENT]
    lie = dataclasses.replace(lie, evidence=dataclasses.replace(lie.evidence, reason=0))
    lie = dataclasses.replace(lie, after=update(lie.before, lie.evidence, CONFIG))
    forged = [lie if x.device == INCONSISTENT else x for x in records]
    forged_root = root_of_leaves([x.leaf for x in forged])
    previous = {x.device: x.after for x in keeper.store.records(1)}
    agreed = {d.device_id: d.reason for d in ledger.contract.decisions(2)}
    problems = audit_records(forged, previous, agreed, M, forged_root, CONFIG)
    assert problems == [f"device {INCONSISTENT}: evidence reason 0, the chain agreed 2"]
    committed = ledger.contract.committed_trust(2)
    assert audit_records(records, previous, agreed, M, keeper.store.root(2), CONFIG, committed) == []
    assert audit_records(records, previous, agreed, M, keeper.store.root(2), CONFIG, {**committed, 0: 1}) == [
        f"device 0: the chain holds trust 1, the record {records[0].after.weight_trust}"
    ]
    assert audit_records(forged[:-1], previous, agreed, M, forged_root, CONFIG)[:2] == [
        "the records do not fold to the anchored root", f"devices [{M - 1}] of the round have no record",
    ]


def test_agreed_update_refuses_evidence_no_edge_node_sees(rounds) -> None:
    """PoW refusals and bare IDS flags are the coordinator's claims: with a ledger the keeper refuses
    them (typed, nothing stored; IDS flags enter as signed reports, tests/test_trust_ids_flags.py); a node asked for a round it took no part in, or a witness fed an
    old round or an unregistered device, refuses with a typed error."""
    ledger, federation, keeper, _, results, *_ = rounds
    for key, kwargs in (("ids_flags", {"ids_flags": {0: 1}}), ("pow_failures", {"pow_failures": [0]})):
        with pytest.raises(ConfigError) as caught:
            keeper.after_round(dataclasses.replace(results[1], round=9), **kwargs)
        assert caught.value.key == key
    assert 9 not in keeper.store.rounds()
    node = next(iter(federation.deployment.nodes.values()))
    with pytest.raises(OutOfPhaseError, match="round 9"):
        node.trust_vote(9, ledger.context, {})
    assert node.trust_witness is not None
    with pytest.raises(ConfigError) as old:
        node.trust_witness.vote(2, {}, {})
    assert old.value.key == "round"
    with pytest.raises(ConfigError) as unknown:
        node.trust_witness.vote(9, {M: results[1].decision.decisions[0]}, {})
    assert unknown.value.key == "decided"
