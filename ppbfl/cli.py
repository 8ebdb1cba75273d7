"""Command line: ``ppbfl demo``, ``ppbfl info`` and ``ppbfl experiment CONFIG``."""

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


def _experiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ppbfl.fl.config import load_config
    from ppbfl.fl.errors import FLError
    from ppbfl.fl.report import write_all
    from ppbfl.fl.runner import run_experiment

    output = Path(args.output) if args.output else Path(args.config).parent
    command = f"ppbfl experiment {args.config}" + (f" --output {args.output}" if args.output else "")
    try:
        config = load_config(args.config)
        results = run_experiment(config, progress=not args.no_progress)
    except FLError as exc:
        print(f"ppbfl experiment: {exc}", file=sys.stderr)
        return 2
    written = write_all(results, output, command=command)
    for path in written.values():
        print(path)
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
    experiment = commands.add_parser("experiment", help="run a grid of FL poisoning experiments from a TOML config")
    experiment.add_argument("config", help="TOML config (see ppbfl.fl.config)")
    experiment.add_argument("--output", default=None, help="output folder (default: the config's folder)")
    experiment.add_argument("--no-progress", action="store_true", help="no progress bar")
    experiment.set_defaults(run=_experiment)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
