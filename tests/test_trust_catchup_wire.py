"""Catch-up of an edge process without a chain client: a missed round relayed as its records plus
the t kind-4 signatures ``commitTrust`` took, checked by the node against the registered edge
accounts its operator gave it and against its own states.

Three honest witnesses (t = 2 of n = 3, each with its own chain key) compute rounds 1..3 from the
same decisions, as the edge nodes do; a fourth witness stored round 1 only. A relay that forges
records, sends another round's records, or brings fewer than t valid registered signatures gets a
typed ConfigError naming the field, and nothing is adopted; the honest relay's copy is adopted; a
node that voted from stale states is repaired."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.merkle import root_of_leaves
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.defense.decision import DeviceDecision
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.deployment import InProcessDeployment, edge_witness
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import MessageError, RemoteError
from ppbfl.protocol.messages import TRUST_ROW_BYTES, Ack, TrustBehind, TrustCatchUp, TrustQuery
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.transport import InProcessTransport
from ppbfl.protocol.trust_voter import RemoteTrustVoter
from ppbfl.protocol.wire import encode
from ppbfl.trust import TrustConfig
from ppbfl.trust.catchup import ROW_BYTES, TrustSigners, records_from_rows, records_to_rows
from ppbfl.trust.record import LEAF_DTYPE, record_leaves
from ppbfl.trust.reputation import update
from ppbfl.trust.store import TrustStore
from ppbfl.trust.witness import TrustWitness

T, N, M = 2, 3, 5
CONFIG = TrustConfig(pow_min_bits=2, pow_max_bits=6)
CONTEXT = ChainContext("0x" + "ab" * 20, 1337)
FLIPPER = 1


def _decided(round: int) -> dict[int, DeviceDecision]:
    """Round ``round``'s agreed decisions: the flipper rejected, device 4 missing in round 2."""
    out = {i: DeviceDecision(0.9, None, 1.0, 1.0, "accepted") for i in range(M)}
    out[FLIPPER] = DeviceDecision(-0.8, None, 0.0, 1.0, "negative cosine")
    if round == 2:
        del out[4]
    return out


def _commitments(round: int) -> dict[int, bytes]:
    return {i: bytes([round, i]) * 16 for i in range(M)}


@pytest.fixture(scope="module")
def chain_facts():
    """(keys, signers, rounds: round -> (records, signatures of all three nodes)) from three honest witnesses."""
    keys = [ChainKey.generate() for _ in range(N)]
    signers = TrustSigners.of([k.address for k in keys], T)
    witnesses = [TrustWitness(range(M), CONFIG) for _ in range(N)]
    rounds = {}
    for r in (1, 2, 3):
        votes = [w.vote(r, _decided(r), _commitments(r)) for w in witnesses]
        assert votes[0] == votes[1] == votes[2]
        rounds[r] = (witnesses[0].store.records(r), [votes[0].sign(k, CONTEXT, r) for k in keys])
    return keys, signers, rounds


def _behind(signers, rounds) -> TrustWitness:
    """A witness that stored round 1 only."""
    witness = TrustWitness(range(M), CONFIG, TrustStore(), signers)
    witness.store.add_round(1, rounds[1][0])
    witness.states = {x.device: x.after for x in rounds[1][0]}
    return witness


def _lift(records):
    """The flipper's record as if accepted (after recomputed by the rule: only the signatures can tell)."""
    out = []
    for x in records:
        if x.device == FLIPPER:
            x = dataclasses.replace(x, evidence=dataclasses.replace(x.evidence, reason=0))
            x = dataclasses.replace(x, after=update(x.before, x.evidence, CONFIG))
        out.append(x)
    return out


def _untouched(witness: TrustWitness, rounds) -> None:
    assert witness.store.rounds() == [1] and witness.states == {x.device: x.after for x in rounds[1][0]}


