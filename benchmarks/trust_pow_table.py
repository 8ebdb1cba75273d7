"""Hashing time of a trust-scaled PoW stamp per difficulty level on this machine.

Usage: ``python benchmarks/trust_pow_table.py [--stamps K]``. For each level it solves ``K``
stamps over distinct commitments with :func:`ppbfl.chain.pow.pow_stamp` (the solver devices run)
and prints the mean seconds and the hash rate; levels above ``--measure-up-to`` are extrapolated
from the measured rate (expected work ``2^bits`` hashes) and marked as such.
"""

from __future__ import annotations

import argparse
import time

from ppbfl.chain.pow import pow_stamp
from ppbfl.trust import TrustConfig
from ppbfl.trust.pow import pow_bits_for


def main() -> None:
    """Print the Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stamps", type=int, default=16)
    parser.add_argument("--measure-up-to", type=int, default=18)
    parser.add_argument("--pi-slowdown", type=float, default=5.0, help="assumed Raspberry-Pi-4-class slowdown (an estimate)")
    args = parser.parse_args()
    account, contract = "0x" + "ab" * 20, "0x" + "ee" * 20
    pow_stamp(contract, 31337, account, 1, b"\x01" * 32, 4)  # compile / load the keccak kernel
    config = TrustConfig()
    rate = 0.0
    print(f"| bits | trust that gets it (defaults {config.pow_min_bits}..{config.pow_max_bits}) | nonces hashed (mean) | seconds here (mean of {args.stamps}) | Pi-class estimate (x{args.pi_slowdown:g}) |")
    print("|---:|---|---:|---:|---:|")
    for bits in range(8, config.pow_max_bits + 1, 2):
        trusts = [q / 2**15 for q in range(0, 2**15 + 1, 64) if pow_bits_for(q, config) == bits]
        who = f"{min(trusts):.2f}..{max(trusts):.2f}" if trusts else "-"
        if bits == config.pow_max_bits:
            who += " and quarantine"
        if bits <= args.measure_up_to:
            tick, hashed = time.perf_counter(), 0
            for k in range(args.stamps):
                hashed += pow_stamp(contract, 31337, account, 1 + k, (k + 1).to_bytes(32, "big"), bits) + 1
            seconds = (time.perf_counter() - tick) / args.stamps
            rate = hashed / args.stamps / seconds
            print(f"| {bits} | {who} | {hashed / args.stamps:,.0f} | {seconds:.4f} | {args.pi_slowdown * seconds:.3f} |")
        else:
            seconds = 2**bits / rate
            print(f"| {bits} | {who} | {2**bits:,} (expected) | {seconds:.2f} (extrapolated) | {args.pi_slowdown * seconds:.1f} |")
    print(f"\nhash rate at the last measured level: {rate:,.0f} keccak-256/s")


if __name__ == "__main__":
    main()
