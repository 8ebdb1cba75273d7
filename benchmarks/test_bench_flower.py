"""Per-round cost of ppbfl inside Flower (simulation engine) vs Flower's own FedAvg and SecAgg+.

Same clients, same model size, same simulation engine (``run_simulation``, Ray, 2 CPUs): each
client returns ``global + u_i`` with a fixed synthetic update ``u_i`` (d float32 entries, no
training), so what is timed is the aggregation path:

* ``fedavg``: ``flwr.serverapp.strategy.FedAvg`` (plaintext updates through the SuperLink);
* ``secaggplus``: Flower's ``SecAggPlusWorkflow`` + ``secaggplus_mod`` (legacy API, ``num_shares=3``,
  ``reconstruction_threshold=2``): privacy only;
* ``ppbfl``: ``PpbflWorkflow`` + ``PpbflMod`` with ``(t, n) = (2, 3)`` edge nodes as ``ppbfl edge``
  processes: privacy, share consistency, cosine verification, weighted aggregate.

A round is timed from ``configure_train`` to the end of ``aggregate_train`` (``configure_fit`` /
``aggregate_fit`` for SecAgg+); round 1 (actor start-up) is excluded, the mean of the others is
``extra_info["round_s"]``. Sizes: 20 and 100 clients, d = 1000, 3 rounds; ``PPBFL_BENCH_QUICK=1``:
3 clients, d = 100, 2 rounds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

from ppbfl.fl.federation import Federation
from ppbfl.integrations.flower import PpbflMod, PpbflWorkflow
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.process import spawn_server

CLIENTS = (3,) if QUICK else (20, 100)
D = 100 if QUICK else 1000
ROUNDS = 2 if QUICK else 3
T, N = 2, 3
BACKEND = {"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 2}}


def update(device: int) -> np.ndarray:
    """Device ``device``'s fixed update: a shared direction plus its own noise (float32 (D,))."""
    direction = np.random.default_rng(0).normal(0, 0.01, D)
    return (direction + np.random.default_rng(1 + device).normal(0, 0.01, D)).astype(np.float32)


def reference(w: np.ndarray) -> np.ndarray:
    """ppbfl's public reference: the shared direction."""
    return np.random.default_rng(0).normal(0, 0.01, D)


class Stamps:
    """Start and end time of each round."""

    def __init__(self) -> None:
        self.start: dict[int, float] = {}
        self.end: dict[int, float] = {}

    def round_s(self) -> float:
        return float(np.mean([self.end[r] - self.start[r] for r in self.end if r > 1]))


def timed(base: type, configure: str, aggregate: str, stamps: Stamps) -> type:
    """``base`` with ``configure``/``aggregate`` stamping the round's start and end."""

    def configure_fn(self, server_round, *args, **kwargs):  # type: ignore[no-untyped-def]
        stamps.start[server_round] = time.perf_counter()
        return getattr(base, configure)(self, server_round, *args, **kwargs)

    def aggregate_fn(self, server_round, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = getattr(base, aggregate)(self, server_round, *args, **kwargs)
        stamps.end[server_round] = time.perf_counter()
        return out

    return type(f"Timed{base.__name__}", (base,), {configure: configure_fn, aggregate: aggregate_fn})


def message_client(mods: list) -> ClientApp:
    app = ClientApp(mods=mods)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        w = msg.content["arrays"]["w"].numpy()
        trained = w + update(int(context.node_config["partition-id"]))  # type: ignore[arg-type]
        return Message(RecordDict({"arrays": ArrayRecord({"w": Array(trained)}), "metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)

    return app


class LegacyClient(NumPyClient):
    def __init__(self, device: int) -> None:
        self.device = device

    def fit(self, parameters, config):  # type: ignore[no-untyped-def]
        return [parameters[0] + update(self.device)], 1, {}


def run_fedavg(clients: int, stamps: Stamps) -> None:
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = timed(FedAvg, "configure_train", "aggregate_train", stamps)(
            fraction_evaluate=0.0, min_available_nodes=clients, min_train_nodes=clients,
        )
        strategy.start(grid=grid, initial_arrays=ArrayRecord({"w": Array(np.zeros(D, np.float32))}), num_rounds=ROUNDS, timeout=300)

    run_simulation(server_app=server, client_app=message_client([]), num_supernodes=clients, backend_config=BACKEND)


def run_secaggplus(clients: int, stamps: Stamps) -> None:
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = timed(LegacyFedAvg, "configure_fit", "aggregate_fit", stamps)(
            fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=clients, min_available_clients=clients,
            initial_parameters=ndarrays_to_parameters([np.zeros(D, np.float32)]),
        )
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=ROUNDS), strategy=strategy)
        DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2))(grid, legacy)

    client = ClientApp(client_fn=lambda context: LegacyClient(int(context.node_config["partition-id"])).to_client(), mods=[secaggplus_mod])  # type: ignore[arg-type]
    run_simulation(server_app=server, client_app=client, num_supernodes=clients, backend_config=BACKEND)


