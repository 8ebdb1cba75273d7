"""A refused PoW stamp is a public, device-signed record on chain, and the agreed trust update counts it.

``commitShares(round, root, nonce, bits)``: a stamp that does not meet the ``bits`` the device
signed for is recorded for (round, device) (``powRefused``, ``PowRefused``); ``bits`` below the
device's difficulty only reverts (``StalePow``: a stale or misannounced difficulty frames no one).
The contract keeps one commitment slot per device (the round it belongs to in ``deviceInfo``), so
these tests also pin the round tags: a slot of round r is not round r + 1's, and past rounds'
commitments are answered from events.
"""

from __future__ import annotations

import dataclasses

import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain, ChainError, ChainRevertError, bind_commitment, pow_valid
from ppbfl.chain.attest import KIND_TRUST, ChainKey
from ppbfl.chain.errors import PowRefusedError
from ppbfl.chain.rounds import Phase
from ppbfl.chain.scenario import setup_consortium
from ppbfl.chain.votes import TrustVote, refusal_digest
from ppbfl.defense.decision import REASON_CODES
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.ledger import DeviceChainAccount
from ppbfl.protocol.relayed_commitment import ChainTerms, RelayedCommitment
from ppbfl.protocol.trust_voter import RemoteTrustVoter
from ppbfl.trust import TrustConfig
from ppbfl.trust.audit import audit_records, audit_store
from ppbfl.trust.onchain import chained_federation
from ppbfl.trust.reputation import Evidence
from tests.protocol_helpers import synthetic_round

T, N = 2, 3
BLOCKS = 6


def _bad_nonce(contract, device: str, round_: int, root: bytes, bits: int) -> int:
    """The smallest nonce whose stamp does not meet ``bits``."""
    return next(k for k in range(1 << 16) if not pow_valid(contract.address, contract.chain_id, device, round_, root, k, bits))


class BadStampAccount(DeviceChainAccount):
    """A device that signs for its difficulty but sends a stamp that does not meet it (test scaffolding)."""

    def commit(self, round: int, commitment: bytes) -> None:
        bits = self.contract.device(self.account)[2]
        nonce = _bad_nonce(self.contract, self.account, round, commitment, bits)
        self.contract.relay_commit(self.contract.sign_commit(self.key, round, commitment, nonce, bits), self.account)


@pytest.fixture
def chain():
    with Chain.embedded(accounts=12) as c:
        yield c


def test_a_refused_stamp_is_recorded_and_lowers_the_agreed_trust_more_than_a_missing_upload():
    """Device 0 sends a stamp below the difficulty it signed for, device 1 sends nothing: both are
    missing, but only device 0's refusal is on chain; the t edge nodes' agreed update (commitTrust
    checks the refusals it covers against the chain) gives it pow_failed and a lower trust, as
    the float model of the beta reputation says. Two of the three nodes vote through the
    transport's encode/decode path, so the refusals travel in the TrustQuery they sign for."""
    cheat, missing, devices = 0, 1, 4
    config = TrustConfig(pow_min_bits=2, pow_max_bits=22)  # round 1 stamps at 6 bits (trust 3/4)
    federation = chained_federation(T, N, 16, devices, config)
    try:
        honest = federation.devices[cheat].board
        assert isinstance(honest, DeviceChainAccount)
        federation.devices[cheat].board = BadStampAccount(honest.contract, honest.key, honest.device_id)
        accounts, transport = federation.ledger.edge_accounts, federation.deployment.coordinator
        first = federation.deployment.nodes[edge_party(1)]  # node 1 votes in process, nodes 2 and 3 over the wire (TrustQuery.refused)
        federation.trust.voters = (first, *[RemoteTrustVoter(transport, j, accounts[j], devices) for j in (2, 3)])
        updates, reference = synthetic_round(devices, 16, set(), seed=3)
        del updates[missing]
        result = federation.run_round(1, updates, reference)
        contract = federation.ledger.contract
        assert contract.pow_refusals(1) == (cheat,) and contract.pow_refused(1, cheat) and not contract.pow_refused(1, missing)
        assert result.missing[cheat].startswith("missing upload: PowRefusedError")
        assert contract.commitments_of(1, [cheat, missing]) == [bytes(32), bytes(32)]
        kept = federation.trust.last
        assert kept is not None
        records = {x.device: x for x in kept.records}
        code = REASON_CODES["missing upload"]
        assert records[cheat].evidence == Evidence(code, True) and records[missing].evidence == Evidence(code, False)
        # agreed on chain: t signatures over the root, words and exactly the chain's refusals
        assert contract.round_state(1).anchor == kept.root and len(federation.trust.signatures[1]) == N
        assert contract.committed_trust(1)[cheat] == records[cheat].after.weight_trust
        # independent reference: the float beta reputation, r = lambda r0, s = missing (+ pow_failure)
        r = config.forgetting * config.initial_positive
        for device, s in ((cheat, config.missing + config.pow_failure), (missing, config.missing)):
            assert abs(records[device].after.trust / 2**15 - (r + 1) / (r + s + 2)) < 2**-9
        assert records[cheat].after.trust < records[missing].after.trust < records[2].after.trust
        # anyone can check a store's pow_failed against the chain's record
        assert audit_store(federation.trust.store, contract, config) == {1: []}
        hidden = [dataclasses.replace(x, evidence=Evidence(code)) if x.device == cheat else x for x in kept.records]
        assert f"device {cheat}: pow_failed False, the chain's refusal record says True" in audit_records(
            hidden, {}, {}, devices, kept.root, config, refused=set(contract.pow_refusals(1)),
        )
        # ... and the next round's difficulty follows: the cheater stamps hardest
        bits = {i: contract.device(federation.ledger.device_accounts[i])[2] for i in range(devices)}
        assert bits[cheat] > bits[missing] > bits[2]
    finally:
        federation.close()


