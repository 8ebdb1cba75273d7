"""Log scans: ``committed_trust`` on a chain with many blocks before the deployment and after the round.

* ``committed_trust blocks=... target=...`` -- :meth:`RoundsContract.committed_trust` (the round's
  ``roundInfo``, then ``eth_getLogs`` from the round's own blocks -- at the earliest the
  deployment block -- in chunks of 2,000, stopping at the first match) against
  ``scan_from_genesis``: the same decoded result from one ``eth_getLogs`` over ``[0, latest]``
  (what ``committed_trust`` did before). ``blocks`` empty blocks are mined before the deployment
  and again after the round's ``commitTrust``; py-evm (eth-tester walks the range in Python) and
  anvil (indexed logs over HTTP). Results in RESULTS.md ("Log scans from the deployment block").
"""

from __future__ import annotations

import pytest
from conftest import QUICK, size_id
from eth_hash.auto import keccak

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_TRUST
from ppbfl.chain.scenario import setup_consortium
from ppbfl.chain.votes import TrustVote

T, N, DEVICES = 2, 3, 20
BLOCKS = (200,) if QUICK else (2_000,)
TARGETS = ("py-evm", "anvil")
ROUNDS = 3


@pytest.fixture(scope="module", params=[(target, b) for target in TARGETS for b in BLOCKS],
                ids=[f"{target}-b{size_id(b)}" for target in TARGETS for b in BLOCKS])
def long_chain(request):
    """``blocks`` empty blocks, a consortium, round 1 failed and its trust committed, ``blocks``
    more. Yields (target, blocks, contract, the words written)."""
    target, blocks = request.param
    with (Chain.embedded(accounts=DEVICES + 8) if target == "py-evm" else Chain.anvil(accounts=DEVICES + 8)) as chain:
        chain.mine(blocks)
        c = setup_consortium(chain, T, N, DEVICES, pow_bits=2, commit_blocks=2, verify_blocks=2, aggregate_blocks=2, audit_blocks=2)
        c.rounds.open_round(1, keccak(b"model"))
        chain.mine(3)
        c.rounds.abort_round(1)
        scores = [(97 * i) % (1 << 15) for i in range(DEVICES)]
        vote = TrustVote.of(keccak(b"records"), list(range(DEVICES)), scores)
        c.rounds.commit_trust(1, vote.root, vote.slots, vote.words, c.sign(range(1, T + 1), KIND_TRUST, 1, vote.digest))
        chain.mine(blocks)
        yield target, blocks, c.rounds, dict(enumerate(scores))


def _scan_from_genesis(contract, round_: int) -> dict[int, int]:
    """``committed_trust`` before this change: one eth_getLogs from block 0 to the latest."""
    logs = contract.contract.events.TrustCommitted().get_logs(from_block=0, argument_filters={"round": round_})
    out: dict[int, int] = {}
    for log in logs[:1]:
        for slot, word in zip(log["args"]["slots"], log["args"]["words"]):
            for lane in range(16):
                out[16 * int(slot) + lane] = (int(word) >> (16 * lane)) & 0xFFFF
    return out


def _check(result: dict[int, int], scores: dict[int, int]) -> None:
    assert {i: result[i] for i in scores} == scores and all(v == 0 for i, v in result.items() if i not in scores)


def test_committed_trust_ppbfl(benchmark, group, long_chain) -> None:
    target, blocks, contract, scores = long_chain
    group("committed_trust", blocks=blocks)
    benchmark.group += f" {target}"
    benchmark.extra_info.update(target=target, deployed_at=contract.deployed_at)
    result = benchmark.pedantic(contract.committed_trust, (1,), rounds=ROUNDS, iterations=1)
    _check(result, scores)


def test_committed_trust_scan_from_genesis(benchmark, group, long_chain) -> None:
    target, blocks, contract, scores = long_chain
    group("committed_trust", blocks=blocks)
    benchmark.group += f" {target}"
    benchmark.extra_info.update(target=target)
    result = benchmark.pedantic(_scan_from_genesis, (contract, 1), rounds=ROUNDS, iterations=1)
    _check(result, scores)
    assert result == contract.committed_trust(1)
