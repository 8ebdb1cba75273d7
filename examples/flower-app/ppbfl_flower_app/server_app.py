"""ServerApp: a stock Flower main function; ppbfl's PpbflWorkflow is the strategy."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from ppbfl.integrations.flower import ModelLayout, PpbflWorkflow
from ppbfl_flower_app.task import accuracy, load_root, make_model, train

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run ``num-server-rounds`` ppbfl rounds over every connected device; print accuracy and decisions."""
    config = context.run_config
    model = make_model()
    layout = ModelLayout.of(ArrayRecord(model.state_dict()))
    root_x, root_y = load_root()

    def reference(global_vector: np.ndarray) -> np.ndarray:
        """FLTrust: the root set's update from the global model (public, computed by the server)."""
        root_model = make_model()
        root_model.load_state_dict(layout.unflatten(global_vector).to_torch_state_dict())
        train(root_model, root_x, root_y, int(config["local-epochs"]), float(config["lr"]))
        return layout.flatten(ArrayRecord(root_model.state_dict()), "server") - global_vector

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        return MetricRecord({"accuracy": accuracy(model)})

    edges = {int(j): address for j, address in (item.split("=") for item in str(config["edges"]).split(","))}
    devices = int(config["num-devices"])
    rule = str(config["rule"])  # "cosine": against the root set's update; "flame": no root set
    workflow = PpbflWorkflow(  # ppbfl: in place of FedAvg(...)
        t=int(config["ppbfl-t"]), n=int(config["ppbfl-n"]), edges=edges, creds=str(config["ppbfl-creds"]),
        reference_fn=reference if rule == "cosine" else None, rule=rule, flame_noise=float(config["flame-noise"]),
        rescale=bool(config["rescale"]), min_available_nodes=devices, min_train_nodes=devices,
        prove_timeout=float(config["prove-timeout"]), chain=str(config["chain"]) or None,
    )
    try:
        workflow.start(
            grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=int(config["num-server-rounds"]),
            evaluate_fn=evaluate,
        )
    finally:
        workflow.close()
    for server_round, result in workflow.results.items():
        print(f"round {server_round}: accepted {result.accepted}, rejected {result.rejected}")
