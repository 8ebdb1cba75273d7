"""PpbflWorkflow's decision rules, in process: a fake Flower grid drives the real workflow and the
real PpbflMod, their transports swapped for an in-process deployment's (no Flower simulation, no
processes). Each round must equal the same round run directly on the protocol (exact field results)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from ppbfl.chain.errors import ChainError
from ppbfl.chain.pow import bind_commitment
from ppbfl.chain.rounds import Phase
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import SecureCosineFilter
from ppbfl.integrations.flower import PpbflMod, PpbflWorkflow
from ppbfl.integrations.flower import mod as mod_module
from ppbfl.integrations.flower import workflow as workflow_module
from ppbfl.integrations.flower.records import chain_terms_from_record
from ppbfl.protocol.creds import chain_key_path, load_chain_key, party_ids, read_chain_accounts, write_credentials
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.round_errors import AnnouncementError, NotEnoughEdgeNodesError
from tests.flower_apps import from_arrays, to_arrays, train_reply
from tests.flower_apps import reference as root_update

T, N, D, DEVICES = 2, 3, 31, 5
MALICIOUS = frozenset({4})
EDGES = {j: f"in-process:{j}" for j in range(1, N + 1)}


class _KeepOpen:
    """A device's in-process transport, which the mod's channel cache may close (when it evicts it)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        """Keep the deployment's transport for the device's next message."""


