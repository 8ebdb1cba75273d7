"""PPBFLRounds on the embedded py-evm chain: every state transition, every revert, the audit.

Each test deploys a fresh contract (t = 3, n = 5, three devices) and drives it through the
typed driver; a revert must surface as ChainRevertError carrying the custom error's name.
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_hash.auto import keccak

from ppbfl.chain import (
    PARTY_AGGREGATOR,
    PARTY_UNATTRIBUTED,
    Chain,
    ChainRevertError,
    ChainValueError,
    Failure,
    Phase,
    bind_commitment,
    merkle_root,
    merkle_tree,
)
from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS, KIND_TRUST
from ppbfl.chain.scenario import setup_consortium
from ppbfl.chain.votes import TrustVote
from ppbfl.field import FieldRNG
from ppbfl.sharing import reconstruct, share

P = (1 << 61) - 1
T, N, DEVICES, D = 3, 5, 3, 40
BLOCKS = 30


@pytest.fixture(scope="module")
def chain():
    with Chain.embedded(accounts=200) as c:
        yield c


@pytest.fixture
def c(chain):
    return setup_consortium(
        chain, T, N, DEVICES, pow_bits=4,
        commit_blocks=BLOCKS, verify_blocks=BLOCKS, aggregate_blocks=BLOCKS, audit_blocks=BLOCKS,
    )


def reverts(error: str):
    return pytest.raises(ChainRevertError, match=rf"reverted: {error}\(")


def commit_all(c, round_=1, devices=None):
    r = c.rounds
    for device in devices if devices is not None else c.devices:
        root = keccak(device.encode() + bytes([round_]))
        r.commit_shares(device, round_, root, r.pow_stamp(device, round_, root))


SCALARS = np.arange(2 * DEVICES, dtype=np.uint64).reshape(DEVICES, 2) + np.uint64(10**12)
IDS = list(range(DEVICES))


def post_scalars(c, edges, round_=1, ids=IDS, values=SCALARS, **kw):
    """Relay ``edges``' signed votes for ``values`` in one transaction (as each node signs them)."""
    digest = keccak(c.rounds.pack_scalars(ids, values))
    return c.rounds.post_scalars(round_, ids, values, c.sign(edges, KIND_SCALARS, round_, digest), **kw)


def post_decisions(c, edges, round_, ids, reasons, weights, **kw):
    digest = keccak(c.rounds.pack_decisions(ids, reasons, weights))
    return c.rounds.post_decisions(round_, ids, reasons, weights, c.sign(edges, KIND_DECISIONS, round_, digest), **kw)


def commit_shares_of(c, round_, roots: dict):
    """Relay the aggregate-share roots ``{edge: root}`` with each node's signature, in one transaction."""
    signatures = [c.sign([e], KIND_AGGREGATE_SHARE, round_, root)[0] for e, root in roots.items()]
    c.rounds.commit_aggregate_shares(round_, list(roots.values()), signatures)


def to_verified(c, round_=1):
    r = c.rounds
    r.open_round(round_, keccak(b"model"))
    commit_all(c, round_)
    r.close_commitments(round_)
    r.challenge_seed(round_)
    assert post_scalars(c, range(1, T + 1), round_)


def decide(c, round_=1):
    assert post_decisions(c, range(1, T + 1), round_, IDS, [0, 0, 3], [1 << 16, 1 << 16, 0])


def vectors(seed=0):
    aggregate = np.random.default_rng(seed).integers(0, P, size=D, dtype=np.uint64)
    shares = share(aggregate, T, N, rng=FieldRNG(bytes([seed]) * 32))
    return aggregate, shares


def to_aggregated(c, round_=1, aggregate=None, shares=None, posted=None):
    if aggregate is None:
        aggregate, shares = vectors()
    to_verified(c, round_)
    decide(c, round_)
    commit_shares_of(c, round_, {e: merkle_root(shares[e - 1]) for e in range(1, N + 1)})
    c.rounds.post_aggregate(round_, merkle_root(aggregate if posted is None else posted), keccak(b"next"), D)
    return aggregate, shares


# ------------------------------------------------------------------ registration


