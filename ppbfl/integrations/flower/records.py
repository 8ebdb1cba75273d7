"""What Flower carries for ppbfl: the round announcement as a ``ConfigRecord``, the device's
receipt as a ``ConfigRecord``, and a model ``ArrayRecord`` as one float64 vector.

A train message from the :class:`~ppbfl.integrations.flower.PpbflWorkflow` holds the stock
``"arrays"`` (global model) and ``"config"`` records plus ``"ppbfl"``: the
:class:`~ppbfl.protocol.announcement.RoundAnnouncement` and the addresses of the announced edge
nodes, and, when the workflow records rounds on a chain, the :class:`ChainTerms` every device
needs to sign its own commitment transaction. The reply holds the client's metrics and
``"ppbfl"``: the device's receipt (its index, its commitment root, the edge nodes that stored its
upload, and with a chain its signed ``commitShares`` transaction, which the workflow sends
unchanged). It never holds the update: the mod clears every ``ArrayRecord`` of the reply.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord

from ppbfl.errors import PPBFLError
from ppbfl.protocol.announcement import RoundAnnouncement, ValidityChallenge
from ppbfl.protocol.device import ProofDelivery, Submission
from ppbfl.protocol.relayed_commitment import ChainTerms

__all__ = [
    "PPBFL_RECORD",
    "FlowerRecordError",
    "ModelLayout",
    "PROVE_STAGE",
    "announcement_from_record",
    "announcement_record",
    "chain_terms_from_record",
    "challenge_from_record",
    "challenge_record",
    "is_challenge",
    "proof_receipt_record",
    "receipt_record",
]

PPBFL_RECORD = "ppbfl"
"""Key of ppbfl's ``ConfigRecord`` in a train message and in its reply."""

_ANNOUNCEMENT_INTS = ("round", "t", "n", "d", "frac_bits")
_CHALLENGE_INTS = ("round", "d", "k", "bits")
PROVE_STAGE = "prove"
"""Value of the ``"stage"`` key of a ``"ppbfl"`` record that asks the device for its validity proof."""


class FlowerRecordError(PPBFLError, ValueError):
    """A Flower message's ppbfl content is missing or malformed: names the ``party`` (a Flower node
    id or ``"server"``), the record ``field`` and what was wrong."""

    def __init__(self, party: str, field: str, reason: str) -> None:
        self.party, self.field, self.reason = party, field, reason
        super().__init__(f"Flower message from {party}: field {field!r}: {reason}")


def announcement_record(announcement: RoundAnnouncement, addresses: dict[int, str], chain: ChainTerms | None = None) -> ConfigRecord:
    """The ``"ppbfl"`` record of round ``announcement.round``'s train messages; ``addresses``:
    edge node index -> ``"host:port"`` of every announced edge node; ``chain``: the round's chain
    terms (None: the round is not recorded on a chain)."""
    record = ConfigRecord({name: int(getattr(announcement, name)) for name in _ANNOUNCEMENT_INTS})
    record["edge_nodes"] = [int(j) for j in announcement.edge_nodes]
    record["edge_addresses"] = [addresses[j] for j in announcement.edge_nodes]
    record["model_hash"] = bytes(announcement.model_hash)
    if chain is not None:
        devices = sorted(chain.nonces)
        record["chain_contract"] = chain.contract
        record["chain_id"] = int(chain.chain_id)
        record["chain_devices"] = devices
        record["chain_nonces"] = [int(chain.nonces[i]) for i in devices]
        record["chain_pow_bits"] = [int(chain.pow_bits[i]) for i in devices]
    return record


