"""ppbfl inside a Flower app on Flower's simulation engine (``run_simulation``, Ray backend):
PpbflWorkflow + PpbflMod, edge nodes as ``ppbfl edge`` processes, one malicious client, rounds
recorded on the embedded chain (devices sign their own commitment transactions in the Ray workers,
the edge processes sign their own votes).

The oracle is the in-process protocol (``Federation.in_process``) replaying the same clients'
updates round by round: the global model after each Flower round must equal it exactly, and the
malicious client must be rejected in every round. flwr is a test dependency: without it this
module fails to import (no skip)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from ppbfl.chain.rounds import Phase
from ppbfl.fl.federation import Federation
from ppbfl.integrations.flower import PpbflMod, PpbflWorkflow
from tests import flower_apps as apps

DEVICES = 5
MALICIOUS = frozenset({3})
ROUNDS = 2


def in_process_rounds(rounds: int) -> list[tuple[np.ndarray, np.ndarray, list[int]]]:
    """The aggregate, the global model and the accepted devices of each round, by the in-process protocol."""
    w = np.zeros(31)
    out = []
    with Federation.in_process(apps.T, apps.N, w.size, DEVICES) as federation:
        for r in range(1, rounds + 1):
            updates = {i: apps.client_update(w, i, DEVICES, MALICIOUS) - w for i in range(DEVICES)}
            result = federation.run_round(r, updates, apps.reference(w))
            w = w + result.aggregate
            out.append((result.aggregate, w.copy(), result.accepted))
    return out


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> tuple[PpbflWorkflow, dict]:
    with Federation.in_process(apps.T, apps.N, 31, 1) as warm:  # Numba compiles the kernels here, not in every Ray worker at once
        warm.run_round(1, {0: np.full(31, 0.01)}, np.full(31, 0.01))
    with apps.edge_tier(tmp_path_factory.mktemp("flower-sim"), DEVICES) as (creds, edges, _):
        workflow = PpbflWorkflow(
            t=apps.T, n=apps.N, edges=edges, creds=creds, reference_fn=apps.reference, min_available_nodes=DEVICES,
            min_train_nodes=DEVICES, chain="embedded",
        )
        out: dict = {}
        server = ServerApp()

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            # ``timeout`` bounds the train and proof replies; an honest round ends at the last reply. On
            # CI's 2 cores beside the other xdist worker, round 1's replies once took over 120 s.
            out["result"] = workflow.start(grid=grid, initial_arrays=apps.to_arrays(np.zeros(31)), num_rounds=ROUNDS, timeout=600)

        client = apps.make_client_app(PpbflMod(creds=creds, t=apps.T, n=apps.N), DEVICES, MALICIOUS)
        try:
            run_simulation(
                server_app=server, client_app=client, num_supernodes=DEVICES,
                backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 2}},
            )
        finally:
            workflow.close()
    return workflow, out


def test_global_model_equals_the_in_process_protocol(simulation: tuple[PpbflWorkflow, dict]) -> None:
    workflow, out = simulation
    assert "result" in out, "the ServerApp did not finish"
    expected = in_process_rounds(ROUNDS)
    for r, (aggregate, _, accepted) in enumerate(expected, start=1):
        assert workflow.results[r].accepted == accepted
        np.testing.assert_array_equal(workflow.results[r].aggregate, aggregate)
    final = apps.from_arrays(out["result"].arrays)
    np.testing.assert_array_equal(final, expected[-1][1])
    assert apps.accuracy(final) > 0.9


def test_malicious_client_rejected_every_round(simulation: tuple[PpbflWorkflow, dict]) -> None:
    workflow, _ = simulation
    for r in range(1, ROUNDS + 1):
        result = workflow.results[r]
        assert sorted(result.devices) == list(range(DEVICES))
        assert result.accepted == sorted(set(range(DEVICES)) - MALICIOUS)
        assert set(result.rejected) == MALICIOUS
        assert result.missing == {}


def test_no_update_reaches_flower(simulation: tuple[PpbflWorkflow, dict]) -> None:
    _, out = simulation
    for metrics in out["result"].train_metrics_clientapp.values():
        assert metrics["plaintext-replies"] == 0
        assert metrics["flower-errors"] == 0


def test_every_round_is_on_chain_with_the_devices_and_nodes_own_signatures(simulation: tuple[PpbflWorkflow, dict]) -> None:
    workflow, out = simulation
    ledger = workflow.ledger
    assert ledger is not None
    accounts = ledger.device_accounts
    for r in range(1, ROUNDS + 1):
        metrics = out["result"].train_metrics_clientapp[r]
        assert metrics["chain-refused"] == 0 and metrics["gas"] > 0
        state = ledger.contract.round_state(r)
        assert state.phase is Phase.CLOSED and state.committed == DEVICES
        for i in range(DEVICES):  # committed from the device's own registered account (the contract checks the sender)
            assert ledger.contract.commitment(r, i) != bytes(32)
            assert ledger.contract.device(accounts[i])[:2] == (True, i)
        # the decisions were agreed by the edge processes' own keys: every voter is a registered edge node
        assert state.decisions_agreed and state.audit_passed
        assert set(state.decision_voters) <= set(range(1, apps.N + 1)) and len(state.decision_voters) >= apps.T
