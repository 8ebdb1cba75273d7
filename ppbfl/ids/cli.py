"""``ppbfl ids train`` and ``ppbfl ids detect`` (registered on the main parser by :func:`add_parser`)."""

from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["add_parser"]

QUICK = {"devices": 8, "segments": 20, "rounds": 2, "central_epochs": 2, "root_size": 20}


def _train(args: argparse.Namespace) -> int:
    from ppbfl.errors import PPBFLError
    from ppbfl.ids.federated import IDSTrainConfig, train_and_compare
    from ppbfl.ids.generator import GeneratorConfig
    from ppbfl.ids.report import LABELS, write_report

    sizes = {"devices": args.devices, "segments": args.segments, "rounds": args.rounds, "central_epochs": args.central_epochs,
             "root_size": args.root_size}
    if args.quick:
        sizes = {k: QUICK[k] if v is None else v for k, v in sizes.items()}
    given = {k: v for k, v in sizes.items() if v is not None}
    command = "ppbfl ids " + " ".join(sys.argv[sys.argv.index("train"):] if "train" in sys.argv else ["train"])
    tick, cpu = time.perf_counter(), time.process_time()
    try:
        generator = GeneratorConfig(**{k: given[k] for k in ("devices", "segments") if k in given}, seed=args.seed)
        config = IDSTrainConfig(
            generator=generator, seed=args.seed, attack=args.attack, malicious_fraction=args.malicious,
            **{k: given[k] for k in ("rounds", "central_epochs", "root_size") if k in given},
        )
        result = train_and_compare(config, progress=args.progress)
        written = write_report(result, args.out, command=command, wall_s=time.perf_counter() - tick, cpu_s=time.process_time() - cpu)
    except PPBFLError as exc:
        print(f"ppbfl ids train: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for name, m in result.metrics.items():
        print(f"{LABELS.get(name, name):34s} macro-F1 {m['macro']['f1']:.3f}  detection {m['detection_rate']:.3f}  false alarms {m['false_alarm_rate']:.3f}")
    for path in written:
        print(path)
    return 0


def _detect(args: argparse.Namespace) -> int:
    from ppbfl.ids.detector import Detector, StreamDetector, read_stream
    from ppbfl.ids.errors import IDSError

    try:
        stream = StreamDetector(Detector.load(args.model), stride=args.stride)
        with open(args.csv, newline="") if args.csv != "-" else sys.stdin as handle:
            for row, device, record in read_stream(handle, stream.detector.feature_names, args.csv):
                alert = stream.push(row, device, record)
                if alert is not None:
                    print(alert, flush=True)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- replaces the closed pipe until exit
        return 0
    except (IDSError, OSError) as exc:
        print(f"ppbfl ids detect: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for device in sorted(stream.seen):
        print(f"device {device}: {stream.flagged.get(device, 0)} of {stream.seen[device]} windows flagged")
    if args.flags_json is not None:
        from ppbfl.ids.reputation import write_flags

        write_flags(args.flags_json, {device: stream.flagged.get(device, 0) for device in stream.seen})
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``ids train`` / ``ids detect`` to the ``ppbfl`` command's subparsers."""
    ids = commands.add_parser("ids", help="LSTM intrusion detection for IoMT: train through secure FL, detect on a stream")
    sub = ids.add_subparsers(dest="ids_command", required=True)
    train = sub.add_parser("train", help="generate IoMT data, train the LSTM by secure FL with baselines, write the report")
    train.add_argument("--out", default="reports/ids", help="report folder (default reports/ids)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--devices", type=int, default=None, help="IoMT devices = FL clients (default 40)")
    train.add_argument("--segments", type=int, default=None, help="windows per device (default 60)")
    train.add_argument("--rounds", type=int, default=None, help="FL rounds (default 40)")
    train.add_argument("--central-epochs", type=int, default=None, help="epochs of the central LSTM and MLP (default 20)")
    train.add_argument("--root-size", type=int, default=None, help="server's clean root-set windows (default 100)")
    train.add_argument("--attack", default="sign_flip", help="poisoning attack of ppbfl.fl.attacks (default sign_flip, boosted 5x)")
    train.add_argument("--malicious", type=float, default=0.2, help="fraction of poisoning clients (default 0.2)")
    train.add_argument("--quick", action="store_true", help="tiny sizes (seconds; a smoke test, not a result)")
    train.add_argument("--progress", action="store_true", help="print macro-F1 after every round")
    train.set_defaults(run=_train)
    detect = sub.add_parser("detect", help="stream a CSV (device + feature columns) through a detector, print alerts as they happen")
    detect.add_argument("csv", help="CSV file, or - for standard input")
    detect.add_argument("--model", default="reports/ids/detector.pt", help="saved detector (default reports/ids/detector.pt)")
    detect.add_argument("--stride", type=int, default=1, help="classify every STRIDE-th record per device (default 1)")
    detect.add_argument(
        "--flags-json", default=None,
        help="also write the per-device flagged-window counts as JSON {device: count} (what `ppbfl edge --ids-flags DIR` signs from DIR/round-<r>.json)",
    )
    detect.set_defaults(run=_detect)