def chain_terms_from_record(record: ConfigRecord, party: str = "server") -> ChainTerms | None:
    """The :class:`ChainTerms` of a train record, or None when it has none (no chain).

    Raises:
        FlowerRecordError: a chain field is missing or malformed (names it): the contract not a
            0x address of 20 bytes, the chain id not >= 1, the per-device lists not ints >= 0 of
            one length, a device listed twice.
    """
    if "chain_contract" not in record:
        return None
    contract = record.get("chain_contract")
    if not isinstance(contract, str) or len(contract) != 42 or not contract.startswith("0x") or not _is_hex(contract[2:]):
        raise FlowerRecordError(party, "chain_contract", "expected a 0x address of 20 bytes")
    chain_id = _ints(record, ("chain_id",), party)["chain_id"]
    if chain_id < 1:
        raise FlowerRecordError(party, "chain_id", f"{chain_id} is not >= 1")
    lists = {}
    for name in ("chain_devices", "chain_nonces", "chain_pow_bits"):
        values = record.get(name)
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise FlowerRecordError(party, name, "expected a list of ints >= 0")
        lists[name] = [int(v) for v in values]
    devices = lists["chain_devices"]
    if len(set(devices)) != len(devices) or not len(devices) == len(lists["chain_nonces"]) == len(lists["chain_pow_bits"]):
        raise FlowerRecordError(party, "chain_devices", "expected distinct devices, one nonce and one PoW difficulty each")
    return ChainTerms(contract, chain_id, dict(zip(devices, lists["chain_nonces"])), dict(zip(devices, lists["chain_pow_bits"])))


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _ints(record: ConfigRecord, names: tuple[str, ...], party: str) -> dict[str, int]:
    """The int fields ``names`` of ``record`` (``FlowerRecordError`` naming a missing or non-int one)."""
    values: dict[str, int] = {}
    for name in names:
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FlowerRecordError(party, name, f"expected an int, got {type(value).__name__}")
        values[name] = value
    return values


def _edge_addresses(record: ConfigRecord, party: str) -> tuple[tuple[int, ...], dict[int, str]]:
    """``edge_nodes`` of ``record`` as given (repeats kept, for the device to refuse) and edge index -> address."""
    nodes, addresses = record.get("edge_nodes"), record.get("edge_addresses")
    if not isinstance(nodes, list) or not all(isinstance(j, int) and not isinstance(j, bool) for j in nodes):
        raise FlowerRecordError(party, "edge_nodes", "expected a list of ints")
    if not isinstance(addresses, list) or len(addresses) != len(nodes) or not all(isinstance(a, str) for a in addresses):
        raise FlowerRecordError(party, "edge_addresses", f"expected {len(nodes)} strings, one per edge node")
    indices = tuple(j for j in nodes if isinstance(j, int))  # all of them (checked above), typed
    return indices, {j: str(a) for j, a in zip(indices, addresses)}


def announcement_from_record(record: ConfigRecord, party: str = "server") -> tuple[RoundAnnouncement, dict[int, str]]:
    """Parse a ``"ppbfl"`` train record into the announcement and edge index -> address.

    Raises:
        FlowerRecordError: a field is missing or has the wrong type (naming it). Whether the values
            agree with the device's own configuration is :meth:`Device.check_announcement`'s job.
    """
    values = _ints(record, _ANNOUNCEMENT_INTS, party)
    nodes, addresses = _edge_addresses(record, party)
    model_hash = record.get("model_hash")
    if not isinstance(model_hash, bytes) or len(model_hash) != 32:
        raise FlowerRecordError(party, "model_hash", "expected 32 bytes")
    announcement = RoundAnnouncement(
        values["round"], values["t"], values["n"], values["d"], values["frac_bits"], nodes, model_hash,
    )
    return announcement, addresses


def challenge_record(challenge: ValidityChallenge, addresses: dict[int, str]) -> ConfigRecord:
    """The ``"ppbfl"`` record of a prove message: the :class:`ValidityChallenge` and the edge nodes' addresses."""
    record = ConfigRecord({name: int(getattr(challenge, name)) for name in _CHALLENGE_INTS})
    record["stage"] = PROVE_STAGE
    record["seed"] = bytes(challenge.seed)
    record["edge_nodes"] = [int(j) for j in challenge.edge_nodes]
    record["edge_addresses"] = [addresses[j] for j in challenge.edge_nodes]
    return record