def test_the_honest_relay_s_copy_is_adopted_once(chain_facts) -> None:
    _, signers, rounds = chain_facts
    witness = _behind(signers, rounds)
    records, signatures = rounds[2]
    assert witness.behind(2) and not witness.behind(1)
    assert witness.adopt(2, records_to_rows(records), signatures[:T], CONTEXT)
    assert witness.store.rounds() == [1, 2] and witness.store.records(2) == records
    assert witness.states == {x.device: x.after for x in records} and not witness.behind(2)
    assert not witness.adopt(2, records_to_rows(records), signatures[1:], CONTEXT)  # already held: nothing changes
    assert witness.store.rounds() == [1, 2]


def _forged_records(rounds):
    records, signatures = rounds[2]
    return 2, records_to_rows(_lift(records)), signatures, "signatures", "0 valid signatures"


def _other_round(rounds):
    records, signatures = rounds[3]
    return 2, records_to_rows(records), signatures, "records", "of round 3, not 2"


def _other_round_relabelled(rounds):  # round 1's records with round 2's number: the leaves change, so do the signatures
    return 2, records_to_rows([dataclasses.replace(x, round=2) for x in rounds[1][0]]), rounds[2][1], "signatures", "0 valid"


def _vote_of(records) -> TrustVote:
    """The kind-4 vote of ``records`` (root and Q1.15 words), as a node computes it."""
    root = root_of_leaves([leaf.tobytes() for leaf in record_leaves(sorted(records, key=lambda x: x.device))])
    return TrustVote.of(root, [x.device for x in records], [x.after.weight_trust for x in records])


def _one_valid_signature(rounds):  # one node's signature twice, and an unregistered key's
    records, signatures = rounds[2]
    stranger = _vote_of(records).sign(ChainKey.generate(), CONTEXT, 2)
    return 2, records_to_rows(records), [signatures[0], signatures[0], stranger], "signatures", "1 valid signatures"


def _other_context(rounds):
    records, signatures = rounds[2]
    return 2, records_to_rows(records), signatures, "signatures", "0 valid", ChainContext("0x" + "cd" * 20, 1337)


def _record_left_out(rounds):
    records, signatures = rounds[2]
    return 2, records_to_rows(records[:-1]), signatures, "records", f"{M - 1} records for {M} registered devices"


def _device_twice(rounds):
    records, signatures = rounds[2]
    return 2, records_to_rows([records[0], *records[:-1]]), signatures, "records", "once each"


def _stored_trust_altered(rounds):  # the row's trust_after is not its state's: not canonical
    records, signatures = rounds[2]
    rows = records_to_rows(records)
    at = LEAF_DTYPE.fields["trust_after"][1] + 1
    rows[0] = rows[0][:at] + bytes([rows[0][at] ^ 1]) + rows[0][at + 1:]
    return 2, rows, signatures, "records", "not canonical"


@pytest.mark.parametrize("forge", [
    _forged_records, _other_round, _other_round_relabelled, _one_valid_signature, _other_context, _record_left_out,
    _device_twice, _stored_trust_altered,
])
def test_a_lying_relay_gets_a_typed_refusal_and_nothing_is_adopted(chain_facts, forge) -> None:
    _, signers, rounds = chain_facts
    witness = _behind(signers, rounds)
    round, rows, signatures, key, why, *context = forge(rounds)
    with pytest.raises(ConfigError) as caught:
        witness.adopt(round, rows, signatures, context[0] if context else CONTEXT)
    assert caught.value.key == key and why in str(caught.value)
    _untouched(witness, rounds)


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, M - 1), at=st.integers(0, TRUST_ROW_BYTES - 1), flip=st.integers(1, 255))
def test_any_byte_changed_in_a_relayed_row_is_refused(chain_facts, row, at, flip) -> None:
    """Property: one byte of one row changed (any field, any value) never gets adopted with the honest signatures."""
    _, signers, rounds = chain_facts
    witness = _behind(signers, rounds)
    rows = records_to_rows(rounds[2][0])
    rows[row] = rows[row][:at] + bytes([rows[row][at] ^ flip]) + rows[row][at + 1:]
    with pytest.raises(ConfigError) as caught:
        witness.adopt(2, rows, rounds[2][1], CONTEXT)
    assert caught.value.key in ("records", "signatures")
    _untouched(witness, rounds)