def test_registration_and_views(c):
    r = c.rounds
    assert (r.t, r.n) == (T, N)
    for i, account in c.edge_accounts.items():
        assert r.edge_node(i) == (account, keccak(f"tls-{i}".encode()))
        assert r.edge_index_of(account) == i
        assert r.edge_node_fingerprint(i) == keccak(f"tls-{i}".encode())
    assert r.device_count() == DEVICES
    assert r.device(c.devices[1]) == (True, 1, 4)
    assert r.device(c.chain.new_account())[0] is False
    r.set_pow_bits(c.devices[1], 9)
    assert r.device(c.devices[1]) == (True, 1, 9)


def test_registration_reverts(c):
    r, outsider = c.rounds, c.chain.new_account()
    with reverts("NotAdmin"):
        r.register_device(c.chain.new_account(), 4, sender=outsider)
    with reverts("NotAdmin"):
        r.register_edge_node(1, outsider, bytes(32), sender=outsider)
    with reverts("EdgeNodeExists"):
        r.register_edge_node(2, outsider, bytes(32))
    with reverts("BadEdgeIndex"):
        r.register_edge_node(N + 1, outsider, bytes(32))
    with reverts("AddressInUse"):
        r.register_device(c.devices[0], 4)
    with reverts("AddressInUse"):
        r.register_device(c.edge_accounts[1], 4)
    with reverts("BadPowBits"):
        r.register_device(outsider, 65)
    with reverts("NotDevice"):
        r.set_pow_bits(outsider, 3)


def test_open_needs_all_edge_nodes(chain):
    r = chain.deploy(2, 3)
    r.register_edge_node(1, chain.new_account(), bytes(32))
    with reverts("EdgeNodesMissing"):
        r.open_round(1, bytes(32))


def test_python_side_validation(c):
    r = c.rounds
    with pytest.raises(ChainValueError, match="model_hash"):
        r.open_round(1, b"short")
    with pytest.raises(ChainValueError, match="round"):
        r.open_round(0, bytes(32))
    with pytest.raises(ChainValueError, match="device_ids"):
        r.pack_scalars([2, 1], np.zeros((2, 2), dtype=np.uint64))
    with pytest.raises(ChainValueError, match="values"):
        r.pack_scalars([0, 1], np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ChainValueError, match=r"signatures\[0\]"):
        r.post_scalars(1, [0], np.zeros((1, 2), dtype=np.uint64), [bytes(64)])
    with pytest.raises(ChainValueError, match="trust_q15"):
        TrustVote.of(bytes(32), [0], [2**15 + 1])
    with pytest.raises(ChainValueError, match="t, n"):
        c.chain.deploy(4, 3)


# ------------------------------------------------------------------ open and commit


def test_open_commit_close_transitions(c):
    r = c.rounds
    assert r.round_state(1).phase == Phase.NONE
    r.open_round(1, keccak(b"model"))
    s = r.round_state(1)
    assert (s.phase, s.device_count, s.committed, s.model_hash) == (Phase.OPEN, DEVICES, 0, keccak(b"model"))
    commit_all(c, 1, c.devices[:2])
    assert r.round_state(1).committed == 2
    assert r.commitment(1, 1) == bind_commitment(keccak(c.devices[1].encode() + bytes([1])), 1, 1)
    assert r.commitment(1, 2) == bytes(32)
    with reverts("DeadlineNotReached"):
        r.close_commitments(1)
    commit_all(c, 1, c.devices[2:])
    r.close_commitments(1)
    s = r.round_state(1)
    assert s.phase == Phase.COMMITTED and s.closed_at == c.chain.block_number
    seed = r.challenge_seed(1)
    assert len(seed) == 32 and seed != bytes(32) and r.challenge_seed(1) == seed