def is_challenge(record: ConfigRecord) -> bool:
    """Whether a ``"ppbfl"`` record asks for the validity proof (else it announces a round)."""
    return record.get("stage") == PROVE_STAGE


def challenge_from_record(record: ConfigRecord, party: str = "server") -> tuple[ValidityChallenge, dict[int, str]]:
    """Parse a prove message's record into the challenge and edge index -> address.

    Raises:
        FlowerRecordError: a field is missing or of the wrong type (names it).
    """
    values = _ints(record, _CHALLENGE_INTS, party)
    nodes, addresses = _edge_addresses(record, party)
    seed = record.get("seed")
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise FlowerRecordError(party, "seed", "expected 32 bytes")
    challenge = ValidityChallenge(values["round"], seed, values["d"], values["k"], values["bits"], nodes)
    return challenge, addresses


def proof_receipt_record(delivery: ProofDelivery) -> ConfigRecord:
    """The ``"ppbfl"`` record of a device's reply to a prove message."""
    return ConfigRecord({
        "device": delivery.device,
        "delivered": list(delivery.delivered),
        "refused": [f"{j}: {why}" for j, why in delivery.refused.items()],
    })


def receipt_record(submission: Submission, commit_tx: bytes | None = None) -> ConfigRecord:
    """The ``"ppbfl"`` record of a device's reply: device index, commitment root, the edge nodes
    that stored its upload and those that refused it (``"j: why"``), and ``commit_tx``, the
    device's signed commitment transaction when the round is on a chain."""
    record = ConfigRecord({
        "device": submission.device,
        "commitment": submission.commitment,
        "delivered": list(submission.delivered),
        "refused": [f"{j}: {why}" for j, why in submission.refused.items()],
    })
    if commit_tx is not None:
        record["commit_tx"] = commit_tx
    return record


@dataclass(frozen=True)
class ModelLayout:
    """The keys, shapes and dtypes of a model ``ArrayRecord``, to flatten it to one float64 (d,)
    vector and back (in the record's key order)."""

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    @classmethod
    def of(cls, arrays: ArrayRecord) -> ModelLayout:
        """The layout of ``arrays``."""
        values = [arrays[k].numpy() for k in arrays]
        return cls(tuple(arrays), tuple(v.shape for v in values), tuple(v.dtype for v in values))

    @property
    def d(self) -> int:
        """Number of entries of the flat vector."""
        return int(sum(int(np.prod(s)) for s in self.shapes))

    def flatten(self, arrays: ArrayRecord, party: str) -> np.ndarray:
        """``arrays`` as one float64 (d,) vector.

        Raises:
            FlowerRecordError: ``arrays`` has other keys or shapes than this layout (names the key).
        """
        if tuple(arrays) != self.keys:
            raise FlowerRecordError(party, "arrays", f"keys {list(arrays)}, expected {list(self.keys)}")
        parts = []
        for key, shape in zip(self.keys, self.shapes):
            value = arrays[key].numpy()
            if value.shape != shape:
                raise FlowerRecordError(party, f"arrays[{key!r}]", f"shape {value.shape}, expected {shape}")
            parts.append(np.asarray(value, dtype=np.float64).ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    def unflatten(self, vector: np.ndarray) -> ArrayRecord:
        """The float (d,) ``vector`` as an ``ArrayRecord`` of this layout (each array cast to its dtype)."""
        out: OrderedDict[str, Array] = OrderedDict()
        offset = 0
        for key, shape, dtype in zip(self.keys, self.shapes, self.dtypes):
            size = int(np.prod(shape))
            out[key] = Array(np.ascontiguousarray(vector[offset:offset + size].reshape(shape).astype(dtype)))
            offset += size
        return ArrayRecord(out)
