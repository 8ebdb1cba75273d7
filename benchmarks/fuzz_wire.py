"""The long fuzz campaign of issue 12: mutated messages at ``wire.decode`` and, optionally, at a live
edge-node process over gRPC (the fuzzer: ``tests/fuzzing.py``; the bounded version in the suite:
``tests/test_fuzz_wire.py``).

Usage (from the repository root)::

    python benchmarks/fuzz_wire.py [--count 100000] [--live 0] [--seed S] [--hang-s 5]

``--count``: mutants at ``decode`` (each decoded message must re-encode); ``--live``: mutants sent
to edge node 1 of a ``GrpcDeployment(2, 3, 8)`` after one honest round, half as device 0 and half
as the coordinator, then a second round that must complete with every device and node.
``--seed``: default a fresh random one (printed). Prints the counts per outcome (decoded per kind,
``MessageError`` per reason class, untyped), the slowest decode and the rate; exits 1 on any
untyped exception, hang, failed reply or incomplete round, printing the input's hex.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzzing import COORDINATOR_PARTY, Sizes, fuzz_decode, fuzz_live


def _decode_campaign(seed: int, count: int, hang_s: float) -> bool:
    report = fuzz_decode(seed, count, hang_s=hang_s)
    print(report.summary())
    groups: dict[str, int] = {}
    for outcome, n in report.outcomes.items():
        head = outcome.split(" ", 1)[0]
        groups[head] = groups.get(head, 0) + n
    print("outcomes:", ", ".join(f"{k} {v:,}" for k, v in sorted(groups.items())))
    print("per outcome (most common first):")
    for outcome, n in report.outcomes.most_common():
        print(f"  {n:>7,}  {outcome}")
    for finding in report.findings[:10]:
        print("\nUNTYPED:", finding.describe(seed))
    return not report.findings


def _live_campaign(seed: int, count: int) -> bool:
    import numpy as np

    from ppbfl.field.fixed_point import FixedPointCodec
    from ppbfl.fl.federation import Federation
    from ppbfl.protocol.deployment import GrpcDeployment
    from ppbfl.protocol.grpc_transport import GrpcTransport
    from ppbfl.protocol.parties import device_party, edge_party
    from ppbfl.protocol.round import Coordinator
    from tests.protocol_helpers import synthetic_round

    t, n, d, m = 2, 3, 8, 3
    target = edge_party(1)
    with GrpcDeployment(t, n, d) as deployment:
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0)
        with Federation(deployment, coordinator, range(m)) as federation:
            federation.run_round(1, *synthetic_round(m, d, set(), seed=1))
            transports = {
                party: GrpcTransport(
                    party, deployment.creds[party], deployment.ca.cert_pem, {target: deployment.peers[target]},
                    fingerprints={target: deployment.fingerprints[target]}, retries=0,
                )
                for party in (COORDINATOR_PARTY, device_party(0))
            }
            try:
                report = fuzz_live(
                    transports, target, seed, count, sizes=Sizes(d=d, n=n),
                    rounds={COORDINATOR_PARTY: 1, device_party(0): 2}, done_round=1,
                )
            except AssertionError as failure:
                print("LIVE FAILURE:", failure)
                return False
            finally:
                for transport in transports.values():
                    transport.close()
            print(report.summary(target))
            alive = deployment.processes[target].alive()
            result = federation.run_round(2, *synthetic_round(m, d, set(), seed=2))
            complete = sorted(result.accepted) == list(range(m)) and result.online == tuple(range(1, n + 1))
            print(f"{target} alive: {alive}; next round: accepted {sorted(result.accepted)}, online {result.online}, "
                  f"dropped {result.dropped}, aggregate finite: {bool(np.isfinite(result.aggregate).all())}")
            return alive and complete


def main() -> int:
    """Run the campaigns; 0 if nothing untyped, hung or failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="mutants at wire.decode")
    parser.add_argument("--live", type=int, default=0, help="mutants at a live edge-node process over gRPC")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh random seed (printed)")
    parser.add_argument("--hang-s", type=float, default=5.0, help="per-decode wall-clock limit (a longer decode is a hang)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    print(f"fuzz seed {seed} (rerun: python benchmarks/fuzz_wire.py --seed {seed} --count {args.count} --live {args.live})")
    ok = _decode_campaign(seed, args.count, args.hang_s)
    if args.live:
        ok = _live_campaign(seed, args.live) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
