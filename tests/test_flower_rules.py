"""PpbflWorkflow's decision rules, in process: a fake Flower grid drives the real workflow and the
real PpbflMod, their transports swapped for an in-process deployment's (no Flower simulation, no
processes). Each round must equal the same round run directly on the protocol (exact field results)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import SecureCosineFilter
from ppbfl.integrations.flower import PpbflMod, PpbflWorkflow
from ppbfl.integrations.flower import mod as mod_module
from ppbfl.integrations.flower import workflow as workflow_module
from ppbfl.protocol.deployment import InProcessDeployment
from tests.flower_apps import from_arrays, to_arrays, train_reply
from tests.flower_apps import reference as root_update

T, N, D, DEVICES = 2, 3, 31, 5
MALICIOUS = frozenset({4})
EDGES = {j: f"in-process:{j}" for j in range(1, N + 1)}


class _KeepOpen:
    """A device's in-process transport that the mod may close after each message."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        """Keep the deployment's transport for the device's next message."""


class FakeGrid:
    """Nodes ``1..DEVICES`` (device ``node - 1``), each running the stock ClientApp behind ``PpbflMod``."""

    def __init__(self) -> None:
        self.mod = PpbflMod(t=T, n=N, creds="unused")
        self.contexts = {
            i + 1: Context(run_id=1, node_id=i + 1, node_config={"ppbfl-device": i}, state=RecordDict(), run_config={})
            for i in range(DEVICES)
        }

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def deliver(self, message: Message) -> Message:
        context = self.contexts[message.metadata.dst_node_id]
        return self.mod(message, context, lambda msg, ctx: train_reply(msg, int(ctx.node_config["ppbfl-device"]), DEVICES, MALICIOUS))

    def send_and_receive(self, messages: list[Message], timeout: float | None = None) -> list[Message]:
        return [self.deliver(message) for message in messages]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch):
    """The workflow's and the mod's gRPC transports replaced by one in-process deployment's; the
    identity Flower sets in its processes (Message() needs it)."""
    for name in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)
    deployment = InProcessDeployment(T, N, D, signed_uploads=True)  # the nodes refuse unsigned uploads
    monkeypatch.setattr(workflow_module, "GrpcTransport", lambda *args: deployment.coordinator)
    monkeypatch.setattr(mod_module, "GrpcTransport", lambda party, *args: _KeepOpen(deployment.device_transport(int(party.split("-")[1]))))
    monkeypatch.setattr(workflow_module, "load_credentials", lambda *args: None)
    monkeypatch.setattr(mod_module, "load_credentials", lambda creds, party: SimpleNamespace(key=deployment.device_key(int(party.split("-")[1]))))
    monkeypatch.setattr(workflow_module, "FileRegistry", lambda path: None)
    monkeypatch.setattr(workflow_module, "CertificateKeys", lambda folder, registry: deployment.device_keys)
    for module in (workflow_module, mod_module):
        monkeypatch.setattr(module, "read_ca_cert", lambda *args: None)
    yield deployment
    deployment.close()


@pytest.mark.parametrize("options", [{"rule": "flame"}, {"rule": "cosine", "rescale": True, "reference_fn": root_update}])
def test_one_round_through_the_workflow_equals_the_protocol_round(in_process, options):
    w0 = np.zeros(D)
    grid = FakeGrid()
    workflow = PpbflWorkflow(t=T, n=N, edges=EDGES, creds="unused", min_available_nodes=DEVICES, min_train_nodes=DEVICES, **options)
    try:
        messages = list(workflow.configure_train(1, to_arrays(w0), ConfigRecord(), grid))  # type: ignore[arg-type]
        replies = [grid.deliver(message) for message in messages]
        arrays, metrics = workflow.aggregate_train(1, replies)
    finally:
        workflow.close()
    result = workflow.results[1]
    assert metrics is not None and metrics["proof-errors"] == 0 and metrics["missing"] == 0
    # the -3x device is out by either rule (FLAME may also leave an honest one outside its cluster)
    assert result.rejected[4] == ("outside majority cluster" if options["rule"] == "flame" else "negative cosine")
    updates = np.stack([from_arrays(train_reply(messages[i], i, DEVICES, MALICIOUS).content["arrays"]) - w0 for i in range(DEVICES)])
    reference = np.zeros(D) if options["rule"] == "flame" else root_update(w0)
    secure = SecureCosineFilter(T, N, FixedPointCodec(frac_bits=16), rule=options["rule"], rescale=options.get("rescale", False))
    try:
        expected, direct = secure.verify_and_aggregate(updates, reference)
    finally:
        secure.close()
    assert result.rejected == direct.rejected and result.accepted == direct.accepted
    np.testing.assert_array_equal(from_arrays(arrays), w0 + expected)
    if options.get("rescale"):  # the option reached the edge tier: clipping alone gives another model
        clipping = SecureCosineFilter(T, N, FixedPointCodec(frac_bits=16))
        try:
            assert not np.allclose(clipping.verify_and_aggregate(updates, reference)[0], expected)
        finally:
            clipping.close()


@pytest.mark.parametrize("options, key", [
    ({}, "reference_fn"),  # cosine without a reference
    ({"rule": "flame", "reference_fn": root_update}, "reference_fn"),
    ({"rule": "median"}, "rule"),
    ({"rule": "flame", "t": 3}, "n"),  # n = 3 < 2t - 1
    ({"rule": "flame", "flame_noise": -0.1}, "flame_noise"),
    ({"reference_fn": root_update, "flame_noise": 0.1}, "flame_noise"),
    ({"rule": "flame", "rescale": True}, "rescale"),
    ({"rule": "flame", "signed_uploads": "yes"}, "signed_uploads"),
])
def test_bad_rule_settings_are_config_errors_before_any_connection(options, key):
    with pytest.raises(ConfigError) as caught:
        PpbflWorkflow(**{"t": T, "n": N, "edges": EDGES, "creds": "unused", **options})
    assert caught.value.key == key
