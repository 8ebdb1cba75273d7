"""The client side: a Flower mod that turns a ClientApp's train reply into a ppbfl device's round.

Add it to a stock ``ClientApp`` (the place of Flower's ``secaggplus_mod``)::

    app = ClientApp(mods=[PpbflMod()])

For a train message from :class:`~ppbfl.integrations.flower.PpbflWorkflow` the mod lets the
ClientApp train, takes ``update = trained - global`` (the reply's model minus the message's), and
runs :meth:`ppbfl.protocol.device.Device.submit` with it: the device checks the announcement
against its own ``(t, n)``, shares the update, commits, and uploads each edge node its share over
its own mutual-TLS channel, signed with the device's TLS key (one ECDSA P-256 signature of the
leaves' root per round, so an edge node's claim about the upload can be checked by anyone). The reply to the SuperLink keeps the ClientApp's metrics and carries
the device's receipt; its model arrays are cleared, so the update never reaches Flower. The
workflow's second message of the round carries the :class:`~ppbfl.protocol.announcement.ValidityChallenge`:
the mod runs :meth:`~ppbfl.protocol.device.Device.prove` (the range proof on shares,
docs/validity.md) without calling the ClientApp, from the encoded update it kept in the node's
own ``context.state`` (deleted once proved). Other messages (evaluate, query) pass through untouched.

Configuration, from the mod's arguments, else the node config (``flower-supernode --node-config``),
else the run config (``[tool.flwr.app.config]``):

* ``ppbfl-creds``: the folder with ``ca.crt`` and this device's ``device-<i>.crt`` / ``.key``
  (``ppbfl creds``);
* ``ppbfl-device``: the device index ``i`` (default: the simulation engine's ``partition-id``);
* ``ppbfl-t``, ``ppbfl-n``: the consortium's threshold and number of edge nodes (the device's own
  configuration: an announcement that disagrees is refused);
* ``ppbfl-timeout``: seconds per upload (default 30);
* ``ppbfl-max-pow-bits``: the highest PoW difficulty the device stamps at when the round is on a
  chain (default 24; a higher one in the announcement is refused before any hashing);
* ``ppbfl-chain``, ``ppbfl-contract``: a JSON-RPC URL (or several, comma-separated, which must
  all give every answer identically: :class:`~ppbfl.chain.quorum_provider.QuorumProvider`) and the
  consortium's ``PPBFLRounds`` address, from the mod's arguments or the node config only (never the run config, which the
  server side sets): the device then pins every edge node it uploads to to the certificate the
  contract's party registry holds as that node's active one (asked again every 5 s), so an edge
  node whose certificate was revoked, or another CA-issued certificate at its address, is refused
  (:class:`~ppbfl.protocol.chain_registry.ChainRegistry`). Without them the device checks the CA
  and the party id only.

When the workflow records rounds on a chain, the announcement carries the chain terms
(:class:`~ppbfl.protocol.relayed_commitment.ChainTerms`): the device stamps its commitment and
signs its own ``commitShares`` transaction with its chain key ``device-<i>.chain.key`` (from
``ppbfl creds``, in ``ppbfl-creds``), and the reply carries the signed bytes for the workflow to
send unchanged.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.integrations.flower.records import (
    PPBFL_RECORD,
    FlowerRecordError,
    ModelLayout,
    announcement_from_record,
    chain_terms_from_record,
    challenge_from_record,
    is_challenge,
    proof_receipt_record,
    receipt_record,
)
from ppbfl.protocol.announcement import RoundAnnouncement, ValidityChallenge
from ppbfl.protocol.creds import chain_key_path, load_chain_key
from ppbfl.protocol.device import Device, ProofDelivery, Submission
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.parties import device_party, edge_party
from ppbfl.protocol.relayed_commitment import DEFAULT_MAX_POW_BITS, ChainTerms, RelayedCommitment
from ppbfl.protocol.tls import PartyCredentials, load_credentials, read_ca_cert

if TYPE_CHECKING:
    from ppbfl.protocol.chain_registry import ChainRegistry

__all__ = ["PpbflMod"]


@functools.lru_cache(maxsize=8)
def _chain_pins(url: str, contract: str) -> ChainRegistry:
    """The party registry of ``contract`` at ``url`` that this process's device transports pin edge
    nodes to (one per chain and contract; a failed connection is not cached)."""
    from ppbfl.protocol.chain_registry import ChainRegistry

    return ChainRegistry.connect(url, contract)


class _DeviceChannels:
    """A device's credentials and gRPC transport to the edge nodes, kept open across the Flower
    messages this process handles (a simulation worker handles the messages of many devices, every
    round: one TLS handshake per device and edge node instead of one per message). Keyed by party,
    credentials folder and the announced addresses (another tier gets its own transport); at most
    ``size`` kept (each holds one channel per edge node), the least recently used closed first."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple, tuple[PartyCredentials, GrpcTransport]] = OrderedDict()

    def get(
        self, party: str, creds: Path, peers: dict[str, str], chain: tuple[str, str] | None = None,
    ) -> tuple[PartyCredentials, GrpcTransport]:
        """``party``'s credentials from ``creds`` and its transport to ``peers`` (party -> ``host:port``),
        pinning them to the party registry of ``chain`` = (JSON-RPC URL, contract address) when given.

        Raises:
            CredentialsError: the credentials are missing or unreadable; ConfigError, ChainError:
                ``chain`` names no reachable contract.
        """
        key = (party, str(creds.resolve()), tuple(sorted(peers.items())), chain)
        with self._lock:
            if key in self._open:
                self._open.move_to_end(key)
                return self._open[key]
            credentials = load_credentials(creds, party)
            pins = None if chain is None else _chain_pins(*chain)
            self._open[key] = credentials, GrpcTransport(party, credentials, read_ca_cert(creds / "ca.crt"), peers, pins=pins)
            while len(self._open) > self.size:
                _, (_, oldest) = self._open.popitem(last=False)
                oldest.close()
            return self._open[key]


