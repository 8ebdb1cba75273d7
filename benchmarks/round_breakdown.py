"""Where a whole protocol round's time goes: train / devices / collect / verify / aggregate / reconstruct / chain.

Runs a few rounds of the real protocol (device clients, edge nodes, dealer, embedded chain unless
``--no-chain``) with a torch MLP of about ``--params`` parameters on breast-cancer data, in-process
and over gRPC + mutual TLS with edge-node processes, and prints the mean seconds per step of the
rounds after the first (the first pays connection set-up and kernel loading). ``devices`` is the
wall time of the devices' phase (share, commit, upload; ``--workers`` devices at a time);
``share`` / ``commit`` / ``upload`` columns are device-seconds summed over devices (they overlap
in ``devices``; commitments are chain transactions, one at a time on the embedded chain).

    python benchmarks/round_breakdown.py --devices 100 --params 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import time
from contextlib import ExitStack

import numpy as np
import torch

from ppbfl.field import FixedPointCodec
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.federation import Federation
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.partition import iid_partition
from ppbfl.fl.training import TrainSettings, local_update
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator

STEPS = ("train", "devices", "collect", "verify", "aggregate", "reconstruct", "chain")
"""Steps that add up to the round (``share`` and ``upload`` are device-seconds inside ``devices``)."""
DEVICE_SECONDS = ("share", "commit", "upload")


def hidden_for(params: int, features: int, classes: int) -> int:
    """The MLP width whose parameter count is closest to ``params``."""
    sizes = {h: features * h + h + h * h + h + h * classes + classes for h in range(4, 2048)}
    return min(sizes, key=lambda h: abs(sizes[h] - params))


def run(transport: str, devices: int, params: int, rounds: int, t: int, n: int, *, chain: bool = True, workers: int | None = None) -> dict[str, float]:
    """Mean seconds per step over rounds 2..``rounds``."""
    data = load_dataset("breast_cancer")
    rng = np.random.default_rng(0)
    parts = iid_partition(data.y_train, devices, rng)
    model = build_model("mlp", data.n_features, data.n_classes, hidden=hidden_for(params, data.n_features, data.n_classes))
    weights = get_flat(model)
    d = weights.size
    codec = FixedPointCodec()
    settings = TrainSettings()
    deployment = GrpcDeployment(t, n, d) if transport == "grpc" else InProcessDeployment(t, n, d)
    totals = dict.fromkeys(STEPS + DEVICE_SECONDS, 0.0)
    with ExitStack() as stack:
        stack.enter_context(deployment)
        ledger = stack.enter_context(open_ledger("embedded", t, n, devices=devices, fingerprints=deployment.fingerprints)) if chain else None
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=codec, ledger=ledger, timeout=120.0)
        coordinator.setup()
        federation = stack.enter_context(Federation(deployment, coordinator, range(devices), ledger=ledger, workers=workers))
        for rnd in range(1, rounds + 1):
            tick = time.perf_counter()
            updates = {
                i: local_update(model, weights, data.x_train[idx], data.y_train[idx], settings, torch.Generator().manual_seed(rnd * 1000 + i))
                for i, idx in enumerate(parts)
            }
            reference = np.mean(list(updates.values()), axis=0)
            trained = time.perf_counter() - tick
            result = federation.run_round(rnd, updates, reference)
            weights = (weights + result.aggregate).astype(np.float32)
            if rnd > 1:
                totals["train"] += trained
                for step in STEPS[1:] + DEVICE_SECONDS:
                    totals[step] += result.timings[step]
    return {step: value / max(1, rounds - 1) for step, value in totals.items()} | {"d": d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transports", default="inprocess,grpc")
    parser.add_argument("--no-chain", action="store_true", help="no ledger (the round without the embedded chain)")
    parser.add_argument("--workers", type=int, default=None, help="devices sharing and uploading at the same time (default: Federation's)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the demo: small per-device models, the kernels' pool has the cores
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    columns = STEPS + DEVICE_SECONDS
    print(f"| transport | d | chain | {' | '.join(columns)} | total |")
    print("|---|---|---|" + "---|" * (len(columns) + 1))
    for transport in args.transports.split(","):
        row = run(transport, args.devices, args.params, args.rounds, 3, 5, chain=not args.no_chain, workers=args.workers)
        total = sum(row[s] for s in STEPS)
        print(
            f"| {transport} | {row['d']} | {'no' if args.no_chain else 'embedded'} | " + " | ".join(f"{row[s]:.2f}" for s in columns) + f" | {total:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
