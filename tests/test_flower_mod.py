"""PpbflMod against a malicious or broken server and ClientApp, without a Flower engine: what the
mod refuses before the device shares anything, and that a train reply never carries the model."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from ppbfl.errors import ConfigError
from ppbfl.integrations.flower import FlowerRecordError, ModelLayout, PpbflMod
from ppbfl.integrations.flower.records import announcement_from_record, announcement_record, chain_terms_from_record
from ppbfl.protocol.announcement import RoundAnnouncement
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.relayed_commitment import ChainTerms
from ppbfl.protocol.round_errors import AnnouncementError

D = 4
ANNOUNCEMENT = RoundAnnouncement(1, 2, 3, D, 16, (1, 2, 3), b"\x11" * 32)
ADDRESSES = {1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}


@pytest.fixture(autouse=True)
def task_identity():  # type: ignore[no-untyped-def]
    """The identity Flower sets in a ClientApp process (Message() needs it)."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def model(value: float) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.full(3, value)), "b": Array(np.full(1, value))})


def train_message(record: ConfigRecord | None, arrays: ArrayRecord | None = None) -> Message:
    content = RecordDict({"arrays": model(0.0) if arrays is None else arrays, "config": ConfigRecord({"lr": 0.1})})
    if record is not None:
        content.config_records["ppbfl"] = record
    return Message(content, dst_node_id=1, message_type=MessageType.TRAIN)


def context(**node: object) -> Context:
    return Context(run_id=1, node_id=1, node_config={"ppbfl-device": 0, **node}, state=RecordDict(), run_config={})  # type: ignore[dict-item]


class ClientApp:
    """A stock train function: returns ``reply_arrays``; counts its calls."""

    def __init__(self, reply_arrays: ArrayRecord) -> None:
        self.calls = 0
        self.reply_arrays = reply_arrays

    def __call__(self, msg: Message, ctx: Context) -> Message:
        self.calls += 1
        return Message(RecordDict({"arrays": self.reply_arrays, "metrics": MetricRecord({"loss": 0.5})}), reply_to=msg)


class RecordingMod(PpbflMod):
    """PpbflMod whose device round is recorded instead of run (no edge nodes here)."""

    def _submit(self, ctx, announcement, addresses, update, terms):  # type: ignore[no-untyped-def]
        self.submitted = (announcement, addresses, update)
        from ppbfl.protocol.device import Submission

        return Submission(0, announcement.round, b"\x22" * 32, (1, 2, 3), {}), None


def test_announcement_record_round_trips() -> None:
    assert announcement_from_record(announcement_record(ANNOUNCEMENT, ADDRESSES)) == (ANNOUNCEMENT, ADDRESSES)


@pytest.mark.parametrize(("field", "value"), [("t", "2"), ("edge_nodes", ["1", "2"]), ("model_hash", b"short"), ("edge_addresses", ["a"])])
def test_malformed_announcement_names_the_field(field: str, value: object) -> None:
    record = announcement_record(ANNOUNCEMENT, ADDRESSES)
    record[field] = value  # type: ignore[assignment]
    with pytest.raises(FlowerRecordError, match=field):
        announcement_from_record(record)


TERMS = ChainTerms("0x" + "ab" * 20, 31337, {0: 4, 1: 0}, {0: 8, 1: 11})


def test_chain_terms_round_trip_and_are_absent_without_a_chain() -> None:
    assert chain_terms_from_record(announcement_record(ANNOUNCEMENT, ADDRESSES, TERMS)) == TERMS
    assert chain_terms_from_record(announcement_record(ANNOUNCEMENT, ADDRESSES)) is None


@pytest.mark.parametrize(("field", "value"), [
    ("chain_contract", "0x1234"), ("chain_contract", "0x" + "zz" * 20), ("chain_id", 0), ("chain_id", "1"),
    ("chain_nonces", [1]), ("chain_pow_bits", [8, -1]), ("chain_devices", [0, 0]), ("chain_devices", [True, False]),
])
def test_malformed_chain_terms_name_the_field(field: str, value: object) -> None:
    record = announcement_record(ANNOUNCEMENT, ADDRESSES, TERMS)
    record[field] = value  # type: ignore[assignment]
    with pytest.raises(FlowerRecordError, match=field if field != "chain_nonces" else "chain_devices"):
        chain_terms_from_record(record)


