"""Where a whole protocol round's time goes: train / share / upload / verify / aggregate / reconstruct / chain.

Runs a few rounds of the real protocol (devices, edge nodes, dealer, embedded chain) with a torch
MLP of about ``--params`` parameters on breast-cancer data, in-process and over gRPC + mutual TLS
with edge-node processes, and prints the mean seconds per step of the rounds after the first
(the first pays connection set-up and kernel loading).

    python benchmarks/round_breakdown.py --devices 100 --params 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from ppbfl.field import FixedPointCodec
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.partition import iid_partition
from ppbfl.fl.training import TrainSettings, local_update
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator

STEPS = ("train", "share", "upload", "verify", "aggregate", "reconstruct", "chain")


def hidden_for(params: int, features: int, classes: int) -> int:
    """The MLP width whose parameter count is closest to ``params``."""
    sizes = {h: features * h + h + h * h + h + h * classes + classes for h in range(4, 2048)}
    return min(sizes, key=lambda h: abs(sizes[h] - params))


def run(transport: str, devices: int, params: int, rounds: int, t: int, n: int) -> dict[str, float]:
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
    totals = dict.fromkeys(STEPS, 0.0)
    with deployment, open_ledger("embedded", t, n, devices=devices, fingerprints=deployment.fingerprints) as ledger:
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=codec, ledger=ledger, timeout=120.0)
        coordinator.setup()
        people = [Device(i, t, n, codec) for i in range(devices)]
        for rnd in range(1, rounds + 1):
            tick = time.perf_counter()
            updates = {
                i: local_update(model, weights, data.x_train[idx], data.y_train[idx], settings, torch.Generator().manual_seed(rnd * 1000 + i))
                for i, idx in enumerate(parts)
            }
            reference = np.mean(list(updates.values()), axis=0)
            trained = time.perf_counter() - tick
            result = coordinator.run_round(rnd, people, updates, reference, device_transport=deployment.device_transport)
            weights = (weights + result.aggregate).astype(np.float32)
            if rnd > 1:
                totals["train"] += trained
                for step in STEPS[1:]:
                    totals[step] += result.timings[step]
    return {step: value / max(1, rounds - 1) for step, value in totals.items()} | {"d": d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transports", default="inprocess,grpc")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the demo: small per-device models, the kernels' pool has the cores
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    print(f"| transport | d | {' | '.join(STEPS)} | total |")
    print("|---|---|" + "---|" * (len(STEPS) + 1))
    for transport in args.transports.split(","):
        row = run(transport, args.devices, args.params, args.rounds, 3, 5)
        total = sum(row[s] for s in STEPS)
        print(f"| {transport} | {row['d']} | " + " | ".join(f"{row[s]:.2f}" for s in STEPS) + f" | {total:.2f} |", flush=True)


if __name__ == "__main__":
    main()
