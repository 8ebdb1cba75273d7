"""Gas of the per-round trust transaction (``commitTrust``: anchor the store root and set every
device's trust, with t edge nodes' signatures) and of a trust-scaled PoW commitment, at 100 and 1,000 devices, on the embedded chain.

Usage: ``python benchmarks/trust_gas.py [--devices 100 1000] [--t 3]`` (n = max(3, 2t - 1) edge nodes).
Rounds 1 and 2 are opened before ``setPowRange`` (their commitments meet the registered fixed
difficulty, the baseline); each round's commit phase is closed at the deadline and the round
aborted after the verify deadline (the cheapest way to a round that ``commitTrust`` accepts); then
one ``commitTrust`` sets all devices' trust, all different from before (every storage word
changes), and round 3 (opened after ``setPowRange``: the contract snapshots the range into the
round) measures ``commitShares`` with the trust-derived difficulty. The contract keeps one
commitment slot per device, overwritten each round, and ``registerDevice`` writes it first (a
placeholder), so a device's **first** commitment overwrites a non-zero slot like every later one
("next"); both are measured, and ``registerDevice``'s gas (mean over the devices) is printed.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_TRUST, ChainKey
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import TrustVote


class TrustGas(NamedTuple):
    """Gas figures of :func:`measure`."""

    commit_trust: int
    per_device: int
    trust_first: int
    trust_next: int
    fixed_first: int
    fixed_next: int
    register: int


def measure(devices: int, t: int = 2) -> TrustGas:
    """``commitTrust`` gas (and per device) with ``devices`` registered and ``t`` signatures, and
    ``commitShares`` gas at the trust-derived / fixed registered difficulty, for a device's first
    commitment and for a later round's, and ``registerDevice`` gas per device (mean over ``devices``)."""
    n = max(3, 2 * t - 1)
    chain = Chain.embedded(accounts=devices + 8)
    try:
        contract = chain.deploy(t, n, commit_blocks=3, verify_blocks=1)
        keys = [ChainKey.generate() for _ in range(n)]
        for j, key in enumerate(keys, 1):
            contract.register_edge_node(j, key.address, bytes([j]) * 32)
        accounts = [chain.new_account() for _ in range(devices)]
        for account in accounts:
            contract.register_device(account, 8)
        register = chain.gas_report().total("registerDevice") // devices
        contract.open_round(1, bytes(32))
        fixed_first = _commit(chain, contract, accounts[2], 1)
        _commit(chain, contract, accounts[1], 1)
        _abort(chain, contract, 1)
        contract.open_round(2, bytes(32))
        fixed_next = _commit(chain, contract, accounts[2], 2)
        contract.set_pow_range(8, 22, round(0.9 * 2**15))
        _abort(chain, contract, 2)
        trust = [(7919 * i) % 2**15 for i in range(devices)]
        vote = TrustVote.of(b"\x01" * 32, list(range(devices)), trust)  # signed by t edge nodes
        gas = contract.commit_trust(2, vote.root, vote.slots, vote.words, [contract.attest(key, KIND_TRUST, 2, vote.digest) for key in keys[:t]])
        contract.open_round(3, bytes(32))
        trust_next = _commit(chain, contract, accounts[1], 3)
        trust_first = _commit(chain, contract, accounts[3], 3)
        return TrustGas(gas, gas // devices, trust_first, trust_next, fixed_first, fixed_next, register)
    except ChainRevertError as error:  # pragma: no cover
        raise SystemExit(f"revert: {error}") from error
    finally:
        chain.close()


def _abort(chain: Chain, contract: RoundsContract, round_: int) -> None:
    """Close ``round_``'s commit phase at its deadline and abort it after the verify deadline."""
    chain.mine(4)
    contract.close_commitments(round_)
    chain.mine(2)
    contract.abort_round(round_)


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
    print(
        "| devices | commitTrust gas (anchor + all trust words) | per device | commitShares, trust-derived PoW: next round / first"
        " | fixed PoW: next round / first | registerDevice (mean) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for m in args.devices:
        g = measure(m, args.t)
        print(f"| {m} | {g.commit_trust:,} | {g.per_device:,} | {g.trust_next:,} / {g.trust_first:,} | {g.fixed_next:,} / {g.fixed_first:,} | {g.register:,} |")


if __name__ == "__main__":
    main()
