"""Gas and time of the on-chain round (issue 6): prints the Markdown tables of RESULTS.md.

Usage::

    PYTHONPATH=$PWD /work/venv/bin/python benchmarks/chain_gas.py > chain_tables.md

For m = 10 and 100 devices (t = 3, n = 5, d = 1e5, PoW 8 bits) it runs two honest rounds
(:func:`ppbfl.chain.scenario.run_round`: protocol rounds on synthetic updates) on the in-process py-evm chain and on anvil and
reports gas per phase (round 1 pays first-time storage writes, round 2 is the steady state),
the per-device metric of the issue (commitment + its share of scalars, decisions and trust),
gas per call split into calldata (intrinsic: 21000 + 16 / 4 per non-zero / zero byte) and
execution, the audit for t and t + 1 shares over d = 1e3 .. 1e6, and the wall time per round.
"""

from __future__ import annotations

import time
from collections import defaultdict

from eth_utils import function_signature_to_4byte_selector

from ppbfl.chain import Chain
from ppbfl.chain.scenario import Scenario, run_round

T, N, D = 3, 5, 10**5


def intrinsic(data: bytes) -> int:
    """Cancun intrinsic gas of a call with calldata ``data``."""
    zeros = data.count(0)
    return 21000 + 4 * zeros + 16 * (len(data) - zeros)


def split_by_method(chain: Chain, first_block: int) -> dict[str, list[tuple[int, int]]]:
    """``{method: [(gas, calldata gas), ...]}`` for the contract calls mined since ``first_block``."""
    abi = chain.deploy(T, N).contract.abi  # only to name selectors
    names = {
        function_signature_to_4byte_selector(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"): e["name"]
        for e in abi if e.get("type") == "function"
    }
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for number in range(first_block, chain.block_number + 1):
        for tx in chain.w3.eth.get_block(number, full_transactions=True).transactions:
            data = bytes(tx["input"] if "input" in tx else tx["data"])  # eth-tester says "data"
            name = names.get(data[:4])
            if name:
                gas = chain.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]
                out[name].append((gas, intrinsic(data)))
    return out


def main() -> None:
    per_round: list[str] = []
    calls_100: dict[str, list[tuple[int, int]]] = {}
    for devices in (10, 100):
        for name, factory in (("py-evm", Chain.embedded), ("anvil", Chain.anvil)):
            with factory(accounts=devices + 20) as chain:
                c = Scenario(chain, T, N, devices, d=D, pow_bits=8, audit_shares=T)
                for rnd in (1, 2):
                    start_block = chain.block_number + 1
                    record = run_round(c, rnd)
                    g = record.gas
                    per_round.append(
                        f"| {devices} | {name} | {rnd} | {g['commit'] / devices:,.0f} | {g['scalars']:,} | {g['decisions']:,} "
                        f"| {g['trust']:,} | **{record.per_device(devices):,.0f}** | {g['aggregate_shares']:,} "
                        f"| {g['aggregate']:,} | {g['audit']:,} | {g['fixed']:,} | {g['total']:,} "
                        f"| {g['total'] / devices:,.0f} | {record.seconds:.2f} s |"
                    )
                    if devices == 100 and name == "py-evm" and rnd == 2:
                        calls_100 = split_by_method(chain, start_block)
                c.close()
    print("#### Gas per round (t = 3, n = 5, d = 1e5, PoW 8 bits; audit with t shares)\n")
    print("| devices | target | round | commit / device | scalars | decisions | trust | per device (issue metric) "
          "| aggregate shares | aggregate | audit | open/close | round total | total / device | wall time |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(per_round))
    print("\n#### Gas per call, 100 devices, round 2 (py-evm)\n")
    print("| call | count | mean gas | calldata (incl. 21000) | execution |")
    print("|---|---:|---:|---:|---:|")
    for method, rows in sorted(calls_100.items(), key=lambda kv: -sum(g for g, _ in kv[1])):
        mean = sum(g for g, _ in rows) / len(rows)
        cd = sum(c for _, c in rows) / len(rows)
        print(f"| {method} | {len(rows)} | {mean:,.0f} | {cd:,.0f} | {mean - cd:,.0f} |")
    print("\n#### Audit of 16 coordinates (t = 3, n = 5)\n")
    print("| d | tree depth | shares opened | gas | calldata (incl. 21000) | execution | calldata bytes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    from ppbfl.chain import tree_depth

    with Chain.anvil(accounts=60) as chain:
        for d in (10**3, 10**4, 10**5, 10**6):
            for shares in (T, T + 1):
                with Scenario(chain, T, N, 1, d=d, pow_bits=0, audit_shares=shares) as c:
                    record = run_round(c, 1)
                data = bytes(chain.w3.eth.get_transaction(record.audit.tx_hash)["input"])
                cd = intrinsic(data)
                print(f"| {d:,} | {tree_depth(d)} | {shares} | {record.audit.gas:,} | {cd:,} | {record.audit.gas - cd:,} | {len(data):,} |")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n(generated in {time.perf_counter() - t0:.0f} s)")
