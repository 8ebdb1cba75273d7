"""Attacks on the round contract (issue 12, items 6 and 1): closing without a passed audit, audits
with a named liar's share or after a pass, rounds stuck in any phase, commitments or PoW stamps
replayed into another round, another device or another deployment, and a relay (the coordinator)
posting edge nodes' votes they did not sign.

Each test deploys a fresh consortium (t = 3, n = 5) on one embedded py-evm chain and drives the
contract through its typed driver (the helpers of ``tests/test_chain_contract.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain, ChainRevertError, Failure, Phase, bind_commitment, merkle_root, pow_valid
from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS, ChainKey
from ppbfl.chain.errors import PowRefusedError
from ppbfl.chain.scenario import Consortium, setup_consortium
from ppbfl.protocol.ledger import ChainLedger, DeviceChainAccount, open_ledger
from tests.test_chain_contract import (
    DEVICES,
    IDS,
    SCALARS,
    D,
    N,
    P,
    T,
    commit_all,
    commit_shares_of,
    post_decisions,
    post_scalars,
    reverts,
    to_aggregated,
    vectors,
)


@pytest.fixture(scope="module")
def chain():
    with Chain.embedded(accounts=160) as c:
        yield c


BLOCKS = 12  # phase deadlines: room for every transaction of a phase (a dev chain mines one block each), few blocks to mine past


@pytest.fixture
def c(chain):
    return setup_consortium(
        chain, T, N, DEVICES, pow_bits=0,
        commit_blocks=BLOCKS, verify_blocks=BLOCKS, aggregate_blocks=BLOCKS, audit_blocks=BLOCKS,
    )


def assert_failed_and_next_opens(c, failure: Failure) -> None:
    r = c.rounds
    s = r.round_state(1)
    assert (s.phase, s.failure) == (Phase.FAILED, failure)
    assert s.new_model_hash == bytes(32)  # a failed round links no model
    r.open_round(2, keccak(b"model"))
    assert r.round_state(2).phase == Phase.OPEN


# ------------------------------------------------------------------ a: no close without a passed audit


def test_a_wrong_aggregate_cannot_close_without_a_passed_audit(c):
    """The aggregator posts a wrong aggregate and skips the audit: the round never closes; after
    the audit window anyone aborts it (Failed, reason Unaudited, no model hash) and the next round opens."""
    r = c.rounds
    aggregate, shares = vectors()
    posted = (aggregate + np.uint64(1)) % np.uint64(P)
    to_aggregated(c, aggregate=aggregate, shares=shares, posted=posted)
    with reverts("AuditNotPassed"):
        r.close_round(1)
    c.chain.mine(BLOCKS + 1)
    with reverts("AuditNotPassed"):
        r.close_round(1)  # the window is over: still no close
    with reverts("DeadlinePassed"):
        r.audit(1, {e: shares[e - 1] for e in (1, 2, 3)}, posted)  # a late audit cannot pass it either
    r.abort_round(1, sender=c.devices[0])
    assert_failed_and_next_opens(c, Failure.UNAUDITED)


# ------------------------------------------------------------------ b: audits and liars


def lying(edge: int):
    aggregate, shares = vectors()
    wrong = shares.copy()
    wrong[edge - 1] = (wrong[edge - 1] + np.uint64(7)) % np.uint64(P)  # the node committed a wrong share
    return aggregate, wrong


def test_an_audit_may_not_use_the_share_of_a_named_liar(c):
    r = c.rounds
    aggregate, shares = lying(2)
    to_aggregated(c, aggregate=aggregate, shares=shares)
    r.report_liar(1, 2)
    for edges in ((1, 2, 3), (1, 2, 3, 4)):
        with pytest.raises(ChainRevertError, match=r"ReportedLiar\(") as caught:
            r.audit(1, {e: shares[e - 1] for e in edges}, aggregate, sender=c.chain.new_account())  # anyone, e.g. the liar, may audit
        assert caught.value.args_by_name["edgeIndex"] == 2
    assert r.round_state(1).phase == Phase.AGGREGATED
    assert r.audit(1, {e: shares[e - 1] for e in (1, 3, 4, 5)}, aggregate).passed
    r.close_round(1)
    s = r.round_state(1)
    assert (s.phase, s.new_model_hash) == (Phase.CLOSED, keccak(b"next"))


def test_a_liars_extra_audit_cannot_fail_a_passed_round(c):
    """Edge node 3 committed a wrong share and was not named; after the aggregator's audit passed
    it audits again with its own share (t and t + 1 shares): refused, the round closes."""
    r = c.rounds
    aggregate, shares = lying(3)
    to_aggregated(c, aggregate=aggregate, shares=shares)
    assert r.audit(1, {e: shares[e - 1] for e in (1, 2, 4)}, aggregate).passed
    for edges in ((1, 2, 3), (1, 2, 3, 4)):
        with reverts("AlreadyDone"):
            r.audit(1, {e: shares[e - 1] for e in edges}, aggregate, sender=c.chain.new_account())
    s = r.round_state(1)
    assert (s.phase, s.audit_passed, s.failure) == (Phase.AGGREGATED, True, Failure.NONE)
    r.close_round(1)
    assert r.round_state(1).phase == Phase.CLOSED


# ------------------------------------------------------------------ c: abort from every stuck phase


def to_phase(c, phase: Phase) -> None:
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    if phase == Phase.OPEN:
        return
    commit_all(c, 1)
    r.close_commitments(1)
    r.challenge_seed(1)
    if phase == Phase.COMMITTED:
        return
    post_scalars(c, range(1, T + 1))
    if phase == Phase.VERIFIED:
        return
    raise AssertionError(phase)


@pytest.mark.parametrize("phase", [Phase.OPEN, Phase.VERIFIED, Phase.AGGREGATED])  # Committed: test_chain_contract.py
def test_a_round_stuck_in_any_phase_is_aborted_by_anyone_after_its_deadline(c, phase):
    r = c.rounds
    if phase == Phase.AGGREGATED:
        aggregate, shares = to_aggregated(c)
        assert r.audit(1, {e: shares[e - 1] for e in (1, 2, 3)}, aggregate).passed  # passed, never closed
    else:
        to_phase(c, phase)
    assert r.round_state(1).phase == phase
    outsider = c.chain.new_account()
    with reverts("DeadlineNotReached"):
        r.abort_round(1, sender=outsider)
    c.chain.mine(BLOCKS + 1)
    if phase == Phase.AGGREGATED:
        with reverts("DeadlinePassed"):
            r.close_round(1)  # every phase ends by its deadline: after it only abortRound
    r.abort_round(1, sender=outsider)
    assert_failed_and_next_opens(c, Failure.TIMEOUT)
    with reverts("WrongPhase"):
        r.abort_round(1, sender=outsider)  # aborted once


def test_the_ledger_aborts_a_round_that_failed_after_its_aggregate(chain):
    """ChainLedger.abort_round (what Coordinator calls on any failure) takes an Aggregated round."""
    keys, device = {j: ChainKey.generate() for j in (1, 2, 3)}, ChainKey.generate()
    ledger = ChainLedger(chain, 2, 3, 1, edge_accounts={j: key.address for j, key in keys.items()}, device_accounts=[device.address])
    r = ledger.contract
    c = Consortium(chain, r, keys, [device.address])
    ledger.open_round(1, keccak(b"model"))
    DeviceChainAccount(r, device, 0).commit(1, keccak(b"root"))
    ledger.close_commitments(1)
    assert post_scalars(c, (1, 2), 1, [0], np.ones((1, 2), dtype=np.uint64))
    assert post_decisions(c, (1, 2), 1, [0], [0], [1])
    commit_shares_of(c, 1, {e: keccak(bytes([e])) for e in (1, 2)})
    r.post_aggregate(1, keccak(b"aggregate"), keccak(b"next"), D)
    ledger.abort_round(1)  # e.g. the audit transaction failed: the coordinator aborts
    s = r.round_state(1)
    assert (s.phase, s.failure, s.new_model_hash) == (Phase.FAILED, Failure.UNAUDITED, bytes(32))
    ledger.abort_round(1)  # already failed: nothing to do
    ledger.open_round(2, keccak(b"model"))
    assert r.round_state(2).phase == Phase.OPEN


# ------------------------------------------------------------------ d: bound commitments and stamps


def test_a_commitment_is_bound_to_its_round_and_device_at_zero_difficulty(c):
    """At powBits = 0 device 1 commits device 0's root first (front-running it), device 0's own
    commitment still goes through, and device 0 replays its root and nonce into the next round:
    each stored commitment is bound to its (round, device), so none is another's."""
    r = c.rounds
    a, b = c.devices[0], c.devices[1]
    root = keccak(b"device 0's shares")
    r.open_round(1, keccak(b"model"))
    r.commit_shares(b, 1, root, 0)
    r.commit_shares(a, 1, root, 0)
    c.chain.mine(BLOCKS + 1)
    r.abort_round(1)
    r.open_round(2, keccak(b"model"))
    r.commit_shares(a, 2, root, 0)
    stored = {(1, 0): r.commitment(1, 0), (1, 1): r.commitment(1, 1), (2, 0): r.commitment(2, 0)}
    for (round_, device), value in stored.items():
        assert value == bind_commitment(root, round_, device)
        assert value == keccak(root + round_.to_bytes(8, "big") + device.to_bytes(4, "big"))  # independent reference
    assert len(set(stored.values())) == 3 and root not in stored.values()