def test_commit_reverts(c):
    r, device = c.rounds, c.devices[0]
    root = keccak(b"root")
    with reverts("WrongPhase"):
        r.commit_shares(device, 1, root, 0)
    r.open_round(1, keccak(b"model"))
    with reverts("BadRound"):
        r.open_round(3, keccak(b"model"))
    with reverts("NotCoordinator"):
        r.open_round(2, keccak(b"model"), sender=device)
    with reverts("WrongPhase"):
        r.open_round(2, keccak(b"model"))
    with reverts("NotDevice"):
        r.commit_shares(c.chain.new_account(), 1, root, 0)
    bits = r.device(device)[2]
    assert bits >= 1
    with reverts("StalePow"):  # stamped at less than its difficulty: reverted, nothing recorded
        r.commit_shares(device, 1, root, r.pow_stamp(device, 1, root, bits - 1), bits - 1)
    assert not r.pow_refused(1, 0)
    with reverts("ZeroRoot"):
        r.commit_shares(device, 1, bytes(32), r.pow_stamp(device, 1, bytes(32)))
    r.commit_shares(device, 1, root, r.pow_stamp(device, 1, root))
    with reverts("AlreadyCommitted"):
        r.commit_shares(device, 1, root, r.pow_stamp(device, 1, root))
    late = c.chain.new_account()
    r.register_device(late, 0)
    with reverts("DeviceNotInRound"):
        r.commit_shares(late, 1, root, 0)


def test_commit_deadline_and_partial_close(c):
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1, c.devices[:1])
    c.chain.mine(BLOCKS + 1)
    late = c.devices[1]
    with reverts("DeadlinePassed"):
        r.commit_shares(late, 1, keccak(b"x"), r.pow_stamp(late, 1, keccak(b"x")))
    r.close_commitments(1)  # dropouts: the deadline passed with 1 of 3 committed
    s = r.round_state(1)
    assert (s.phase, s.committed) == (Phase.COMMITTED, 1)


# ------------------------------------------------------------------ verification


def test_scalars_agreement_moves_to_verified(c):
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    with reverts("WrongPhase"):
        post_scalars(c, [1])
    r.close_commitments(1)
    seed = r.challenge_seed(1)
    assert post_scalars(c, [1]) is False
    with reverts("AlreadyPosted"):
        post_scalars(c, [1])
    with reverts("AlreadyPosted"):
        post_scalars(c, [2, 2])  # a node counts once, even within one relay
    assert post_scalars(c, [2], sender=c.devices[0]) is False  # anyone may relay signed votes
    assert post_scalars(c, [3]) is True
    s = r.round_state(1)
    assert s.phase == Phase.VERIFIED and s.scalar_voters == (1, 2, 3) and s.challenge_seed == seed
    ids, values = r.agreed_scalars(1)
    assert ids.tolist() == IDS and np.array_equal(values, SCALARS)
    with reverts("WrongPhase"):
        post_scalars(c, [4])


def test_disagreeing_edge_nodes_need_t_matching_posts(c):
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    r.challenge_seed(1)
    other = SCALARS.copy()
    other[1, 0] += np.uint64(1)
    assert not post_scalars(c, [1])
    assert not post_scalars(c, [2], values=other)
    assert not post_scalars(c, [3])
    assert r.round_state(1).phase == Phase.COMMITTED  # 2 + 1 votes: no agreement yet
    assert post_scalars(c, [4])
    s = r.round_state(1)
    assert s.phase == Phase.VERIFIED and s.scalars_hash == keccak(r.pack_scalars(IDS, SCALARS))
    assert set(s.scalar_voters) - {1, 3, 4} == {2}  # the dissenter is visible on chain


def test_hash_votes_count_only_once_the_bytes_are_published(c):
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    r.challenge_seed(1)
    digest = keccak(r.pack_scalars(IDS, SCALARS))
    assert not r.vote_scalars(1, digest, c.sign((1, 2, 3), KIND_SCALARS, 1, digest))
    assert r.round_state(1).phase == Phase.COMMITTED  # t votes, but nobody published the bytes
    assert post_scalars(c, [4])  # publishing completes the agreement
    assert r.vote_word(1, 1, digest) == 0b11111
    assert np.array_equal(r.agreed_scalars(1)[1], SCALARS)


def test_driver_publishes_once_then_votes(c):
    calls = c.chain.gas_report().calls
    before = {m: len(calls[m]) for m in ("postScalars", "voteScalars")}
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    for e in range(1, T + 1):
        post_scalars(c, [e])
    assert len(calls["postScalars"]) - before["postScalars"] == 1
    assert len(calls["voteScalars"]) - before["voteScalars"] == T - 1
    assert max(calls["voteScalars"][-(T - 1):]) < calls["postScalars"][-1]
    assert r.round_state(1).phase == Phase.VERIFIED


