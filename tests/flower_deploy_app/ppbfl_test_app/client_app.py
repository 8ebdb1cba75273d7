"""ClientApp: the stock train function plus PpbflMod (device index from ``--node-config ppbfl-device=I``).

The device ``hang-device`` stops answering in round ``hang-round`` (it writes ``<out>.hang`` and
sleeps): the test then kills its SuperNode, a dropout mid-round."""

import time
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from ppbfl.integrations.flower import PpbflMod
from tests import flower_apps as apps

app = ClientApp(mods=[PpbflMod()])


@app.train()
def train(msg: Message, context: Context) -> Message:
    config = context.run_config
    device = int(context.node_config["ppbfl-device"])
    if device == int(config["hang-device"]) and int(msg.content["config"]["server-round"]) == int(config["hang-round"]):
        Path(f"{config['out']}.hang").write_text(str(device))
        time.sleep(600)
    malicious = frozenset(int(i) for i in str(config["malicious"]).split(",") if i)
    return apps.train_reply(msg, device, int(config["devices"]), malicious)