def test_a_stamp_is_bound_to_its_contract(chain):
    """A device registered in two deployments cannot reuse a 12-bit stamp of one in the other."""
    first = setup_consortium(chain, T, N, 1, pow_bits=12)
    second = setup_consortium(chain, T, N, 0)
    device = first.devices[0]
    second.rounds.register_device(device, 12)
    for consortium in (first, second):
        consortium.rounds.open_round(1, keccak(b"model"))
    chain_id = chain.w3.eth.chain_id
    root = next(
        x for x in (bytes([k]) * 32 for k in range(1, 256))
        if not pow_valid(second.rounds.address, chain_id, device, 1, x, first.rounds.pow_stamp(device, 1, x), 12)
    )
    nonce = first.rounds.pow_stamp(device, 1, root)
    with pytest.raises(PowRefusedError) as caught:  # the device's own transaction: its refusal is on chain
        second.rounds.commit_shares(device, 1, root, nonce, 12)
    assert (caught.value.round, caught.value.device_id, caught.value.bits) == (1, 0, 12)
    assert second.rounds.pow_refused(1, 0) and second.rounds.commitment(1, 0) == bytes(32)
    first.rounds.commit_shares(device, 1, root, nonce, 12)
    assert first.rounds.commitment(1, 0) == bind_commitment(root, 1, 0) and not first.rounds.pow_refused(1, 0)
    with reverts("AlreadyCommitted"):  # one entry per device and round: the refusal stands
        second.rounds.commit_shares(device, 1, root, second.rounds.pow_stamp(device, 1, root), 12)


