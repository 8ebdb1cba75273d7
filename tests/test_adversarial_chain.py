"""Attacks on the round contract (issue 12, item 6): closing without a passed audit, audits with
a named liar's share or after a pass, rounds stuck in any phase, and commitments or PoW stamps
replayed into another round, another device or another deployment.

Each test deploys a fresh consortium (t = 3, n = 5) on one embedded py-evm chain and drives the
contract through its typed driver (the helpers of ``tests/test_chain_contract.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain, ChainRevertError, Failure, Phase, bind_commitment, pow_valid
from ppbfl.chain.scenario import setup_consortium
from ppbfl.protocol.ledger import ChainLedger, open_ledger
from tests.test_chain_contract import DEVICES, IDS, SCALARS, D, N, P, T, commit_all, reverts, to_aggregated, vectors


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
            r.audit(1, {e: shares[e - 1] for e in edges}, aggregate, sender=c.edge_accounts[2])
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
            r.audit(1, {e: shares[e - 1] for e in edges}, aggregate, sender=c.edge_accounts[3])
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
    for e in range(1, T + 1):
        r.post_scalars(e, 1, IDS, SCALARS)
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
    ledger = ChainLedger(chain, 2, 3, 1)
    r = ledger.contract
    ledger.open_round(1, keccak(b"model"))
    ledger.device_account(0).commit(1, keccak(b"root"))
    ledger.close_commitments(1)
    for e in (1, 2):
        r.post_scalars(e, 1, [0], np.ones((1, 2), dtype=np.uint64))
    for e in (1, 2):
        r.post_decisions(e, 1, [0], [0], [1])
    for e in (1, 2):
        r.commit_aggregate_share(e, 1, keccak(bytes([e])))
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
    with reverts("BadPow"):
        second.rounds.commit_shares(device, 1, root, nonce)
    first.rounds.commit_shares(device, 1, root, nonce)
    second.rounds.commit_shares(device, 1, root, second.rounds.pow_stamp(device, 1, root))
    assert second.rounds.commitment(1, 0) == bind_commitment(root, 1, 0)


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