def test_commit_trust_takes_a_vote_only_with_exactly_the_refusals_on_chain(chain):
    """A relay that invents a refusal, or hides one, when it asks the edge nodes gets signatures
    the contract does not count; the vote over the chain's refusals is accepted."""
    c = setup_consortium(chain, T, N, 3, pow_bits=4, commit_blocks=BLOCKS, verify_blocks=1)
    r, keys = c.rounds, c.edge_keys
    root = keccak(b"shares")
    r.open_round(1, bytes(32))
    with pytest.raises(PowRefusedError):
        r.commit_shares(c.devices[1], 1, root, _bad_nonce(r, c.devices[1], 1, root, 4), 4)
    chain.mine(BLOCKS + 1)
    r.close_commitments(1)
    chain.mine(r.round_state(1).deadline - chain.block_number + 1)
    r.abort_round(1)
    assert bytes(r._view("refusalDigest", 1)) == refusal_digest([1]) == keccak(bytes(32) + (1).to_bytes(4, "big"))

    def signed(vote: TrustVote) -> list[bytes]:
        return [r.attest(keys[j], KIND_TRUST, 1, vote.digest) for j in range(1, T + 1)]

    store_root = b"\x05" * 32
    for refused in ((), (0, 1), (0,)):  # hidden, one invented, another device's instead
        vote = TrustVote.of(store_root, [0, 1, 2], [100, 50, 100], refused)
        with pytest.raises(ChainRevertError) as caught:
            r.commit_trust(1, vote.root, vote.slots, vote.words, signed(vote))
        assert caught.value.error in ("UnknownSigner", "TrustNotAgreed")
    vote = TrustVote.of(store_root, [0, 1, 2], [100, 50, 100], [1])
    r.commit_trust(1, vote.root, vote.slots, vote.words, signed(vote))
    assert r.round_state(1).anchor == store_root


def test_no_one_but_the_device_can_record_its_refusal(chain):
    """The refusal is msg.sender's: another registered device records only its own; an altered
    signed transaction recovers another, unregistered sender; a relay announcing too low a
    difficulty gets a revert, not a record; a second call in the round reverts (one record)."""
    c = setup_consortium(chain, T, N, 2, pow_bits=6, commit_blocks=BLOCKS, verify_blocks=1)
    r = c.rounds
    victim = ChainKey.generate()
    r.register_device(victim.address, 6)
    chain.fund(victim.address)
    root = keccak(b"root")
    r.open_round(1, bytes(32))
    with pytest.raises(PowRefusedError) as caught:  # device 1 sends a bad stamp: its own record, id 1
        r.commit_shares(c.devices[1], 1, root, _bad_nonce(r, c.devices[1], 1, root, 6), 6)
    assert caught.value.device_id == 1 and r.pow_refusals(1) == (1,)
    with pytest.raises(ChainRevertError) as again:  # spam: one record per device and round
        r.commit_shares(c.devices[1], 1, root, _bad_nonce(r, c.devices[1], 1, root, 6), 6)
    assert again.value.error == "AlreadyCommitted"
    raw = r.sign_commit(victim, 1, root, r.pow_stamp(victim.address, 1, root, 6), 6)
    altered = raw.replace(root, keccak(b"the relay's root"))  # now the stamp fails, but the sender is someone else
    with pytest.raises(ChainError, match="refused"):
        r.relay_commit(altered, victim.address)
    terms = ChainTerms(r.address, r.chain_id, {0: chain.w3.eth.get_transaction_count(victim.address)}, {0: 2})
    board = RelayedCommitment(victim, 0, terms)  # the relay announced 2 bits, the chain asks 6
    board.commit(1, root)
    assert board.raw is not None
    with pytest.raises(ChainRevertError) as stale:
        r.relay_commit(board.raw, victim.address)
    assert stale.value.error == "StalePow" and stale.value.args_by_name["required"] == 6
    assert r.pow_refusals(1) == (1,) and not r.pow_refused(1, 2)
    r.relay_commit(r.sign_commit(victim, 1, root, r.pow_stamp(victim.address, 1, root, 6), 6), victim.address)  # its own transaction commits
    assert r.commitment(1, 2) == bind_commitment(root, 1, 2)