def test_a_round_without_any_device_is_recorded_and_closes():
    """Every device withholds its update: the edge nodes still agree on chain on the empty scalars
    and decisions, the zero aggregate is audited and the round closes (it reverted WrongPhase)."""
    from ppbfl.field.fixed_point import FixedPointCodec
    from ppbfl.fl.federation import Federation
    from ppbfl.protocol.deployment import InProcessDeployment
    from ppbfl.protocol.round import Coordinator

    t, n, d = 2, 3, 16
    with open_ledger("embedded", t, n, devices=2) as ledger:
        deployment = InProcessDeployment(t, n, d)
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        federation = Federation(deployment, coordinator, range(2), ledger=ledger, owns_deployment=True)
        try:
            result = federation.run_round(1, {}, np.full(d, 0.01))
        finally:
            federation.close()
        assert result.devices == [] and not result.aggregate.any()
        s = ledger.contract.round_state(1)
        assert (s.phase, s.audit_passed, s.committed) == (Phase.CLOSED, True, 0)
        assert ledger.contract.decisions(1) == []


# ------------------------------------------------------------------ item 1: edge nodes sign their own votes

_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1


def forgeries(c, kind: int, round_: int, digest: bytes) -> list[tuple[str, list[bytes], str]]:
    """What a relay holding no edge key can submit as edge node 1's vote for ``digest``, and the
    contract error each must raise: (a) no or forged signatures; (b) node 1's genuine signatures
    of the same digest for another round, contract, chain or kind."""
    key, r = c.edge_keys[1], c.rounds
    genuine = r.attest(key, kind, round_, digest)
    s = int.from_bytes(genuine[32:64], "big")
    twin = genuine[:32] + (_ORDER - s).to_bytes(32, "big") + bytes([55 - genuine[64]])  # same signer, high s
    other_kind = KIND_DECISIONS if kind == KIND_SCALARS else KIND_SCALARS
    return [
        ("no signature", [], "SignaturesMissing"),
        ("the relay's own key", [r.attest(ChainKey.generate(), kind, round_, digest)], "UnknownSigner"),
        ("zero signature", [bytes(64) + b"\x1b"], "BadSignature"),
        ("v = 29", [genuine[:64] + bytes([genuine[64] + 2])], "BadSignature"),
        ("high-s twin of a genuine signature", [twin], "BadSignature"),
        ("another round", [r.attest(key, kind, round_ + 1, digest)], "UnknownSigner"),
        ("another contract", [key.attest(kind, c.devices[0], r.chain_id, round_, digest)], "UnknownSigner"),
        ("another chain", [key.attest(kind, r.address, r.chain_id + 1, round_, digest)], "UnknownSigner"),
        ("another kind", [r.attest(key, other_kind, round_, digest)], "UnknownSigner"),
    ]