_CHANNELS = _DeviceChannels()
"""This process's device transports (:class:`_DeviceChannels`)."""

_SERVER = "server"
_PENDING = "ppbfl-pending"  # context.state: the encoded update submitted and not yet proved
_PENDING_ROUND = "ppbfl-pending-round"


class PpbflMod:
    """Flower client mod (``ClientApp(mods=[PpbflMod()])``); arguments override the node/run config.

    Args:
        creds: folder with ``ca.crt`` and the device's credentials (key ``ppbfl-creds``).
        device: the device index (key ``ppbfl-device``; default the node's ``partition-id``).
        t, n: the consortium's threshold and edge-node count (keys ``ppbfl-t``, ``ppbfl-n``).
        frac_bits: fixed-point fractional bits (key ``ppbfl-frac-bits``, default 16).
        timeout: seconds per upload (key ``ppbfl-timeout``, default 30).
        chain, contract: JSON-RPC URL and ``PPBFLRounds`` address whose party registry the edge
            nodes are pinned to (keys ``ppbfl-chain``, ``ppbfl-contract``; node config only).
    """

    def __init__(
        self, *, creds: str | Path | None = None, device: int | None = None, t: int | None = None, n: int | None = None,
        frac_bits: int | None = None, timeout: float | None = None, chain: str | None = None, contract: str | None = None,
    ) -> None:
        self._given: dict[str, object] = {
            "ppbfl-creds": None if creds is None else str(creds), "ppbfl-device": device, "ppbfl-t": t, "ppbfl-n": n,
            "ppbfl-frac-bits": frac_bits, "ppbfl-timeout": timeout, "ppbfl-chain": chain, "ppbfl-contract": contract,
        }

    def _setting(self, key: str, context: Context, default: object = None) -> object:
        for source in (self._given, context.node_config, context.run_config):
            if source.get(key) is not None:
                return source[key]
        if key == "ppbfl-device" and "partition-id" in context.node_config:
            return context.node_config["partition-id"]
        if default is None:
            raise ConfigError(key, "not set: pass it to PpbflMod, the node config or the run config")
        return default

    def _chain(self, context: Context) -> tuple[str, str] | None:
        """``(ppbfl-chain, ppbfl-contract)`` from the mod's arguments or the node config (the device
        operator's), never the run config (the server side's); None when neither is set.

        Raises:
            ConfigError: only one of them is set, or one is not a string.
        """
        found = {}
        for key in ("ppbfl-chain", "ppbfl-contract"):
            value = self._given.get(key)
            value = context.node_config.get(key) if value is None else value
            if value is not None and not isinstance(value, str):
                raise ConfigError(key, f"expected a string, got {value!r:.60}")
            found[key] = value
        if found["ppbfl-chain"] is None and found["ppbfl-contract"] is None:
            return None
        if found["ppbfl-chain"] is None or found["ppbfl-contract"] is None:
            missing = "ppbfl-chain" if found["ppbfl-chain"] is None else "ppbfl-contract"
            raise ConfigError(missing, "ppbfl-chain and ppbfl-contract go together (the mod's arguments or the node config)")
        return found["ppbfl-chain"], found["ppbfl-contract"]

    def _int(self, key: str, context: Context, default: int | None = None) -> int:
        value = self._setting(key, context, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(key, f"expected an int >= 0, got {value!r}")
        return value

    def __call__(self, msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        """Handle ``msg``: a train message runs the ClientApp and then the ppbfl device round.

        Raises:
            FlowerRecordError: a train message without a well-formed ``"ppbfl"`` record (the mod
                never lets the ClientApp's plaintext update go back through Flower), or a reply
                whose model does not have the global model's keys and shapes.
            ConfigError: a setting is missing or invalid (names the key).
            AnnouncementError: the announcement disagrees with the device's ``(t, n)``.
            UpdateRangeError: the update exceeds the fixed-point bound.
        """
        if msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, context)
        record = msg.content.config_records.get(PPBFL_RECORD)
        if record is None:
            raise FlowerRecordError(_SERVER, PPBFL_RECORD, "a train message without ppbfl's announcement (is the server running PpbflWorkflow?)")
        if is_challenge(record):
            challenge, addresses = challenge_from_record(record)
            delivery = self._prove(context, challenge, addresses)
            return Message(RecordDict({PPBFL_RECORD: proof_receipt_record(delivery)}), reply_to=msg)
        announcement, addresses = announcement_from_record(record)
        terms = chain_terms_from_record(record)
        if len(msg.content.array_records) != 1:
            raise FlowerRecordError(_SERVER, "arrays", f"expected one ArrayRecord (the global model), got {len(msg.content.array_records)}")
        (global_arrays,) = msg.content.array_records.values()
        layout = ModelLayout.of(global_arrays)
        if layout.d != announcement.d:
            raise FlowerRecordError(_SERVER, "d", f"{announcement.d}, but the global model has {layout.d} entries")
        start = layout.flatten(global_arrays, _SERVER)

        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        if len(reply.content.array_records) != 1:
            raise FlowerRecordError("clientapp", "arrays", f"expected one ArrayRecord (the trained model), got {len(reply.content.array_records)}")
        (trained,) = reply.content.array_records.values()
        update = layout.flatten(trained, "clientapp") - start

        submission, commit_tx = self._submit(context, announcement, addresses, update, terms)
        content = RecordDict({**reply.content.metric_records, **{k: v for k, v in reply.content.config_records.items() if k != PPBFL_RECORD}})
        content.config_records[PPBFL_RECORD] = receipt_record(submission, commit_tx)
        return Message(content, reply_to=msg)

    def _device(self, context: Context, addresses: dict[int, str], terms: ChainTerms | None = None) -> Device:
        """The device of this node (every setting checked before its credentials are read), with a
        transport to the edge nodes at ``addresses`` (:data:`_CHANNELS`' for this process: left open)
        and, with chain ``terms``, a :class:`RelayedCommitment` board signing with its chain key."""
        index = self._int("ppbfl-device", context)
        t, n = self._int("ppbfl-t", context), self._int("ppbfl-n", context)
        codec = FixedPointCodec(frac_bits=self._int("ppbfl-frac-bits", context, 16))
        timeout = float(self._setting("ppbfl-timeout", context, 30.0))  # type: ignore[arg-type]
        max_pow_bits = self._int("ppbfl-max-pow-bits", context, DEFAULT_MAX_POW_BITS)
        creds = Path(str(self._setting("ppbfl-creds", context)))
        chain = self._chain(context)
        party = device_party(index)
        peers = {edge_party(j): address for j, address in addresses.items()}
        board = None if terms is None else RelayedCommitment(load_chain_key(chain_key_path(creds, party)), index, terms, max_pow_bits=max_pow_bits)
        credentials, transport = _CHANNELS.get(party, creds, peers, chain)
        return Device(index, t, n, codec, transport=transport, timeout=timeout, signing_key=credentials.key, board=board)

    def _submit(
        self, context: Context, announcement: RoundAnnouncement, addresses: dict[int, str], update: np.ndarray, terms: ChainTerms | None,
    ) -> tuple[Submission, bytes | None]:
        device = self._device(context, addresses, terms)
        submission = device.submit(announcement, update)
        encoded = device.pending(announcement.round)
        assert encoded is not None  # submit keeps it until prove
        context.state[_PENDING] = ArrayRecord(OrderedDict(encoded=Array(np.ascontiguousarray(encoded))))
        context.state[_PENDING_ROUND] = ConfigRecord({"round": announcement.round})
        return submission, None if not isinstance(device.board, RelayedCommitment) else device.board.raw

    def _prove(self, context: Context, challenge: ValidityChallenge, addresses: dict[int, str]) -> ProofDelivery:
        pending = context.state.get(_PENDING)
        pending_round = context.state.get(_PENDING_ROUND)
        if not isinstance(pending, ArrayRecord) or not isinstance(pending_round, ConfigRecord) or pending_round.get("round") != challenge.round:
            raise FlowerRecordError(_SERVER, "round", f"a validity challenge for round {challenge.round}, which this device has not submitted to")
        device = self._device(context, addresses)
        device.resume(challenge.round, pending["encoded"].numpy())
        delivery = device.prove(challenge)
        del context.state[_PENDING]
        del context.state[_PENDING_ROUND]
        return delivery
