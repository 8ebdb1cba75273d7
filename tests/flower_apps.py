"""Test scaffolding for the Flower integration: a numpy logistic-regression Flower app on breast
cancer (deterministic float64 training, so an independent in-process run can replay it), and an
edge tier of ``ppbfl edge`` processes with credentials from ``ppbfl creds``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ppbfl.integrations.flower import PpbflMod
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.process import ServerProcess, spawn_server

T, N = 2, 3
ROOT = 20
STEPS, LR = 5, 0.5
MALICIOUS_FACTOR = -3.0


def dataset() -> tuple[np.ndarray, np.ndarray]:
    """Standardised breast-cancer features with a bias column (569, 31) float64 and labels (569,)."""
    # imported here, not with the module: a ClientApp process that only proves (no training) skips sklearn's ~2 s import
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    return np.hstack([x, np.ones((len(x), 1))]), data.target.astype(np.float64)


def partitions(devices: int) -> tuple[tuple[np.ndarray, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """The server's root set (first ROOT of a seeded permutation) and ``devices`` IID shards of the rest."""
    x, y = dataset()
    order = np.random.default_rng(0).permutation(len(y))
    root, rest = order[:ROOT], order[ROOT:]
    return (x[root], y[root]), [(x[idx], y[idx]) for idx in np.array_split(rest, devices)]


def local_train(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """STEPS full-batch gradient steps of logistic regression from ``w`` (31,) float64."""
    w = w.copy()
    for _ in range(STEPS):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        w -= LR * x.T @ (p - y) / len(y)
    return w


def client_update(w: np.ndarray, device: int, devices: int, malicious: frozenset[int]) -> np.ndarray:
    """Device ``device``'s trained model (a malicious one sends its update scaled by MALICIOUS_FACTOR)."""
    x, y = partitions(devices)[1][device]
    trained = local_train(w, x, y)
    return w + MALICIOUS_FACTOR * (trained - w) if device in malicious else trained


def reference(w: np.ndarray) -> np.ndarray:
    """The server's FLTrust-style reference: the root set's update from ``w``."""
    (x, y), _ = partitions(1)
    return local_train(w, x, y) - w


def accuracy(w: np.ndarray) -> float:
    """Accuracy of ``w`` on the whole dataset."""
    x, y = dataset()
    return float(np.mean((x @ w > 0) == (y == 1)))


def to_arrays(w: np.ndarray) -> ArrayRecord:
    """The model as Flower sees it: ``{"w": (30,), "b": (1,)}``."""
    return ArrayRecord({"w": Array(np.ascontiguousarray(w[:30])), "b": Array(np.ascontiguousarray(w[30:]))})


def from_arrays(arrays: ArrayRecord) -> np.ndarray:
    """Inverse of :func:`to_arrays`."""
    return np.concatenate([arrays["w"].numpy(), arrays["b"].numpy()]).astype(np.float64)


def make_client_app(mod: PpbflMod | None, devices: int, malicious: frozenset[int]) -> ClientApp:
    """A stock Message-API ClientApp (device index: the node's ``partition-id``, else ``ppbfl-device``)."""
    app = ClientApp(mods=[] if mod is None else [mod])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        config = context.node_config
        return train_reply(msg, int(config.get("ppbfl-device", config.get("partition-id", -1))), devices, malicious)  # type: ignore[arg-type]

    return app


def train_reply(msg: Message, device: int, devices: int, malicious: frozenset[int]) -> Message:
    """The stock ClientApp reply to a train message: the trained model and ``num-examples``."""
    trained = client_update(from_arrays(msg.content["arrays"]), device, devices, malicious)
    content = RecordDict({"arrays": to_arrays(trained), "metrics": MetricRecord({"num-examples": 1})})
    return Message(content, reply_to=msg)


@contextlib.contextmanager
def edge_tier(workdir: Path, devices: int, n: int = N) -> Iterator[tuple[Path, dict[int, str], dict[int, ServerProcess]]]:
    """``ppbfl creds`` for n edge nodes, ``devices`` devices and the coordinator in ``workdir``/creds,
    and ``n`` ``ppbfl edge`` processes on 127.0.0.1; yields (creds dir, edge index -> address, processes)."""
    creds = workdir / "creds"
    write_credentials(creds, party_ids(edges=n, devices=devices, coordinator=True))
    processes: dict[int, ServerProcess] = {}
    try:
        for j in range(1, n + 1):
            processes[j] = spawn_server(
                [sys.executable, "-m", "ppbfl.cli", "edge", "--party", edge_party(j), "--creds", str(creds),
                 "--ca", str(creds / "ca.crt"), "--port", "0"],
                ready_timeout=60,
            )
        yield creds, {j: p.address for j, p in processes.items()}, processes
    finally:
        for proc in processes.values():
            if proc.alive():
                proc.terminate()