def test_t_signed_records_that_break_the_node_s_own_states_are_refused(chain_facts) -> None:
    """Even t valid signatures do not make the node take a ``before`` that is not its own state
    (what t colluding edge nodes could sign); and a node with no registered accounts adopts nothing."""
    keys, signers, rounds = chain_facts
    witness = _behind(signers, rounds)
    lifted = _lift(rounds[2][0])
    lifted = [dataclasses.replace(x, before=dataclasses.replace(x.before, positive=x.before.positive + 1)) if x.device == 0 else x
              for x in lifted]
    lifted = [dataclasses.replace(x, after=update(x.before, x.evidence, CONFIG)) for x in lifted]
    vote = _vote_of(lifted)
    colluding = [vote.sign(k, CONTEXT, 2) for k in keys[:T]]
    with pytest.raises(ConfigError) as caught:
        witness.adopt(2, records_to_rows(lifted), colluding, CONTEXT)
    assert caught.value.key == "records" and "device 0: before" in str(caught.value)
    _untouched(witness, rounds)
    bare = TrustWitness(range(M), CONFIG)
    with pytest.raises(ConfigError) as caught:
        bare.adopt(1, records_to_rows(rounds[1][0]), rounds[1][1], CONTEXT)
    assert caught.value.key == "trust_signers" and bare.store.rounds() == []


def test_a_node_that_voted_from_stale_states_is_repaired(chain_facts) -> None:
    """A node told nothing was anchored since round 1 (a lying relay) votes round 3 from round 1's
    states: its round 3 differs from the agreed one. Relayed rounds 2 and 3 replace it."""
    _, signers, rounds = chain_facts
    witness = _behind(signers, rounds)
    stale = witness.vote(3, _decided(3), _commitments(3))
    assert witness.store.rounds() == [1, 3] and stale != _vote_of(rounds[3][0])
    assert witness.adopt(2, records_to_rows(rounds[2][0]), rounds[2][1], CONTEXT)  # round 3 came from states without it
    assert witness.store.rounds() == [1, 2]
    assert witness.adopt(3, records_to_rows(rounds[3][0]), rounds[3][1], CONTEXT)
    assert witness.store.rounds() == [1, 2, 3] and witness.store.records(3) == rounds[3][0]
    assert witness.states == {x.device: x.after for x in rounds[3][0]}


# -- the wire: the messages and the edge node's handlers ------------------------------------------


@pytest.mark.parametrize("change, field", [
    ({"records": [bytes(102)]}, "records[0]"), ({"signatures": [bytes(64)]}, "signatures[0]"),
    ({"signatures": [bytes(65)] * 65}, "signatures"), ({"chain_contract": bytes(19)}, "chain_contract"),
])
def test_malformed_catch_up_messages_are_message_errors(change, field) -> None:
    good = TrustCatchUp(bytes(20), 1, [bytes(103)], [bytes(65)])
    encode(good, sender="coordinator", round=2)
    with pytest.raises(MessageError) as caught:
        encode(dataclasses.replace(good, **change), sender="coordinator", round=2)
    assert caught.value.field == field


@pytest.fixture(scope="module")
def node(chain_facts):
    """Edge node 1 of an in-process tier, set up, whose witness (registered signers) stored round 1."""
    keys, _, rounds = chain_facts
    deployment = InProcessDeployment(T, N, 16)
    Coordinator(T, N, 16, deployment.coordinator, codec=FixedPointCodec()).setup()
    node = deployment.nodes[edge_party(1)]
    node.trust_witness = edge_witness(CONFIG.model_dump(mode="json"), M, None, {"accounts": [k.address for k in keys], "t": T})
    node.trust_witness.store.add_round(1, rounds[1][0])
    node.trust_witness.states = {x.device: x.after for x in rounds[1][0]}
    return deployment


def _contract() -> bytes:
    return bytes.fromhex(CONTEXT.contract[2:])