def test_round_tags_keep_a_devices_single_slot_apart_and_past_rounds_come_from_events(chain):
    """One slot per device: round 1's commitment is not round 2's, the device commits again in
    round 2, a refusal in round 1 blocks nothing in round 2, setPowBits keeps the round entry,
    and round 1's commitments are still answered (from the SharesCommitted events) after round 2's."""
    c = setup_consortium(chain, T, N, 3, pow_bits=3, commit_blocks=BLOCKS, verify_blocks=1)
    r = c.rounds
    a, b = c.devices[0], c.devices[1]
    one, two = keccak(b"round 1"), keccak(b"round 2")
    r.open_round(1, bytes(32))
    r.commit_shares(a, 1, one, r.pow_stamp(a, 1, one))
    r.set_pow_bits(a, 2)  # rewrites deviceInfo: the round entry stays
    with pytest.raises(ChainRevertError) as twice:
        r.commit_shares(a, 1, two, r.pow_stamp(a, 1, two))
    assert twice.value.error == "AlreadyCommitted"
    with pytest.raises(PowRefusedError):
        r.commit_shares(b, 1, one, _bad_nonce(r, b, 1, one, 3), 3)
    chain.mine(BLOCKS + 1)
    r.close_commitments(1)
    chain.mine(r.round_state(1).deadline - chain.block_number + 1)
    r.abort_round(1)
    r.open_round(2, bytes(32))
    assert r.commitments_of(2, [0, 1, 2]) == [bytes(32)] * 3  # round 1's slot is not round 2's
    r.commit_shares(a, 2, two, r.pow_stamp(a, 2, two))
    r.commit_shares(b, 2, two, r.pow_stamp(b, 2, two))
    with pytest.raises(ChainRevertError) as moved:  # the contract's view cannot answer round 1 for device 0 any more
        r._view("commitment", 1, 0)
    assert moved.value.error == "CommitmentOverwritten" and moved.value.args_by_name["laterRound"] == 2
    expected = {
        (1, 0): keccak(one + (1).to_bytes(8, "big") + (0).to_bytes(4, "big")), (1, 1): bytes(32), (1, 2): bytes(32),
        (2, 0): keccak(two + (2).to_bytes(8, "big") + (0).to_bytes(4, "big")),
        (2, 1): keccak(two + (2).to_bytes(8, "big") + (1).to_bytes(4, "big")), (2, 2): bytes(32),
    }
    for round_ in (1, 2):
        assert r.commitments_of(round_, [0, 1, 2]) == [expected[round_, i] for i in range(3)]
        assert [r.commitment(round_, i) for i in range(3)] == [expected[round_, i] for i in range(3)]
    assert r.pow_refusals(1) == (1,) and r.pow_refusals(2) == () and r.round_state(2).committed == 2