def test_train_message_without_announcement_is_refused_before_training() -> None:
    """A server that drops ppbfl's record to harvest plaintext updates gets nothing: the ClientApp never runs."""
    app = ClientApp(model(1.0))
    with pytest.raises(FlowerRecordError, match="ppbfl"):
        PpbflMod(creds="unused", t=2, n=3)(train_message(None), context(), app)
    assert app.calls == 0


def test_announcement_with_another_threshold_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A server announcing t = 1 (one edge node could then read the update) is refused by the device
    before it shares or uploads anything (the edge addresses lead nowhere: nothing is sent)."""
    write_credentials(tmp_path, party_ids(devices=1))
    record = announcement_record(RoundAnnouncement(1, 1, 3, D, 16, (1, 2, 3), b"\x11" * 32), ADDRESSES)
    app = ClientApp(model(1.0))
    with pytest.raises(AnnouncementError, match="'t'"):
        PpbflMod(creds=tmp_path, t=2, n=3)(train_message(record), context(), app)


def test_reply_carries_receipt_and_metrics_but_no_model() -> None:
    mod = RecordingMod(creds="unused", t=2, n=3)
    reply = mod(train_message(announcement_record(ANNOUNCEMENT, ADDRESSES)), context(), ClientApp(model(0.25)))
    assert len(reply.content.array_records) == 0
    assert reply.content.metric_records["metrics"]["loss"] == 0.5
    assert reply.content.config_records["ppbfl"]["commitment"] == b"\x22" * 32
    _, addresses, update = mod.submitted
    assert addresses == ADDRESSES
    np.testing.assert_array_equal(update, np.full(D, 0.25))  # trained - global, in the record's key order


def test_reply_model_with_other_shapes_is_refused() -> None:
    bad = ArrayRecord({"w": Array(np.zeros(2)), "b": Array(np.zeros(1))})
    with pytest.raises(FlowerRecordError, match="arrays\\['w'\\]"):
        RecordingMod(creds="unused", t=2, n=3)(train_message(announcement_record(ANNOUNCEMENT, ADDRESSES)), context(), ClientApp(bad))


def test_missing_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ppbfl-t"):
        PpbflMod(creds="unused", n=3)(train_message(announcement_record(ANNOUNCEMENT, ADDRESSES)), context(), ClientApp(model(1.0)))


def test_evaluate_messages_pass_through() -> None:
    msg = Message(RecordDict({"arrays": model(0.0)}), dst_node_id=1, message_type=MessageType.EVALUATE)
    app = ClientApp(model(0.0))
    PpbflMod()(msg, context(), app)
    assert app.calls == 1


def test_layout_round_trip_keeps_keys_shapes_dtypes() -> None:
    arrays = ArrayRecord({"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3)), "b": Array(np.ones(1, dtype=np.float64))})
    layout = ModelLayout.of(arrays)
    back = layout.unflatten(layout.flatten(arrays, "x"))
    assert list(back) == ["w", "b"] and back["w"].numpy().dtype == np.float32
    np.testing.assert_array_equal(back["w"].numpy(), arrays["w"].numpy())


def test_device_channels_are_reused_per_tier_and_the_oldest_is_closed(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A worker process keeps one transport per (device, credentials, tier): the next message of
    that device reuses it (no new TLS handshakes); another tier's addresses get their own."""
    from ppbfl.integrations.flower import mod as mod_module

    made: list[FakeTransport] = []

    class FakeTransport:
        def __init__(self, party: str, credentials: object, ca: object, peers: dict[str, str], pins: object = None) -> None:
            self.party, self.peers, self.closed = party, peers, False
            made.append(self)

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(mod_module, "GrpcTransport", FakeTransport)
    monkeypatch.setattr(mod_module, "load_credentials", lambda creds, party: party)
    monkeypatch.setattr(mod_module, "read_ca_cert", lambda path: b"")
    channels = mod_module._DeviceChannels(size=2)
    tier = {"edge-1": "127.0.0.1:1"}
    first = channels.get("device-0", tmp_path, tier)
    assert channels.get("device-0", tmp_path, dict(tier)) is first and len(made) == 1
    other_tier = channels.get("device-0", tmp_path, {"edge-1": "127.0.0.1:2"})
    assert other_tier is not first and not made[0].closed
    channels.get("device-1", tmp_path, tier)  # a third: the least recently used (device-0's first) is closed
    assert made[0].closed and not made[1].closed and len(made) == 3
