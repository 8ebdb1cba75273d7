"""Gas of the per-round trust transaction (``commitTrust``: anchor the store root and set every
device's trust, with t edge nodes' signatures) and of a trust-scaled PoW commitment, at 100 and 1,000 devices, on the embedded chain.

Usage: ``python benchmarks/trust_gas.py [--devices 100 1000] [--t 2]`` (n = max(3, 2t - 1) edge nodes). A round is opened (before
``setPowRange``: its commitments meet the registered fixed difficulty, measured as the baseline),
its commit phase closed at the deadline and aborted after the verify deadline (the cheapest way to
a round that ``commitTrust`` accepts); then one ``commitTrust`` sets all devices' trust, all
different from before (every storage word changes), and a second round (opened after
``setPowRange``: the contract snapshots the range into the round) measures ``commitShares`` with the
trust-derived difficulty.
"""

from __future__ import annotations

import argparse

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_TRUST, ChainKey
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import TrustVote


def measure(devices: int, t: int = 2) -> tuple[int, int, int, int]:
    """``(commitTrust gas, gas per device, commitShares gas at trust-derived difficulty, at the fixed
    registered difficulty)`` with ``devices`` registered and ``t`` signatures."""
    n = max(3, 2 * t - 1)
    chain = Chain.embedded(accounts=devices + 8)
    try:
        contract = chain.deploy(t, n, commit_blocks=2, verify_blocks=1)
        keys = [ChainKey.generate() for _ in range(n)]
        for j, key in enumerate(keys, 1):
            contract.register_edge_node(j, key.address, bytes([j]) * 32)
        accounts = [chain.new_account() for _ in range(devices)]
        for account in accounts:
            contract.register_device(account, 8)
        contract.open_round(1, bytes(32))
        fixed = _commit(chain, contract, accounts[2], 1)
        contract.set_pow_range(8, 22, round(0.9 * 2**15))
        chain.mine(3)
        contract.close_commitments(1)
        chain.mine(2)
        contract.abort_round(1)
        trust = [(7919 * i) % 2**15 for i in range(devices)]
        vote = TrustVote.of(b"\x01" * 32, list(range(devices)), trust)  # signed by t edge nodes
        gas = contract.commit_trust(1, vote.root, vote.slots, vote.words, [contract.attest(key, KIND_TRUST, 1, vote.digest) for key in keys[:t]])
        contract.open_round(2, bytes(32))
        return gas, gas // devices, _commit(chain, contract, accounts[1], 2), fixed
    except ChainRevertError as error:  # pragma: no cover
        raise SystemExit(f"revert: {error}") from error
    finally:
        chain.close()


def _commit(chain: Chain, contract: RoundsContract, account: str, round_: int) -> int:
    """Gas of ``account``'s ``commitShares`` in ``round_`` at the difficulty the contract states for it."""
    root = bytes([round_]) * 32
    before = chain.gas_report().total("commitShares") if "commitShares" in chain.gas_report().calls else 0
    contract.commit_shares(account, round_, root, contract.pow_stamp(account, round_, root, contract.device(account)[2]))
    return chain.gas_report().total("commitShares") - before


def main() -> None:
    """Print the Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--t", type=int, default=2, help="signatures (the deployment's threshold)")
    args = parser.parse_args()
    print("| devices | commitTrust gas (anchor + all trust words) | per device | commitShares gas (trust-derived PoW) | commitShares gas (fixed PoW) |")
    print("|---:|---:|---:|---:|---:|")
    for m in args.devices:
        gas, per, commit, fixed = measure(m, args.t)
        print(f"| {m} | {gas:,} | {per:,} | {commit:,} | {fixed:,} |")


if __name__ == "__main__":
    main()
