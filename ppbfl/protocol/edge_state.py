"""An edge node's state on disk, so that a node that restarts rejoins without a new setup of the tier.

What survives a restart (:class:`EdgeState`): the :class:`~ppbfl.protocol.messages.SetupEdge` the
node accepted, the certificates of the peers whose PRZS offers it checked, its PRZS set keys
(:mod:`ppbfl.protocol.przs_setup`), every PRZS counter it has spent (verify, Gram and FLAME-noise
streams; also a mark per round it endorsed a verify request in, :data:`~ppbfl.protocol.edge_node.ENDORSE_COUNTER`), the latest round the coordinator reached, and its :class:`~ppbfl.protocol.messages.AggregateShare`
reply of the last :data:`KEEP_ROUNDS` rounds it aggregated (served again to a coordinator that
restarted between a round's close and its model file, :mod:`ppbfl.protocol.resume`). Devices' share
vectors are not kept: a node that restarts in the middle of a round leaves that round.

Write-ahead: the node saves before the reply that depends on the state leaves it (a spent
counter, a kept aggregate share, a new latest round). A save is a temporary file in the same
folder, ``fsync``, ``os.replace``, ``fsync`` of the folder: a crash leaves the old file or the new
one, never a mix. The folder is made owner-only (``0700``) and the file ``0600``.

Encrypted at rest under a key derived from the node's own TLS private key
(``HKDF-SHA256(private scalar, salt = "ppbfl/edge-state/v1", info = certificate fingerprint)``,
ChaCha20-Poly1305, a fresh 12-byte nonce per save): the file holds the node's PRZS keys, which are
exactly as secret as its TLS key, and the node already keeps that key; the file is useless
without it, and one written under another identity, truncated or altered in any byte does not
authenticate. On load the node also checks the state against its own credentials (its
certificate's fingerprint) and the current registry (its own entry and every peer certificate the
state holds); any failure is an :class:`EdgeStateError` naming the file and the field, and the
node then starts as not set up (the tier's ordinary setup brings it back).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ppbfl.errors import PPBFLError
from ppbfl.field.prime_field import PrimeField
from ppbfl.protocol.durable import replace_durably
from ppbfl.protocol.errors import MessageError
from ppbfl.protocol.messages import MAX_CERT_BYTES, RecalledRound, SetupEdge
from ppbfl.protocol.parties import COORDINATOR_PARTY, edge_party
from ppbfl.protocol.przs_setup import MAX_PRZS_SETS, members_of, set_mask
from ppbfl.protocol.registry import PeerRegistry
from ppbfl.protocol.tls import PartyCredentials
from ppbfl.protocol.wire import MAX_MESSAGE_BYTES, Bytes, ListOf, Message, UInt, decode, encode, register

__all__ = ["KEEP_ROUNDS", "STATE_FILE", "EdgeState", "EdgeStateError", "EdgeStateStore"]

#: the file in the node's state folder
STATE_FILE = "edge-state.bin"
#: rounds whose aggregate share a node keeps (the latest ones it aggregated)
KEEP_ROUNDS = 2
#: most spent PRZS counters a state holds (three per round: some 350,000 rounds)
MAX_COUNTERS = 1 << 20
_MAGIC = b"ppbfl/edge-state/v1\n"
_NONCE = 12
_MAX_EDGES = 31


class EdgeStateError(PPBFLError):
    """A state file that cannot be used: ``path``, the ``field`` at fault and why (``reason``)."""

    def __init__(self, path: str | os.PathLike, field: str, reason: str) -> None:
        super().__init__(f"edge-node state {path}: field {field!r}: {reason}")
        self.path, self.field, self.reason = str(path), field, reason


@register
@dataclass(frozen=True)
class _Record(Message):
    """The state as it is encrypted (a schema-checked message: a bad field is named on load)."""

    KIND: ClassVar[str] = "edge_node_state"
    VERSION: ClassVar[int] = 1
    fingerprint: Annotated[bytes, Bytes(length=32)]
    setup: Annotated[bytes, Bytes(max_len=4096)]
    peer_indices: Annotated[list[int], ListOf(UInt(bits=8), max_len=_MAX_EDGES)]
    peer_certificates: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_CERT_BYTES), max_len=_MAX_EDGES)]
    set_masks: Annotated[list[int], ListOf(UInt(bits=32), max_len=MAX_PRZS_SETS)]
    set_keys: Annotated[list[bytes], ListOf(Bytes(length=32), max_len=MAX_PRZS_SETS)]
    used: Annotated[list[int], ListOf(UInt(bits=64), max_len=MAX_COUNTERS)]
    current: Annotated[int, UInt(bits=63)]
    kept_rounds: Annotated[list[int], ListOf(UInt(bits=63), max_len=KEEP_ROUNDS)]
    kept_replies: Annotated[list[bytes], ListOf(Bytes(max_len=MAX_MESSAGE_BYTES), max_len=KEEP_ROUNDS)]


@dataclass(frozen=True)
class EdgeState:
    """What a node needs to serve the next round after a restart.

    Attributes:
        setup: the accepted setup (index, tier, session).
        peers: node index -> the PEM certificate of its checked PRZS offer (this node's own included).
        keys: PRZS set (its members) -> its 32-byte key (the sets containing this node).
        used: the PRZS counters this node has spent (never answered again).
        current: the latest round the coordinator reached.
        kept: round -> this node's aggregate reply of that round with its decisions (the latest :data:`KEEP_ROUNDS`).
    """

    setup: SetupEdge
    peers: Mapping[int, bytes]
    keys: Mapping[frozenset[int], bytes]
    used: frozenset[int]
    current: int
    kept: Mapping[int, RecalledRound]


def _state_key(credentials: PartyCredentials) -> ChaCha20Poly1305:
    """The file key: HKDF-SHA256 of the node's TLS private scalar, bound to its certificate."""
    scalar = credentials.key.private_numbers().private_value.to_bytes(32, "big")
    key = HKDF(hashes.SHA256(), 32, salt=b"ppbfl/edge-state/v1", info=credentials.fingerprint).derive(scalar)
    return ChaCha20Poly1305(key)


class EdgeStateStore:
    """The state file of the node with ``credentials`` in ``folder`` (made ``0700``)."""

    def __init__(self, folder: str | os.PathLike, credentials: PartyCredentials) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self.credentials = credentials
        self._aead = _state_key(credentials)

    @property
    def path(self) -> Path:
        """The state file."""
        return self.folder / STATE_FILE

    def save(self, state: EdgeState, field: PrimeField) -> None:
        """Encrypt ``state`` and replace the file atomically (durable when this returns).

        Raises:
            EdgeStateError: the file cannot be written (field ``<file>``); the old one is intact.
        """
        context = {"p": field.p, "d": state.setup.d}
        kept = sorted(state.kept)[-KEEP_ROUNDS:]
        peers = sorted(state.peers)
        sets = sorted(state.keys, key=set_mask)
        record = _Record(
            self.credentials.fingerprint, encode(state.setup, sender=COORDINATOR_PARTY, round=0),
            peers, [state.peers[j] for j in peers], [set_mask(a) for a in sets], [state.keys[a] for a in sets],
            sorted(state.used), state.current, kept,
            [encode(state.kept[r], sender=edge_party(state.setup.index), round=r, context=context) for r in kept],
        )
        plain = encode(record, sender=edge_party(state.setup.index), round=state.current, max_size=(KEEP_ROUNDS + 1) * MAX_MESSAGE_BYTES)
        nonce = os.urandom(_NONCE)
        data = _MAGIC + nonce + self._aead.encrypt(nonce, plain, _MAGIC)
        try:
            replace_durably(self.path, lambda fh: fh.write(data), prefix=".edge-state-")  # mode 0600
        except OSError as error:
            raise EdgeStateError(self.path, "<file>", f"cannot be written ({error}): the reply that needed it is not sent") from None

    def clear(self) -> None:
        """Remove the state (a new setup starts: the old session's state must not come back)."""
        self.path.unlink(missing_ok=True)

    def load(self, registry: PeerRegistry, field: PrimeField) -> EdgeState | None:
        """The stored state, checked against this node's credentials and ``registry`` (None: no file).

        Raises:
            EdgeStateError: the file does not authenticate (truncated, altered, another node's),
                breaks the schema, or holds another identity, an index the registry gives someone
                else, or a peer certificate the registry does not hold for that peer.
        """
        path = self.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise EdgeStateError(path, "<file>", f"cannot be read ({error})") from None
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _NONCE + 16:
            raise EdgeStateError(path, "<header>", "not an edge-node state file (or truncated)")
        nonce = data[len(_MAGIC): len(_MAGIC) + _NONCE]
        try:
            plain = self._aead.decrypt(nonce, data[len(_MAGIC) + _NONCE:], _MAGIC)
        except InvalidTag:
            raise EdgeStateError(
                path, "<ciphertext>", "does not authenticate under this node's TLS key: truncated, altered, or written by another identity",
            ) from None
        try:
            record = decode(plain, expected_kind=_Record, max_size=(KEEP_ROUNDS + 1) * MAX_MESSAGE_BYTES).message
            assert isinstance(record, _Record)
            setup = decode(record.setup, expected_kind=SetupEdge).message
        except MessageError as error:
            raise EdgeStateError(path, error.field or "<record>", str(error)) from None
        assert isinstance(setup, SetupEdge)
        return self._check(record, setup, registry, field)

    def _check(self, record: _Record, setup: SetupEdge, registry: PeerRegistry, field: PrimeField) -> EdgeState:
        path, me = self.path, edge_party(setup.index)
        if record.fingerprint != self.credentials.fingerprint:
            raise EdgeStateError(path, "fingerprint", "written for another TLS certificate than this node's")
        own = registry.identify(self.credentials.fingerprint)
        if own is None or own.party != me:
            raise EdgeStateError(path, "setup.index", f"the state is {me}'s, the registry holds this node as {own.party if own else 'nobody'}")
        if len(record.peer_indices) != len(record.peer_certificates) or setup.index not in record.peer_indices:
            raise EdgeStateError(path, "peer_indices", "not one certificate per peer, or this node's own missing")
        peers = dict(zip(record.peer_indices, record.peer_certificates))
        for k, (j, pem) in enumerate(peers.items()):
            try:
                cert = x509.load_pem_x509_certificate(pem)
            except ValueError:
                raise EdgeStateError(path, f"peer_certificates[{k}]", "does not parse") from None
            who = registry.identify(cert.fingerprint(hashes.SHA256()))
            if who is None or who.party != edge_party(j) or not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
                raise EdgeStateError(path, f"peer_certificates[{k}]", f"not registered as {edge_party(j)} (another registry?)")
        if len(record.set_masks) != len(record.set_keys):
            raise EdgeStateError(path, "set_keys", f"{len(record.set_keys)} keys for {len(record.set_masks)} sets")
        keys = {}
        for k, mask in enumerate(record.set_masks):
            members = members_of(mask, setup.n)
            if mask >> setup.n or setup.index not in members or len(members) != setup.n - setup.t + 1:
                raise EdgeStateError(path, f"set_masks[{k}]", f"{mask:#x} is not a PRZS set of {me} in a ({setup.t}, {setup.n}) tier")
            keys[members] = record.set_keys[k]
        if len(record.kept_rounds) != len(record.kept_replies):
            raise EdgeStateError(path, "kept_replies", "not one reply per kept round")
        kept = {}
        for k, (r, raw) in enumerate(zip(record.kept_rounds, record.kept_replies)):
            try:
                reply = decode(raw, expected_kind=RecalledRound, expected_round=r, context={"p": field.p, "d": setup.d}).message
            except MessageError as error:
                raise EdgeStateError(path, f"kept_replies[{k}].{error.field}", str(error)) from None
            assert isinstance(reply, RecalledRound)
            kept[r] = reply
        return EdgeState(setup, peers, keys, frozenset(record.used), record.current, kept)