def refused(send, cases) -> None:
    for what, signatures, error in cases:
        with pytest.raises(ChainRevertError) as caught:
            send(signatures)
        assert caught.value.error == error, what


@pytest.fixture
def signed(chain):
    blocks = 80  # every refused relay is a mined (reverted) transaction
    return setup_consortium(
        chain, T, N, DEVICES, pow_bits=0, commit_blocks=blocks, verify_blocks=blocks, aggregate_blocks=blocks, audit_blocks=blocks,
    )


def test_the_relay_cannot_post_scalars_or_decisions_the_edge_nodes_did_not_sign(signed):
    """The coordinator relays scalars and decisions: unsigned, forged, replayed from another
    round, contract, chain or kind, or with genuine signatures over altered bytes: each refused
    with a named error, and no vote is recorded; the genuine signatures then agree."""
    c, r = signed, signed.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    digest = keccak(r.pack_scalars(IDS, SCALARS))
    refused(lambda sigs: r.post_scalars(1, IDS, SCALARS, sigs), forgeries(c, KIND_SCALARS, 1, digest))
    forged = SCALARS.copy()
    forged[0, 0] += np.uint64(1)  # (c) t genuine signatures, other bytes
    refused(lambda sigs: r.post_scalars(1, IDS, forged, sigs), [("altered scalars", c.sign((1, 2, 3), KIND_SCALARS, 1, digest), "UnknownSigner")])
    s = r.round_state(1)
    assert (s.phase, s.scalar_voters, r.vote_word(1, KIND_SCALARS, keccak(r.pack_scalars(IDS, forged)))) == (Phase.COMMITTED, (), 0)
    assert r.post_scalars(1, IDS, SCALARS, c.sign((1, 2, 3), KIND_SCALARS, 1, digest))  # one transaction, t votes

    reasons, weights = [0, 0, 3], [1 << 16, 1 << 16, 0]
    digest = keccak(r.pack_decisions(IDS, reasons, weights))
    refused(lambda sigs: r.post_decisions(1, IDS, reasons, weights, sigs), forgeries(c, KIND_DECISIONS, 1, digest))
    refused(
        lambda sigs: r.post_decisions(1, IDS, [0, 0, 0], [1 << 16] * 3, sigs),  # the relay accepts device 2 under their signatures
        [("altered decisions", c.sign((1, 2, 3), KIND_DECISIONS, 1, digest), "UnknownSigner")],
    )
    refused(lambda sigs: r.vote_decisions(1, digest, sigs), [("forged vote", [r.attest(ChainKey.generate(), KIND_DECISIONS, 1, digest)], "UnknownSigner")])
    assert r.round_state(1).decision_voters == ()
    assert r.post_decisions(1, IDS, reasons, weights, c.sign((1, 2, 3), KIND_DECISIONS, 1, digest))