def test_decisions(c):
    r = c.rounds
    to_verified(c)
    assert not post_decisions(c, [1], 1, IDS, [0, 0, 3], [5, 6, 0])
    with reverts("AlreadyPosted"):
        post_decisions(c, [1], 1, IDS, [0, 0, 3], [5, 6, 0])
    assert not post_decisions(c, [2], 1, IDS, [0, 1, 3], [5, 0, 0])
    assert post_decisions(c, [3, 4], 1, IDS, [0, 0, 3], [5, 6, 0])
    assert [(x.device_id, x.reason, x.weight) for x in r.decisions(1)] == [(0, 0, 5), (1, 0, 6), (2, 3, 0)]
    assert r.round_state(1).decision_voters == (1, 2, 3, 4)
    with reverts("AlreadyDone"):
        post_decisions(c, [5], 1, IDS, [0, 0, 3], [5, 6, 0])


def test_verification_timeout_fails_the_round(c):
    r = c.rounds
    r.open_round(1, keccak(b"model"))
    commit_all(c, 1)
    r.close_commitments(1)
    r.challenge_seed(1)
    with reverts("DeadlineNotReached"):
        r.abort_round(1)
    c.chain.mine(BLOCKS + 1)
    with reverts("DeadlinePassed"):
        post_scalars(c, [1])
    r.abort_round(1, sender=c.devices[0])  # anyone
    s = r.round_state(1)
    assert (s.phase, s.failure) == (Phase.FAILED, Failure.TIMEOUT)
    r.open_round(2, keccak(b"model"))  # a failed round does not block the next one
    assert r.round_state(2).phase == Phase.OPEN


# ------------------------------------------------------------------ aggregation


def test_aggregate_transitions_and_reverts(c):
    r = c.rounds
    aggregate, shares = vectors()
    to_verified(c)
    with reverts("DecisionsMissing"):
        commit_shares_of(c, 1, {1: merkle_root(shares[0])})
    with reverts("DecisionsMissing"):
        r.post_aggregate(1, merkle_root(aggregate), keccak(b"next"), D)
    decide(c)
    commit_shares_of(c, 1, {e: merkle_root(shares[e - 1]) for e in (1, 2)})
    with reverts("AlreadyPosted"):
        commit_shares_of(c, 1, {1: merkle_root(shares[0])})
    with reverts("ZeroRoot"):
        r.commit_aggregate_shares(1, [bytes(32)], c.sign([4], KIND_AGGREGATE_SHARE, 1, bytes(32)))
    with reverts("BadLength"):
        r.commit_aggregate_shares(1, [merkle_root(shares[3]), merkle_root(shares[4])], c.sign([4], KIND_AGGREGATE_SHARE, 1, merkle_root(shares[3])))
    with reverts("NotEnoughAggregateShares"):
        r.post_aggregate(1, merkle_root(aggregate), keccak(b"next"), D)
    commit_shares_of(c, 1, {3: merkle_root(shares[2])})
    with reverts("NotCoordinator"):
        r.post_aggregate(1, merkle_root(aggregate), keccak(b"next"), D, sender=c.devices[0])
    r.post_aggregate(1, merkle_root(aggregate), keccak(b"next"), D)
    s = r.round_state(1)
    assert (s.phase, s.length, s.aggregate_shares) == (Phase.AGGREGATED, D, (1, 2, 3))
    assert s.aggregate_root == merkle_root(aggregate) and s.new_model_hash == keccak(b"next")
    assert r.aggregate_share_root(1, 2) == merkle_root(shares[1])
    with reverts("WrongPhase"):
        commit_shares_of(c, 1, {4: merkle_root(shares[3])})