def warm_kernels() -> None:
    """One in-process round first: Numba compiles ppbfl's kernels into its on-disk cache here, so the
    simulation's Ray workers load them instead of all compiling at once (on a cold checkout that took
    longer than Flower waits, and the round never got its replies)."""
    with Federation.in_process(T, N, D, 2) as federation:
        federation.run_round(1, {0: update(0), 1: update(1)}, reference(np.zeros(D)))


def run_ppbfl(clients: int, stamps: Stamps) -> None:
    warm_kernels()
    with tempfile.TemporaryDirectory(prefix="ppbfl-bench-flower-") as tmp:
        creds = Path(tmp) / "creds"
        write_credentials(creds, party_ids(edges=N, devices=clients, coordinator=True))
        edges = {
            j: spawn_server([sys.executable, "-m", "ppbfl.cli", "edge", "--party", edge_party(j), "--creds", str(creds),
                             "--ca", str(creds / "ca.crt"), "--port", "0"], ready_timeout=60)
            for j in range(1, N + 1)
        }
        try:
            workflow = timed(PpbflWorkflow, "configure_train", "aggregate_train", stamps)(
                t=T, n=N, edges={j: p.address for j, p in edges.items()}, creds=creds, reference_fn=reference,
                min_available_nodes=clients, min_train_nodes=clients,
            )
            server = ServerApp()

            @server.main()
            def main(grid: Grid, context: Context) -> None:
                workflow.start(grid=grid, initial_arrays=ArrayRecord({"w": Array(np.zeros(D, np.float32))}), num_rounds=ROUNDS, timeout=300)
                assert all(len(r.accepted) == clients for r in workflow.results.values())

            try:
                run_simulation(server_app=server, client_app=message_client([PpbflMod(creds=creds, t=T, n=N)]),
                               num_supernodes=clients, backend_config=BACKEND)
            finally:
                workflow.close()
        finally:
            for proc in edges.values():
                proc.terminate()


RUNNERS = {"fedavg": run_fedavg, "secaggplus": run_secaggplus, "ppbfl": run_ppbfl}


@pytest.mark.parametrize("clients", CLIENTS)
@pytest.mark.parametrize("kind", list(RUNNERS))
def test_flower_round(benchmark, kind: str, clients: int) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"flower round, {clients} clients, d={D}"
    stamps = Stamps()
    benchmark.pedantic(RUNNERS[kind], args=(clients, stamps), rounds=1, iterations=1)
    assert sorted(stamps.end) == list(range(1, ROUNDS + 1)), f"{kind}: rounds finished {sorted(stamps.end)}"
    benchmark.extra_info["round_s"] = stamps.round_s()
    print(f"\n{kind} clients={clients} d={D}: {stamps.round_s():.3f} s per round (rounds 2..{ROUNDS})")