class FakeGrid:
    """Nodes ``1..DEVICES`` (device ``node - 1``), each running the stock ClientApp behind ``PpbflMod``."""

    def __init__(self, creds: str | Path = "unused") -> None:
        self.mod = PpbflMod(t=T, n=N, creds=creds)
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
def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The workflow's and the mod's gRPC transports replaced by one in-process deployment's; the
    identity Flower sets in its processes (Message() needs it). ``deployment.creds_dir``: a
    ``ppbfl creds`` folder whose edge chain keys the in-process nodes sign their votes with."""
    for name in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)
    creds = tmp_path / "creds"
    write_credentials(creds, party_ids(edges=N, devices=DEVICES, coordinator=True))
    chain_keys = {j: load_chain_key(chain_key_path(creds, f"edge-{j}")) for j in range(1, N + 1)}
    deployment = InProcessDeployment(T, N, D, signed_uploads=True, chain_keys=chain_keys)  # the nodes refuse unsigned uploads
    deployment.creds_dir = creds  # type: ignore[attr-defined]
    monkeypatch.setattr(mod_module, "_CHANNELS", mod_module._DeviceChannels())  # this deployment's transports only
    monkeypatch.setattr(workflow_module, "GrpcTransport", lambda *args: deployment.coordinator)
    monkeypatch.setattr(mod_module, "GrpcTransport", lambda party, *args, **kwargs: _KeepOpen(deployment.device_transport(int(party.split("-")[1]))))
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


def test_a_round_on_chain_through_the_workflow_is_committed_by_the_devices_own_keys(in_process):
    # the workflow deploys the contract and relays each device's own signed commitment transaction;
    # the in-process edge nodes sign their votes with the keys of the creds folder
    creds = in_process.creds_dir
    accounts = read_chain_accounts(creds)
    grid = FakeGrid(creds)
    workflow = PpbflWorkflow(t=T, n=N, edges=EDGES, creds=creds, reference_fn=root_update, chain="embedded",
                             min_available_nodes=DEVICES, min_train_nodes=DEVICES)
    try:
        for server_round in (1, 2):
            messages = list(workflow.configure_train(server_round, to_arrays(np.zeros(D)), ConfigRecord(), grid))  # type: ignore[arg-type]
            terms = chain_terms_from_record(messages[0].content.config_records["ppbfl"])
            assert terms is not None and terms.pow_bits == dict.fromkeys(range(DEVICES), 8)
            replies = [grid.deliver(message) for message in messages]
            _, metrics = workflow.aggregate_train(server_round, replies)
            assert metrics is not None and metrics["chain-refused"] == 0 and metrics["gas"] > 0
            ledger = workflow.ledger
            assert ledger is not None and ledger.contract.round_state(server_round).phase is Phase.CLOSED
            receipts = {reply.content.config_records["ppbfl"]["device"]: reply.content.config_records["ppbfl"] for reply in replies}
            assert sorted(receipts) == list(range(DEVICES))
            for i, receipt in receipts.items():  # each commitment was sent from the device's own account, signed by its key
                assert Account.recover_transaction(receipt["commit_tx"]) == accounts[f"device-{i}"] == ledger.device_accounts[i]
                assert ledger.contract.commitment(server_round, i) == bind_commitment(bytes(receipt["commitment"]), server_round, i)
            assert workflow.results[server_round].rejected[4] == "negative cosine"
        # a replayed transaction (the relay sends round 2's bytes again) is refused by the chain
        with pytest.raises(ChainError):
            ledger.contract.relay_commit(receipts[0]["commit_tx"], accounts["device-0"])
    finally:
        workflow.close()


def test_a_relay_demanding_more_pow_than_the_device_allows_is_refused_before_hashing(in_process):
    grid = FakeGrid(in_process.creds_dir)
    workflow = PpbflWorkflow(t=T, n=N, edges=EDGES, creds=in_process.creds_dir, reference_fn=root_update, chain="embedded",
                             min_available_nodes=DEVICES, min_train_nodes=DEVICES)
    try:
        (message, *_) = list(workflow.configure_train(1, to_arrays(np.zeros(D)), ConfigRecord(), grid))  # type: ignore[arg-type]
        message.content.config_records["ppbfl"]["chain_pow_bits"] = [40] * DEVICES
        with pytest.raises(AnnouncementError, match="chain_pow_bits"):
            grid.deliver(message)
    finally:
        workflow.close()


def test_nodes_with_their_own_reference_and_a_request_quorum_serve_the_workflow_and_refuse_a_chosen_reference(in_process):
    # every node computes the reference from the global model the workflow sends (rule cosine) and
    # answers only a request all three endorsed (q = 3 > (n + t - 1) / 2 = 2): two honest rounds
    # equal the protocol's; then a workflow that chooses r = e_0 gets no share from any node
    for node in in_process.nodes.values():
        node.reference_source = lambda round, model: root_update(model.astype(np.float64))
        node.request_quorum = N
    grid = FakeGrid()
    workflow = PpbflWorkflow(t=T, n=N, edges=EDGES, creds="unused", reference_fn=root_update, request_endorsements=True,
                             min_available_nodes=DEVICES, min_train_nodes=DEVICES)
    try:
        w = np.zeros(D)
        for server_round in (1, 2):
            messages = list(workflow.configure_train(server_round, to_arrays(w), ConfigRecord(), grid))  # type: ignore[arg-type]
            arrays, metrics = workflow.aggregate_train(server_round, [grid.deliver(message) for message in messages])
            assert metrics is not None and metrics["missing"] == 0
            result = workflow.results[server_round]
            assert result.rejected[4] == "negative cosine" and sorted(result.online) == [1, 2, 3] and not result.dropped
            w = from_arrays(arrays)
        assert np.any(w != 0)
        workflow.reference_fn = lambda start: np.eye(D)[0]  # the relay's choice: <g_i, e_0> = g_i[0]
        messages = list(workflow.configure_train(3, to_arrays(w), ConfigRecord(), grid))  # type: ignore[arg-type]
        with pytest.raises(NotEnoughEdgeNodesError) as refused:
            workflow.aggregate_train(3, [grid.deliver(message) for message in messages])
        assert "0 edge nodes online" in str(refused.value)
        assert workflow.coordinator is not None
        for j in range(1, N + 1):  # each node's refusal names the relay and the field
            assert "peer coordinator" in workflow.coordinator.dropped[j] and "field 'reference': entry 0" in workflow.coordinator.dropped[j]
        for node in in_process.nodes.values():
            assert node.rounds[3].verified is None  # refused before any share
    finally:
        workflow.close()


@pytest.mark.parametrize("options, key", [
    ({}, "reference_fn"),  # cosine without a reference
    ({"rule": "flame", "reference_fn": root_update}, "reference_fn"),
    ({"rule": "median"}, "rule"),
    ({"rule": "flame", "t": 3}, "n"),  # n = 3 < 2t - 1
    ({"rule": "flame", "flame_noise": -0.1}, "flame_noise"),
    ({"reference_fn": root_update, "flame_noise": 0.1}, "flame_noise"),
    ({"rule": "flame", "rescale": True}, "rescale"),
    ({"rule": "flame", "signed_uploads": "yes"}, "signed_uploads"),
    ({"rule": "flame", "chain": "ropsten"}, "chain"),
    ({"rule": "flame", "chain": "embedded", "pow_bits": 40}, "pow_bits"),
    ({"rule": "flame", "request_endorsements": 1}, "request_endorsements"),
])
def test_bad_rule_settings_are_config_errors_before_any_connection(options, key):
    with pytest.raises(ConfigError) as caught:
        PpbflWorkflow(**{"t": T, "n": N, "edges": EDGES, "creds": "unused", **options})
    assert caught.value.key == key