def test_trust_anchor_liar_close(c):
    r = c.rounds
    to_aggregated(c)
    r.anchor(1, keccak(b"store"))
    with reverts("AlreadyDone"):
        r.anchor(1, keccak(b"store"))
    r.report_liar(1, 2)
    with reverts("AlreadyPosted"):
        r.report_liar(1, 2)
    with reverts("AuditNotPassed"):
        r.close_round(1)  # no audit yet
    aggregate, shares = vectors()
    assert r.audit(1, {e: shares[e - 1] for e in (1, 3, 4)}, aggregate).passed
    r.close_round(1)
    s = r.round_state(1)
    assert (s.phase, s.anchor, s.reported_liars) == (Phase.CLOSED, keccak(b"store"), (2,))
    with reverts("WrongPhase"):
        r.anchor(1, keccak(b"again"))
    with reverts("WrongPhase"):
        r.close_round(1)


def test_trust_is_written_only_with_t_edge_nodes_signatures_of_exactly_its_words(c):
    r = c.rounds
    to_aggregated(c)
    aggregate, shares = vectors()
    assert r.audit(1, {e: shares[e - 1] for e in (1, 2, 3)}, aggregate).passed
    r.close_round(1)
    assert [r.trust(i) for i in IDS] == [1.0, 1.0, 1.0]  # initial trust from registration
    vote = TrustVote.of(keccak(b"store"), IDS, [2**13, 2**15, 0])
    signed = c.sign((1, 2, 3), KIND_TRUST, 1, vote.digest)
    lifted = (vote.words[0] | 2**15,)  # device 0 at 1.0 (OR of lane 0): not what the nodes signed
    for args, error in [
        ((vote.root, vote.slots, vote.words, signed[:T - 1]), "TrustNotAgreed"),
        ((vote.root, vote.slots, lifted, signed), "UnknownSigner"),
        ((vote.root, vote.slots, vote.words, c.sign((1, 1, 2), KIND_TRUST, 1, vote.digest)), "AlreadyPosted"),
        ((vote.root, vote.slots, vote.words, c.sign((1, 2, 3), KIND_DECISIONS, 1, vote.digest)), "UnknownSigner"),  # another kind
        ((vote.root, vote.slots, vote.words, c.sign((1, 2, 3), KIND_TRUST, 2, vote.digest)), "UnknownSigner"),  # another round
    ]:
        with reverts(error):
            r.commit_trust(1, *args)
    r.commit_trust(1, vote.root, vote.slots, vote.words, signed, sender=c.devices[0])  # anyone relays
    assert [r.trust(i) for i in IDS] == [0.25, 1.0, 0.0]
    assert r.round_state(1).anchor == vote.root
    with reverts("AlreadyDone"):
        r.commit_trust(1, vote.root, vote.slots, vote.words, signed)


def test_initial_trust_and_its_bounds(c):
    r = c.rounds
    device = c.chain.new_account()
    new_id = r.register_device(device, 3, trust=0.5)
    assert r.trust(new_id) == 0.5 and r.device(device) == (True, new_id, 3)
    with reverts("BadTrust"):
        r.chain.send(r.contract, "registerDevice", [c.chain.new_account(), 3, (1 << 15) + 1], r.admin)
    with pytest.raises(ChainValueError, match="trust"):
        r.register_device(c.chain.new_account(), 3, trust=1.5)


# ------------------------------------------------------------------ audit


def test_audit_accepts_an_honest_aggregate(c):
    r = c.rounds
    aggregate, shares = to_aggregated(c)
    assert np.array_equal(reconstruct(shares[:T], [1, 2, 3]), aggregate)
    coords = r.audit_coordinates(1)
    assert list(coords) == r.chain.call(r.contract, "auditCoordinates", 1)
    result = r.audit(1, {1: shares[0], 3: shares[2], 5: shares[4]}, aggregate)
    assert result.passed and result.offender is None and result.edges == (1, 3, 5)
    assert r.round_state(1).audit_passed
    r.close_round(1)  # a passed audit closes the window early
    assert r.round_state(1).phase == Phase.CLOSED


def test_audit_with_t_plus_one_passes_too(c):
    aggregate, shares = to_aggregated(c)
    assert c.rounds.audit(1, {e: shares[e - 1] for e in (1, 2, 4, 5)}, aggregate).passed


