"""ServerApp: PpbflWorkflow over the edge nodes named in the run config; writes what each round did to ``out``."""

import json
from pathlib import Path

import numpy as np
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from ppbfl.integrations.flower import PpbflWorkflow
from tests import flower_apps as apps

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    edges = {int(j): a for j, a in (item.split("=") for item in str(config["edges"]).split(","))}
    devices = int(config["devices"])
    workflow = PpbflWorkflow(
        t=int(config["ppbfl-t"]), n=int(config["ppbfl-n"]), edges=edges, creds=str(config["ppbfl-creds"]),
        reference_fn=apps.reference, min_available_nodes=devices, min_train_nodes=devices,
    )
    try:
        result = workflow.start(
            grid=grid, initial_arrays=apps.to_arrays(np.zeros(31)), num_rounds=int(config["num-server-rounds"]),
            timeout=float(config["timeout"]),
        )
    finally:
        workflow.close()
    rounds = {
        r: {"devices": res.devices, "accepted": res.accepted, "rejected": sorted(res.rejected), "aggregate": res.aggregate.tolist(),
            "metrics": dict(result.train_metrics_clientapp[r])}
        for r, res in workflow.results.items()
    }
    Path(str(config["out"])).write_text(json.dumps({"rounds": rounds, "final": apps.from_arrays(result.arrays).tolist()}))