def test_the_relay_cannot_commit_aggregate_shares_the_edge_nodes_did_not_sign_and_the_round_closes(signed):
    """The coordinator commits aggregate-share roots for the nodes: unsigned, forged, replayed, or
    node 1's genuine signature under another root: refused; the honest round then closes with
    its audit."""
    c, r = signed, signed.rounds
    aggregate, shares = vectors()
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    assert post_scalars(c, (1, 2, 3))
    assert post_decisions(c, (1, 2, 3), 1, IDS, [0, 0, 0], [1, 1, 1])
    root = merkle_root(shares[0])
    refused(lambda sigs: r.commit_aggregate_shares(1, [root] * max(1, len(sigs)), sigs), forgeries(c, KIND_AGGREGATE_SHARE, 1, root))
    wrong = merkle_root((shares[0] + np.uint64(1)) % np.uint64(P))
    refused(lambda sigs: r.commit_aggregate_shares(1, [wrong], sigs), [("altered root", c.sign([1], KIND_AGGREGATE_SHARE, 1, root), "UnknownSigner")])
    assert r.round_state(1).aggregate_shares == ()
    commit_shares_of(c, 1, {e: merkle_root(shares[e - 1]) for e in range(1, N + 1)})  # one transaction, n roots
    assert [r.aggregate_share_root(1, e) for e in range(1, N + 1)] == [merkle_root(x) for x in shares]
    r.post_aggregate(1, merkle_root(aggregate), keccak(b"next"), D)
    assert r.audit(1, {e: shares[e - 1] for e in (1, 2, 3, 4)}, aggregate).passed
    r.close_round(1)
    assert r.round_state(1).phase == Phase.CLOSED


def test_a_bad_node_signature_leaves_only_that_node_out_and_altered_replies_get_nothing_agreed():
    """Round 1: edge node 1 returns a corrupted signature: the ledger leaves only node 1 out (its
    batch would revert), the others agree and the round closes with its audit. Round 2: the
    coordinator's ledger relays forged scalars (every node's ``norm2`` + 1) under the nodes'
    genuine signatures: no signature matches, nothing is agreed on chain, the round fails and is
    aborted on chain; submitted directly, the contract refuses the same relay (UnknownSigner)."""
    import dataclasses

    from ppbfl.field.fixed_point import FixedPointCodec
    from ppbfl.fl.federation import Federation
    from ppbfl.protocol.deployment import InProcessDeployment
    from ppbfl.protocol.round import Coordinator
    from ppbfl.protocol.round_errors import RoundFailedError

    t, n, d, m = 2, 3, 16, 2
    with open_ledger("embedded", t, n, devices=m) as ledger:
        honest_record = ledger.record_round
        seen = {}

        def tampering(round_, result, replies, secret, model_hash):
            if round_ == 1:  # node 1's decisions signature with one bit flipped
                sigs = list(replies[1].chain_signatures)
                sigs[1] = sigs[1][:10] + bytes([sigs[1][10] ^ 1]) + sigs[1][11:]
                replies = {**replies, 1: dataclasses.replace(replies[1], chain_signatures=sigs)}
            else:
                replies = {j: dataclasses.replace(r, norm2=(r.norm2 + np.uint64(1)) % np.uint64(P)) for j, r in replies.items()}
                seen.update(ids=list(result.devices), replies=replies)
            return honest_record(round_, result, replies, secret, model_hash)

        ledger.record_round = tampering
        deployment = InProcessDeployment(t, n, d)
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        rng = np.random.default_rng(0)
        reference = rng.normal(0, 1e-3, d)
        with Federation(deployment, coordinator, range(m), ledger=ledger, owns_deployment=True) as federation:
            federation.run_round(1, {i: reference + rng.normal(0, 1e-3, d) for i in range(m)}, reference)
            with pytest.raises(RoundFailedError, match="fewer than t"):
                federation.run_round(2, {i: reference + rng.normal(0, 1e-3, d) for i in range(m)}, reference)
        r = ledger.contract
        s = r.round_state(1)
        assert (s.phase, s.scalar_voters, s.decision_voters, s.aggregate_shares) == (Phase.CLOSED, (2, 3), (2, 3), (2, 3))
        assert ledger.records[1].unsigned == (1,) and ledger.records[1].audit.passed
        assert set(ledger.edge_accounts.values()) == {node.chain_address for node in deployment.nodes.values()}
        s = r.round_state(2)
        assert (s.phase, s.failure, s.scalar_voters, s.scalars_hash) == (Phase.FAILED, Failure.TIMEOUT, (), bytes(32))
        reply = seen["replies"][1]
        values = np.stack([reply.norm2, reply.dot_ref], axis=1).astype(np.uint64)
        ledger.open_round(3, keccak(b"model"))
        for i, device in federation.devices.items():
            device.board.commit(3, keccak(bytes([i])))
        ledger.close_commitments(3)
        with reverts("UnknownSigner"):  # round 2's signatures, forged values
            r.post_scalars(3, seen["ids"], values, [seen["replies"][j].chain_signatures[0] for j in (1, 2)])


