"""Command line: ``ppbfl demo`` and ``ppbfl info``."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _info(_: argparse.Namespace) -> int:
    import numba
    import numpy

    import ppbfl
    from ppbfl.field import GF61, available_backends, backend_name
    from ppbfl.field.threads import worker_count

    print(f"ppbfl {ppbfl.__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"field: {GF61!r}; kernel backend: {backend_name()} (available: {', '.join(available_backends())})")
    print(f"kernel threads: {worker_count()}; numpy {numpy.__version__}; numba {numba.__version__}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ppbfl.demo import DemoConfig, run_demo

    config = DemoConfig(
        devices=args.devices, rounds=args.rounds, t=args.t, n=args.n, hidden=args.hidden,
        dropped=args.dropped, liar=None if args.liar == 0 else args.liar, seed=args.seed,
    )
    try:
        run_demo(config)
    except ValueError as exc:
        print(f"ppbfl demo: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppbfl`` command."""
    parser = argparse.ArgumentParser(prog="ppbfl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show the field, the active kernel backend and versions")
    info.set_defaults(run=_info)
    demo = commands.add_parser("demo", help="secure federated averaging on breast-cancer data")
    demo.add_argument("--devices", type=int, default=20, help="number of devices (default 20)")
    demo.add_argument("--rounds", type=int, default=5, help="training rounds (default 5)")
    demo.add_argument("-t", type=int, default=3, help="Shamir threshold (default 3)")
    demo.add_argument("-n", type=int, default=5, help="number of edge nodes (default 5)")
    demo.add_argument("--hidden", type=int, default=256, help="MLP hidden width (default 256: ~74k params)")
    demo.add_argument("--dropped", type=int, default=0, help="edge nodes offline at reconstruction")
    demo.add_argument("--liar", type=int, default=2, help="edge node that returns a tampered share (0: none)")
    demo.add_argument("--seed", type=int, default=0, help="simulation seed (data split, model init)")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