def test_a_devices_first_commitment_costs_what_its_later_ones_do(chain):
    """registerDevice writes a placeholder into the device's commitment slot, so every commitment,
    the first included, overwrites a non-zero slot (nonzero -> nonzero, EIP-2929/2200): the first
    round's commitment costs exactly what rounds 2 and 3 cost (before: 17,100 = 22,100 - 5,000 more).
    A second device registered after rounds ran pays the same in its first round."""
    c = setup_consortium(chain, T, N, 1, pow_bits=0, commit_blocks=BLOCKS, verify_blocks=1)
    r, device = c.rounds, c.devices[0]
    late = chain.new_account()
    gas: dict[str, list[int]] = {"first": [], "late": []}
    for round_ in (1, 2, 3, 4):
        if round_ == 3:
            r.register_device(late, 0)
        r.open_round(round_, bytes(32))
        gas["first"].append(r.commit_shares(device, round_, b"\x11" * 32, 0))
        if round_ >= 3:
            gas["late"].append(r.commit_shares(late, round_, b"\x11" * 32, 0))
        r.close_commitments(round_)
        chain.mine(r.round_state(round_).deadline - chain.block_number + 1)
        r.abort_round(round_)
    assert gas["first"][0] == gas["first"][1] == gas["first"][2] == gas["first"][3]
    assert gas["late"][0] == gas["late"][1]


def test_a_freshly_registered_device_reads_as_not_committed(chain):
    """The registration's placeholder is never a commitment: in the open round 1, in round 0 (no
    round), in a later round, through the contract's views and the Python readers (which fall
    back to events only on CommitmentOverwritten); a device that committed in round 1 and was
    refused in round 2 reads zero for round 2 (its slot still holds round 1's value)."""
    c = setup_consortium(chain, T, N, 2, pow_bits=3, commit_blocks=BLOCKS, verify_blocks=1)
    r = c.rounds
    for round_ in (0, 1, 2, 7):
        assert bytes(r._view("commitment", round_, 0)) == bytes(32)
        assert [bytes(x) for x in r._view("commitmentsOf", round_, [0, 1])] == [bytes(32)] * 2
        assert r.commitments_of(round_, [0, 1]) == [bytes(32)] * 2 and r.commitment(round_, 1) == bytes(32)
    r.open_round(1, bytes(32))
    assert r.commitments_of(1, [0, 1]) == [bytes(32)] * 2 and r.logged_commitments(1) == {}
    root = keccak(b"round 1")
    r.commit_shares(c.devices[0], 1, root, r.pow_stamp(c.devices[0], 1, root))
    assert r.commitments_of(1, [0, 1]) == [bind_commitment(root, 1, 0), bytes(32)]
    chain.mine(BLOCKS + 1)  # device 1 never answers: the deadline closes the round
    r.close_commitments(1)
    chain.mine(r.round_state(1).deadline - chain.block_number + 1)
    r.abort_round(1)
    r.open_round(2, bytes(32))
    with pytest.raises(PowRefusedError):
        r.commit_shares(c.devices[0], 2, root, _bad_nonce(r, c.devices[0], 2, root, 3), 3)
    assert r.commitments_of(2, [0, 1]) == [bytes(32)] * 2
    assert r.commitments_of(1, [0, 1]) == [bind_commitment(root, 1, 0), bytes(32)]  # from events now


def test_a_refused_device_counts_as_answered_for_the_early_close(chain):
    """closeCommitments closes early once every device committed or had its stamp refused (it
    cannot commit again in the round); ``committed`` stays the number of commitments and
    ``refused`` the number of refusals. A device that has not answered still holds the round to
    its deadline."""
    c = setup_consortium(chain, T, N, 3, pow_bits=3, commit_blocks=BLOCKS, verify_blocks=1)
    r = c.rounds
    root = keccak(b"shares")
    r.open_round(1, bytes(32))
    r.commit_shares(c.devices[0], 1, root, r.pow_stamp(c.devices[0], 1, root))
    with pytest.raises(PowRefusedError):
        r.commit_shares(c.devices[1], 1, root, _bad_nonce(r, c.devices[1], 1, root, 3), 3)
    with pytest.raises(ChainRevertError) as early:  # device 2 has not answered
        r.close_commitments(1)
    assert early.value.error == "DeadlineNotReached"
    with pytest.raises(PowRefusedError):
        r.commit_shares(c.devices[2], 1, root, _bad_nonce(r, c.devices[2], 1, root, 3), 3)
    opened = r.round_state(1)
    assert (opened.committed, opened.refused, opened.device_count) == (1, 2, 3)
    assert chain.block_number <= opened.deadline
    r.close_commitments(1)  # before the deadline: all three answered
    closed = r.round_state(1)
    assert closed.phase == Phase.COMMITTED and closed.committed == 1 and closed.refused == 2
    logs = r.contract.events.CommitmentsClosed().get_logs(from_block=0)
    assert [int(log["args"]["committed"]) for log in logs] == [1]
