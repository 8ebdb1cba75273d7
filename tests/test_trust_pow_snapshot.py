"""Each round keeps the PoW range it opened with (``PPBFLRounds.openRound`` snapshots it into the
round): an admin who changes the range while devices stamp cannot make their stamps fail or pass
after the fact; the change applies from the next round. The difficulty is still each device's
trust word under the round's range (checked against the Python mirror ``pow_bits_for``)."""

from __future__ import annotations

import pytest

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_TRUST, ChainKey
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.pow import pow_valid
from ppbfl.chain.votes import TrustVote
from ppbfl.trust import TrustConfig
from ppbfl.trust.pow import pow_bits_for

EASY = TrustConfig(pow_min_bits=2, pow_max_bits=6, pow_full_trust=0.5)
HARD = TrustConfig(pow_min_bits=10, pow_max_bits=14, pow_full_trust=0.5)


def test_a_round_keeps_the_pow_range_it_opened_with() -> None:
    chain = Chain.embedded(accounts=8)
    try:
        contract = chain.deploy(2, 3, commit_blocks=20, verify_blocks=1)
        keys = [ChainKey.generate() for _ in range(3)]
        for j, key in enumerate(keys, 1):
            contract.register_edge_node(j, key.address, bytes([j]) * 32)
        devices = [chain.new_account() for _ in range(3)]
        for account, trust in zip(devices, (1.0, 0.25, 0.0)):
            contract.register_device(account, 8, trust)
        contract.set_pow_range(EASY.pow_min_bits, EASY.pow_max_bits, EASY.q15(EASY.pow_full_trust))
        contract.open_round(1, bytes(32))
        easy = [pow_bits_for(EASY.q15(x), EASY) for x in (1.0, 0.25, 0.0)]
        assert easy == [2, 4, 6] and [contract.device(a)[2] for a in devices] == easy
        # the admin raises the range while round 1 is open: round 1's difficulty does not move
        contract.set_pow_range(HARD.pow_min_bits, HARD.pow_max_bits, HARD.q15(HARD.pow_full_trust))
        assert contract.pow_range() == (10, 14, HARD.q15(0.5))
        assert [contract.device(a)[2] for a in devices] == easy
        assert contract.round_state(1).pow_range == (2, 6, EASY.q15(0.5))
        for account, bits in zip(devices, easy):
            root = bytes([bits]) * 32
            nonce = contract.pow_stamp(account, 1, root, bits)
            contract.commit_shares(account, 1, root, nonce)  # accepted at the round's own difficulty
        assert contract.round_state(1).committed == 3
        # round 2 opens under the new range: a stamp that only meets the old difficulty is refused
        contract.close_commitments(1)
        chain.mine(2)
        contract.abort_round(1)
        vote = TrustVote.of(b"\x01" * 32, [0, 1, 2], [EASY.q15(x) for x in (1.0, 0.25, 0.0)])
        contract.commit_trust(1, vote.root, vote.slots, vote.words, [contract.attest(k, KIND_TRUST, 1, vote.digest) for k in keys[:2]])
        contract.open_round(2, bytes(32))
        hard = [pow_bits_for(HARD.q15(x), HARD) for x in (1.0, 0.25, 0.0)]
        assert hard == [10, 12, 14] and [contract.device(a)[2] for a in devices] == hard
        assert contract.round_state(2).pow_range == (10, 14, HARD.q15(0.5))
        root = b"\x07" * 32
        weak = next(n for n in range(1 << 20) if pow_valid(contract.address, contract.chain_id, devices[0], 2, root, n, 2)
                    and not pow_valid(contract.address, contract.chain_id, devices[0], 2, root, n, 10))
        with pytest.raises(ChainRevertError) as caught:  # stamped at the old 2 bits: below the round's 10
            contract.commit_shares(devices[0], 2, root, weak, 2)
        assert caught.value.error == "StalePow"
        contract.commit_shares(devices[0], 2, root, contract.pow_stamp(devices[0], 2, root, 10))
    finally:
        chain.close()
