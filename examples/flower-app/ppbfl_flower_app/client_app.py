"""ClientApp: a stock Flower train function; ppbfl is the one mod."""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ppbfl.integrations.flower import PpbflMod
from ppbfl_flower_app.task import load_partition, make_model, train

app = ClientApp(mods=[PpbflMod()])  # ppbfl: the update leaves only as shares, to the edge nodes


@app.train()
def train_fn(msg: Message, context: Context) -> Message:
    """Train the global model on this device's shard; a device named in ``malicious`` sign-flips."""
    device = int(context.node_config.get("ppbfl-device", context.node_config.get("partition-id", 0)))  # type: ignore[arg-type]
    model = make_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    start = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = load_partition(device, int(context.run_config["num-devices"]))
    loss = train(model, x, y, int(context.run_config["local-epochs"]), float(context.run_config["lr"]))
    if str(device) in str(context.run_config["malicious"]).split(","):  # a poisoning device: -4 x its update
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(start[k] - 4.0 * (v - start[k]))
    content = RecordDict({
        "arrays": ArrayRecord(model.state_dict()),
        "metrics": MetricRecord({"train_loss": loss, "num-examples": len(y)}),
    })
    return Message(content=content, reply_to=msg)