# ------------------------------------------------------------------ item 1, step 2: devices sign their own commitments


def test_the_coordinator_cannot_commit_for_a_device_whose_key_it_does_not_hold(chain):
    """A device's chain key is its own: the coordinator's node cannot send ``commitShares`` as the
    device (typed ChainError, nothing committed); the device's own signed transaction, relayed
    unchanged, commits its root bound to (round, device) with a stamp over the device's address."""
    from ppbfl.chain import ChainError

    keys = {j: ChainKey.generate() for j in (1, 2, 3)}
    device = ChainKey.generate()
    ledger = ChainLedger(chain, 2, 3, 1, edge_accounts={j: k.address for j, k in keys.items()}, device_accounts=[device.address])
    r = ledger.contract
    ledger.open_round(1, keccak(b"model"))
    root = keccak(b"device 0's shares")
    stamp = r.pow_stamp(device.address, 1, root)
    with pytest.raises(ChainError, match="refused"):
        r.commit_shares(device.address, 1, root, stamp)
    raw = r.sign_commit(device, 1, root, stamp, r.device(device.address)[2])  # the device's own transaction
    other = keccak(b"the relay's root")
    altered = raw.replace(root, other)  # the relay swaps the root: the signature recovers another, unfunded sender
    assert altered != raw
    with pytest.raises(ChainError, match="refused"):
        r.relay_commit(altered, device.address)
    assert r.commitment(1, 0) == bytes(32) and r.round_state(1).committed == 0
    DeviceChainAccount(r, device, 0).commit(1, root)
    assert r.commitment(1, 0) == bind_commitment(root, 1, 0) and r.round_state(1).committed == 1
    with reverts("AlreadyCommitted"):
        DeviceChainAccount(r, device, 0).commit(1, keccak(b"another root"))


def test_a_flame_round_is_signed_and_closes_on_chain():
    """Rule "flame": the FlameAggregateRequest (built from the AggregateRequest's fields) carries
    the chain context, every node signs its votes, and the round closes with its audit; each node
    computes the round's trust update from the FLAME decisions it signed, and t of them commit it."""
    from ppbfl.field.fixed_point import FixedPointCodec
    from ppbfl.fl.federation import Federation
    from ppbfl.protocol.deployment import InProcessDeployment
    from ppbfl.protocol.round import Coordinator
    from ppbfl.trust.keeper import TrustKeeper

    t, n, d, m = 2, 3, 16, 4
    with open_ledger("embedded", t, n, devices=m) as ledger:
        deployment = InProcessDeployment(t, n, d)
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger, rule="flame")
        rng = np.random.default_rng(1)
        reference = rng.normal(0, 1e-3, d)
        keeper = TrustKeeper(range(m), ledger=ledger, voters=list(deployment.nodes.values()))
        with Federation(deployment, coordinator, range(m), ledger=ledger, owns_deployment=True, trust=keeper) as federation:
            result = federation.run_round(1, {i: reference + rng.normal(0, 1e-3, d) for i in range(m)}, reference)
        assert keeper.last is not None and ledger.contract.round_state(1).anchor == keeper.last.root
        assert all(node.trust_witness is not None and node.trust_witness.states == keeper.states for node in deployment.nodes.values())
        s = ledger.contract.round_state(1)
        assert (s.phase, s.scalar_voters, s.decision_voters, s.aggregate_shares) == (Phase.CLOSED, (1, 2, 3), (1, 2, 3), (1, 2, 3))
        assert ledger.records[1].unsigned == () and ledger.records[1].audit.passed
        assert [x.reason == 0 for x in ledger.contract.decisions(1)] == [d.accepted for d in result.decision.decisions]
