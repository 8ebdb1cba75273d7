"""The trust store at scale: DEVICES devices x ROUNDS rounds through :class:`TrustKeeper`, then proofs.

Usage: ``PYTHONPATH=. python benchmarks/trust_store_scale.py URL [--devices 100000] [--rounds 10] [--proofs 20]``
(URL: ``sqlite:///path.db`` or ``postgresql+psycopg://user@host:port/db``; the database must be
empty). Prints per-round seconds of the whole keeper step (evidence, update, records, leaves, root,
insert) and of the store insert alone, then mean proof generation and verification latency.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore, safe_url
from tests.trust_helpers import round_result

REASONS = ("accepted", "accepted", "accepted", "cosine <= tau", "out-of-range shares: x", "accepted", "inconsistent shares")


def main() -> None:
    """Run and print the measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--proofs", type=int, default=20)
    args = parser.parse_args()
    m = args.devices
    with TrustStore(args.url) as store:
        keeper = TrustKeeper(range(m), TrustConfig(), store=store)
        inserts: list[float] = []
        original = store.add_round

        def timed_add(round: int, records):  # type: ignore[no-untyped-def]
            tick = time.perf_counter()
            root = original(round, records)
            inserts.append(time.perf_counter() - tick)
            return root

        store.add_round = timed_add  # type: ignore[method-assign]
        steps = []
        for r in range(1, args.rounds + 1):
            result = round_result(r, {i: REASONS[(i + r) % 7] for i in range(m) if (i + r) % 11}, {i: "missing upload: no update" for i in range(m) if (i + r) % 11 == 0})
            tick = time.perf_counter()
            keeper.after_round(result)
            steps.append(time.perf_counter() - tick)
            print(f"round {r}: keeper step {steps[-1]:.2f} s, of which store insert (leaves, root, rows) {inserts[-1]:.2f} s", flush=True)
        proofs, verifies = [], []
        for k in range(args.proofs):
            device, r = (k * 7919) % m, 1 + k % args.rounds
            tick = time.perf_counter()
            proof = store.prove(device, r)
            proofs.append(time.perf_counter() - tick)
            root = store.root(r)
            tick = time.perf_counter()
            assert proof.verify(root)
            verifies.append(time.perf_counter() - tick)
    print(f"{m} devices x {args.rounds} rounds on {safe_url(args.url)}: keeper step mean {statistics.mean(steps):.2f} s/round, "
          f"store insert mean {statistics.mean(inserts):.2f} s/round ({m * args.rounds / sum(inserts):,.0f} records/s); "
          f"prove mean {1e3 * statistics.mean(proofs):.0f} ms, verify mean {1e3 * statistics.mean(verifies):.2f} ms")


if __name__ == "__main__":
    main()