def test_the_handler_says_behind_then_adopts_a_relayed_round(node, chain_facts) -> None:
    _, _, rounds = chain_facts
    transport = InProcessTransport("coordinator", node.nodes)
    query = TrustQuery(_contract(), CONTEXT.chain_id, list(range(M)), [_commitments(3)[i] for i in range(M)], 2)
    reply = transport.call(edge_party(1), query, round=3, timeout=5.0).message
    assert reply == TrustBehind(1)
    records, signatures = rounds[2]
    forged = TrustCatchUp(_contract(), CONTEXT.chain_id, records_to_rows(_lift(records)), signatures)
    with pytest.raises(RemoteError) as caught:
        transport.call(edge_party(1), forged, round=2, timeout=5.0)
    assert caught.value.remote_type == "ConfigError" and "signatures" in str(caught.value)
    assert node.nodes[edge_party(1)].trust_witness.store.rounds() == [1]
    honest = TrustCatchUp(_contract(), CONTEXT.chain_id, records_to_rows(records), signatures[1:])
    assert transport.call(edge_party(1), honest, round=2, timeout=5.0).message == Ack("trust round 2 adopted")
    assert node.nodes[edge_party(1)].trust_witness.store.rounds() == [1, 2]
    from_device = InProcessTransport("device-0", node.nodes)
    with pytest.raises(RemoteError, match="trust catch-up must come from coordinator"):
        from_device.call(edge_party(1), honest, round=2, timeout=5.0)


@pytest.mark.parametrize("signers, why", [
    ({"accounts": ["0x" + "11" * 20]}, "expected"), ({"accounts": ["0x" + "11" * 20], "t": 2}, "threshold 2 for 1"),
    ({"accounts": "0x11", "t": 1}, "expected"),
])
def test_bad_signer_settings_are_config_errors(signers, why) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        edge_witness(CONFIG.model_dump(mode="json"), M, None, signers)
    assert caught.value.key == "trust_signers"


def test_rows_round_trip(chain_facts) -> None:
    """Rows decode to the same records (NaN cosine of a missing device kept as NaN), so the same leaves."""
    _, _, rounds = chain_facts
    assert ROW_BYTES == TRUST_ROW_BYTES
    for r, (records, _) in rounds.items():
        decoded = records_from_rows(records_to_rows(records), r, range(M))
        assert [x.leaf for x in decoded] == [x.leaf for x in records]
        assert [dataclasses.replace(x, cosine=0.0) for x in decoded] == [dataclasses.replace(x, cosine=0.0) for x in records]
        assert [np.isnan(x.cosine) for x in decoded] == [np.isnan(x.cosine) for x in records]
    assert any(np.isnan(x.cosine) for x in rounds[2][0])  # device 4 missing in round 2


def test_a_relayed_round_repairs_a_process_whose_stored_round_diverged(chain_facts) -> None:
    """What the keeper does after a process's vote disagreed: ``RemoteTrustVoter.relay_rounds``
    sends the agreed round; the node (round 2 voted from other decisions) replaces its copy."""
    keys, _, rounds = chain_facts
    deployment = InProcessDeployment(T, N, 16)
    Coordinator(T, N, 16, deployment.coordinator, codec=FixedPointCodec()).setup()
    node = deployment.nodes[edge_party(2)]
    node.trust_witness = edge_witness(CONFIG.model_dump(mode="json"), M, None, {"accounts": [k.address for k in keys], "t": T})
    node.trust_witness.store.add_round(1, rounds[1][0])
    node.trust_witness.states = {x.device: x.after for x in rounds[1][0]}
    diverged = node.trust_witness.vote(2, {i: DeviceDecision(0.9, None, 1.0, 1.0, "accepted") for i in range(M)}, _commitments(2))
    assert diverged != _vote_of(rounds[2][0])
    voter = RemoteTrustVoter(InProcessTransport("coordinator", deployment.nodes), 2, keys[1].address, M)
    voter.relay_rounds(CONTEXT, [2, 5], lambda r: rounds.get(r))  # round 5: nothing to relay, skipped
    assert node.trust_witness.store.records(2) == rounds[2][0] and node.trust_witness.store.rounds() == [1, 2]
    with pytest.raises(RemoteError) as caught:  # round 3 relayed with round 2's signatures: refused, typed
        voter.relay_rounds(CONTEXT, [3], lambda r: (rounds[3][0], rounds[2][1]))
    assert caught.value.remote_type == "ConfigError" and node.trust_witness.store.rounds() == [1, 2]
