"""Gas per phase of two whole protocol rounds on the in-process py-evm chain (A/B across branches).

Usage::

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/chain_round_gas.py [DEVICES] [D]

Runs :func:`ppbfl.chain.scenario.run_round` (the path ``benchmarks/chain_gas.py`` runs; t = 3,
n = 5, PoW 8 bits, audit with t + 1 shares) for rounds 1 and 2 with ``DEVICES`` devices (default
100) and updates of length ``D`` (default 1e5), and prints the gas per phase, the issue's
per-device metric (commitment + share of scalars, decisions and trust) and the gas of each vote
transaction. Only py-evm, no audit sweep: minutes instead of ``chain_gas.py``'s half hour.
"""

from __future__ import annotations

import sys

from ppbfl.chain import Chain
from ppbfl.chain.scenario import Scenario, run_round

VOTES = ("postScalars", "voteScalars", "postDecisions", "voteDecisions", "commitAggregateShare", "commitAggregateShares")


def main(devices: int, d: int) -> None:
    """Print one line of gas per phase per round, then the vote transactions' gas."""
    with Chain.embedded(accounts=devices + 20) as chain, Scenario(chain, 3, 5, devices, d=d) as scenario:
        for round_ in (1, 2):
            record = run_round(scenario, round_)
            g = record.gas
            print(
                f"devices={devices} d={d} round {round_}: commit/device {g['commit'] / devices:,.0f} scalars {g['scalars']:,} "
                f"decisions {g['decisions']:,} trust {g['trust']:,} per-device {record.per_device(devices):,.0f} "
                f"aggregate-shares {g['aggregate_shares']:,} aggregate {g['aggregate']:,} audit {g['audit']:,} "
                f"fixed {g['fixed']:,} total {g['total']:,} audit-passed {record.audit is not None and record.audit.passed}"
            )
        calls = chain.gas_report().calls
        print("vote transactions (all rounds):", {m: calls[m] for m in VOTES if m in calls})


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(float(sys.argv[2])) if len(sys.argv) > 2 else 10**5)