def test_audit_names_the_aggregator_for_a_tampered_aggregate(c):
    aggregate, shares = vectors()
    posted = aggregate.copy()
    posted[:] = (posted + np.uint64(1)) % np.uint64(P)  # every coordinate is wrong
    to_aggregated(c, aggregate=aggregate, shares=shares, posted=posted)
    result = c.rounds.audit(1, {e: shares[e - 1] for e in (1, 2, 3, 4)}, posted)
    assert not result.passed and result.offender == PARTY_AGGREGATOR
    s = c.rounds.round_state(1)
    assert (s.phase, s.failure, s.offender) == (Phase.FAILED, Failure.AUDIT_MISMATCH, PARTY_AGGREGATOR)


def test_audit_catches_a_single_tampered_coordinate():
    with Chain.embedded(accounts=40) as chain:
        c = setup_consortium(chain, T, N, 1, pow_bits=0)
        r = c.rounds
        aggregate = np.array([12345], dtype=np.uint64)  # d = 1: every drawn coordinate is 0
        shares = share(aggregate, T, N)
        r.open_round(1, keccak(b"m"))
        r.commit_shares(c.devices[0], 1, keccak(b"c"), 0)
        r.close_commitments(1)
        r.challenge_seed(1)
        post_scalars(c, range(1, T + 1), 1, [0], np.ones((1, 2), dtype=np.uint64))
        post_decisions(c, range(1, T + 1), 1, [0], [0], [1])
        commit_shares_of(c, 1, {e: merkle_root(shares[e - 1]) for e in range(1, N + 1)})
        posted = np.array([12346], dtype=np.uint64)
        r.post_aggregate(1, merkle_root(posted), keccak(b"n"), 1)
        result = r.audit(1, {e: shares[e - 1] for e in (2, 3, 4, 5)}, posted)
        assert result.coordinates == (0,) * r.audit_k and result.offender == PARTY_AGGREGATOR


def test_audit_names_a_lying_edge_node(c):
    aggregate, shares = vectors()
    lying = shares.copy()
    lying[1] = (lying[1] + np.uint64(7)) % np.uint64(P)  # edge node 2 committed a wrong share
    to_aggregated(c, aggregate=aggregate, shares=lying)
    result = c.rounds.audit(1, {e: lying[e - 1] for e in (1, 2, 3, 4)}, aggregate)
    assert not result.passed and result.offender == 2
    assert c.rounds.round_state(1).offender == 2


def test_t_share_mismatch_is_unattributed_then_refined(c):
    aggregate, shares = vectors()
    lying = shares.copy()
    lying[2] = (lying[2] + np.uint64(1)) % np.uint64(P)  # edge node 3 lies
    to_aggregated(c, aggregate=aggregate, shares=lying)
    r = c.rounds
    first = r.audit(1, {e: lying[e - 1] for e in (1, 2, 3)}, aggregate)
    assert first.offender == PARTY_UNATTRIBUTED
    assert r.round_state(1).failure == Failure.AUDIT_MISMATCH
    refined = r.audit(1, {e: lying[e - 1] for e in (1, 3, 4, 5)}, aggregate)
    assert refined.offender == 3 and r.round_state(1).offender == 3
    with reverts("WrongPhase"):  # attributed failures are final
        r.audit(1, {e: lying[e - 1] for e in (1, 2, 4, 5)}, aggregate)


def test_audit_reverts(c):
    r = c.rounds
    aggregate, shares = vectors()
    with reverts("WrongPhase"):
        r.chain.send(r.contract, "audit", [1, [1, 2, 3], b"", [], []], r.aggregator)
    to_aggregated(c, aggregate=aggregate, shares=shares)
    wrong = shares.copy()
    wrong[0, :] = 0  # not what edge node 1 committed: its proofs cannot match
    with reverts("BadProof"):
        r.audit(1, {1: wrong[0], 2: shares[1], 3: shares[2]}, aggregate)
    with pytest.raises(ChainRevertError) as info:
        r.audit(1, {1: shares[0], 2: shares[1], 3: shares[2]}, wrong[0])
    assert info.value.error == "BadProof" and info.value.args_by_name["party"] == PARTY_AGGREGATOR
    with reverts("BadAuditSet"):
        r.chain.send(r.contract, "audit", [1, [1, 2], b"", [], []], r.aggregator)
    with reverts("BadAuditSet"):
        r.chain.send(r.contract, "audit", [1, [2, 1, 3], b"", [], []], r.aggregator)
    with reverts("BadLength"):
        r.chain.send(r.contract, "audit", [1, [1, 2, 3], b"\x00" * 128, [], []], r.aggregator)
    with pytest.raises(ChainValueError, match="shares_by_edge_index"):
        r.audit(1, {1: shares[0], 2: shares[1]}, aggregate)
    with pytest.raises(ChainValueError, match="length"):
        r.audit(1, {e: shares[e - 1, :10] for e in (1, 2, 3)}, aggregate[:10])
    # the contract verifies the same proofs the Python helper builds
    coordinate = r.audit_coordinates(1)[0]
    tree = merkle_tree(aggregate)
    assert tree.proof(coordinate).value(coordinate) == int(aggregate[coordinate])


def test_a_tampered_frontier_is_a_bad_proof(c):
    from ppbfl.chain import tree_depth
    from ppbfl.chain.rounds import FRONTIER_LEVELS

    r = c.rounds
    aggregate, shares = to_aggregated(c)
    edges = (1, 2, 3)
    trees = [merkle_tree(aggregate)] + [merkle_tree(shares[e - 1]) for e in edges]
    low = tree_depth(D) - min(tree_depth(D), FRONTIER_LEVELS)
    frontiers = [node for tree in trees for node in tree.frontier(low)]
    coords = r.audit_coordinates(1)
    chunks = b"".join(tree.proof(x, height=low).chunk for x in coords for tree in trees)
    siblings = [s for x in coords for tree in trees for s in tree.proof(x, height=low).siblings]
    width = len(frontiers) // 4
    frontiers[2 * width] = keccak(b"forged")  # edge node 2's frontier
    with pytest.raises(ChainRevertError) as info:
        r.chain.send(r.contract, "audit", [1, list(edges), chunks, siblings, frontiers], r.aggregator)
    assert info.value.error == "BadProof" and info.value.args_by_name["party"] == 2
    frontiers[2 * width] = trees[2].frontier(low)[0]
    r.chain.send(r.contract, "audit", [1, list(edges), chunks, siblings, frontiers], r.aggregator)
    assert r.round_state(1).audit_passed


def test_share_not_committed_revert(chain):
    c = setup_consortium(chain, 2, 3, 1, pow_bits=0)
    r = c.rounds
    aggregate = np.arange(20, dtype=np.uint64)
    shares = share(aggregate, 2, 3)
    r.open_round(1, keccak(b"m"))
    r.commit_shares(c.devices[0], 1, keccak(b"c"), 0)
    r.close_commitments(1)
    r.challenge_seed(1)
    post_scalars(c, (1, 2), 1, [0], np.ones((1, 2), dtype=np.uint64))
    post_decisions(c, (1, 2), 1, [0], [0], [1])
    commit_shares_of(c, 1, {e: merkle_root(shares[e - 1]) for e in (1, 2)})
    r.post_aggregate(1, merkle_root(aggregate), keccak(b"n"), 20)
    with reverts("ShareNotCommitted"):
        r.audit(1, {1: shares[0], 3: shares[2]}, aggregate)
    assert r.audit(1, {1: shares[0], 2: shares[1]}, aggregate).passed


def test_gas_report_records_every_call(c):
    to_aggregated(c)
    report = c.chain.gas_report().summary()
    for method in ("commitShares", "postScalars", "postDecisions", "commitAggregateShares", "postAggregate"):
        assert report[method]["count"] >= 1 and report[method]["min"] > 21000


def test_accounts_beyond_the_pool_are_created_and_funded():
    with Chain.embedded(accounts=3) as small:
        accounts = [small.new_account() for _ in range(4)]  # 2 from the pool, 2 created
        assert len(set(accounts)) == 4
        r = small.deploy(1, 1)
        r.register_edge_node(1, accounts[-1], bytes(32))
        r.register_device(accounts[-2], 0)
        r.open_round(1, keccak(b"m"))
        r.commit_shares(accounts[-2], 1, keccak(b"c"), 0)  # sent from a created account
        assert r.round_state(1).committed == 1
