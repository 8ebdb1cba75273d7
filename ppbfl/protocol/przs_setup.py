"""Member-generated PRZS set keys: the edge nodes agree their keys through the coordinator, which sees none.

The keys of :mod:`ppbfl.mpc.przs` (one 32-byte ``r_A`` per set ``A`` of ``n - t + 1`` nodes) are
drawn by the members of each set, in three relayed steps of one setup ``session`` (32 bytes the
coordinator draws fresh):

1. each node draws an X25519 key pair and answers a :class:`~ppbfl.protocol.messages.PRZSOffer`:
   its public key, its TLS certificate and an ECDSA P-256 signature by its TLS key (its identity
   key: the certificate's fingerprint is in the registry and on chain) over
   ``b"ppbfl/przs/offer/v1" || session || index || t || n || public key``;
2. the coordinator relays every offer (:class:`~ppbfl.protocol.messages.PRZSPeers`); each node
   checks every certificate's fingerprint against its registry as ``edge-<j>`` and every signature
   (a substituted key is refused, naming the relay), derives one key per peer
   ``HKDF-SHA256(X25519(sk_i, pk_j), salt = session, info = "ppbfl/przs/pair/v1" || min || max)``,
   draws ``r_A`` (OS CSPRNG) for every set it leads (its lowest online member) and seals it for
   every other online member with ChaCha20-Poly1305 under their pair key (random 12-byte nonce,
   associated data ``b"ppbfl/przs/seal/v1" || session || mask(A) || sender || recipient``);
3. the coordinator routes each node the ciphertexts addressed to it
   (:class:`~ppbfl.protocol.messages.PRZSDeliver`); the node opens them (a ciphertext that does
   not authenticate, from a party other than the set's leader, or a missing one is refused, naming
   the relay and the sender) and holds its :class:`~ppbfl.mpc.przs.PartyPRZS`.

The coordinator holds the public keys, certificates, signatures and ciphertexts; breaking it needs
the X25519 (CDH) or AEAD assumption. A node offline at setup is in no set's key agreement: its sets'
keys are drawn and shared by their online members (the zero-sharing needs every key only at its
members that take part). For any ``t - 1`` colluding nodes ``C``, the set ``complement(C)`` (its
``n - t + 1`` members are all honest) is led, drawn and known only by honest nodes: that key's
term is what the colluders miss.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ppbfl.field.csprng import SEED_BYTES
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.przs import PartyPRZS
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.messages import SEALED_KEY_BYTES, PRZSDeliver, PRZSOffer, PRZSPeers, PRZSSealed
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.registry import PeerRegistry
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.protocol.tls import PartyCredentials

__all__ = ["MAX_PRZS_SETS", "PRZSSetup", "members_of", "offer_key", "offer_payload", "przs_set_count", "set_mask"]

#: most PRZS sets one node may be a member of (``C(n - 1, n - t)``); a setup needing more is refused
MAX_PRZS_SETS = 4096
NONCE_BYTES = 12
assert SEALED_KEY_BYTES == NONCE_BYTES + SEED_BYTES + 16  # nonce, key, Poly1305 tag
_OFFER = b"ppbfl/przs/offer/v1"
_PAIR = b"ppbfl/przs/pair/v1"
_SEAL = b"ppbfl/przs/seal/v1"


def przs_set_count(t: int, n: int) -> int:
    """How many PRZS sets one node of a ``(t, n)`` tier is a member of: ``C(n - 1, n - t)``."""
    return math.comb(n - 1, n - t)


def set_mask(members: frozenset[int]) -> int:
    """The bitmask of a set of nodes (bit ``j - 1`` for node ``j``)."""
    return sum(1 << (j - 1) for j in members)


def members_of(mask: int, n: int) -> frozenset[int]:
    """The nodes ``1..n`` whose bit is set in ``mask``."""
    return frozenset(j for j in range(1, n + 1) if mask >> (j - 1) & 1)


def offer_payload(session: bytes, index: int, t: int, n: int, public_key: bytes) -> bytes:
    """The bytes a node signs in its offer (domain, session, its index, ``t``, ``n``, its X25519 key)."""
    return _OFFER + session + struct.pack(">III", index, t, n) + public_key


def offer_key(
    party: str, verb: str, j: int, offer: PRZSOffer, *, session: bytes, t: int, n: int, registry: PeerRegistry | None,
) -> ec.EllipticCurvePublicKey:
    """Edge ``j``'s signing key from its ``offer`` in setup ``session`` of a ``(t, n)`` tier: the
    certificate parses, holds an ECDSA key, is registered to ``edge-<j>`` (when a ``registry`` is
    given) and that key signed :func:`offer_payload`. What every node checks of its peers' relayed
    offers, and the coordinator of each offer before it relays them.

    Raises:
        PeerAuthError: naming ``party`` (the relay at a node; the offering node at the coordinator),
            the reason starting with ``verb`` (``"relayed"``, ``"sent"``).
    """
    try:
        cert = x509.load_pem_x509_certificate(offer.certificate)
        key = cert.public_key()
    except ValueError:
        raise PeerAuthError(party, f"{verb} a PRZS offer of {edge_party(j)} whose certificate does not parse") from None
    identity = None if registry is None else registry.identify(cert.fingerprint(hashes.SHA256()))
    if registry is not None and (identity is None or identity.party != edge_party(j)):
        who = "nobody" if identity is None else identity.party
        raise PeerAuthError(party, f"{verb} a PRZS offer for {edge_party(j)} with a certificate registered to {who}")
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PeerAuthError(party, f"{verb} a PRZS offer of {edge_party(j)} whose certificate holds no ECDSA key")
    try:
        key.verify(offer.signature, offer_payload(session, j, t, n, offer.public_key), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PeerAuthError(party, f"{verb} a PRZS offer of {edge_party(j)} whose signature does not verify (substituted key?)") from None
    return key


def check_offer_point(j: int, public: bytes) -> None:
    """Edge ``j``'s offered X25519 key must be a point whose Diffie-Hellman value with a fresh key is
    not 0 (a low-order point makes every pair key of ``j`` predictable). What every peer finds when it
    derives its pair key with ``j``, and the coordinator checks before it relays the offer.

    Raises:
        PeerAuthError: naming ``edge-<j>``, the offering node.
    """
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point: the shared secret would be 0 (or not 32 bytes)
        raise PeerAuthError(edge_party(j), "signed a PRZS offer with a low-order X25519 key") from None


def _seal_ad(session: bytes, mask: int, sender: int, recipient: int) -> bytes:
    return _SEAL + session + struct.pack(">III", mask, sender, recipient)


@dataclass
class PRZSSetup:
    """Node ``index``'s side of one setup session (see module docstring).

    Args:
        index, t, n: the node and its tier.
        session: the session id of the :class:`~ppbfl.protocol.messages.SetupEdge` (32 bytes).
        credentials: the node's TLS identity (it signs the offer with its key).
        registry: who holds which certificate (the peers' certificates are checked against it).
    """

    index: int
    t: int
    n: int
    session: bytes
    credentials: PartyCredentials
    registry: PeerRegistry
    field: PrimeField = GF61
    _secret: X25519PrivateKey = dataclass_field(default_factory=X25519PrivateKey.generate, repr=False)
    _pairs: dict[int, ChaCha20Poly1305] = dataclass_field(default_factory=dict, repr=False)
    _leaders: dict[frozenset[int], int] = dataclass_field(default_factory=dict, repr=False)
    _own: dict[frozenset[int], bytes] = dataclass_field(default_factory=dict, repr=False)
    sealed: PRZSSealed | None = None
    """This node's reply to the peers (kept: a retried request gets the same keys)."""
    peer_keys: dict[int, ec.EllipticCurvePublicKey] = dataclass_field(default_factory=dict, repr=False)
    """Node index -> the signing key of its checked certificate (this node's own included), once
    the peers are accepted: what relayed values are checked against (:mod:`.signed_shares`)."""
    opened: PartyPRZS | None = None
    """This node's zero-sharer once its keys are delivered (kept: a repeated delivery cannot reset
    the counters it has used)."""

    def offer(self) -> PRZSOffer:
        """Step 1: this node's X25519 public key, certificate and signature."""
        public = self._secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signature = self.credentials.key.sign(offer_payload(self.session, self.index, self.t, self.n, public), ec.ECDSA(hashes.SHA256()))
        return PRZSOffer(public, self.credentials.cert_pem, signature)

    def _check_offer(self, relay: str, j: int, public: bytes, cert_pem: bytes, signature: bytes) -> ec.EllipticCurvePublicKey:
        """Edge ``j``'s signing key; raise PeerAuthError (naming ``relay``) unless its offer is signed by its registered key."""
        return offer_key(relay, "relayed", j, PRZSOffer(public, cert_pem, signature), session=self.session, t=self.t, n=self.n, registry=self.registry)

    def accept_peers(self, relay: str, peers: PRZSPeers) -> PRZSSealed:
        """Step 2: check every relayed offer, derive the pair keys, draw and seal the keys this node leads.

        Raises:
            PeerAuthError: an offer is not signed by the registered key of its node (names ``relay``).
            OutOfPhaseError: the peer list is malformed (lengths, indices, or this node's own offer missing).
        """
        if self.sealed is not None:
            return self.sealed
        count = len(peers.indices)
        if not count == len(peers.public_keys) == len(peers.certificates) == len(peers.signatures):
            raise OutOfPhaseError(edge_party(self.index), "PRZS peers: the four lists differ in length")
        if list(peers.indices) != sorted(set(peers.indices)) or not all(1 <= j <= self.n for j in peers.indices):
            raise OutOfPhaseError(edge_party(self.index), f"PRZS peers: indices {peers.indices[:8]} are not distinct nodes 1..{self.n} ascending")
        online = dict(zip(peers.indices, peers.public_keys))
        own = self._secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if online.get(self.index) != own:
            raise PeerAuthError(relay, f"relayed a PRZS peer list without {edge_party(self.index)}'s own offer")
        if len(online) < self.t:
            raise OutOfPhaseError(edge_party(self.index), f"PRZS peers: {len(online)} nodes, at least t = {self.t} needed")
        self.peer_keys[self.index] = self.credentials.key.public_key()
        for j, public, cert_pem, signature in zip(peers.indices, peers.public_keys, peers.certificates, peers.signatures):
            if j != self.index:
                self.peer_keys[j] = self._check_offer(relay, j, public, cert_pem, signature)
                try:
                    shared = self._secret.exchange(X25519PublicKey.from_public_bytes(public))
                except ValueError:  # a low-order point: the shared secret would be 0
                    raise PeerAuthError(edge_party(j), "signed a PRZS offer with a low-order X25519 key") from None
                low, high = sorted((self.index, j))
                info = _PAIR + struct.pack(">II", low, high)
                key = HKDF(hashes.SHA256(), 32, salt=self.session, info=info).derive(shared)
                self._pairs[j] = ChaCha20Poly1305(key)
        sets, recipients, ciphertexts = [], [], []
        for rest in itertools.combinations([j for j in range(1, self.n + 1) if j != self.index], self.n - self.t):
            members = frozenset((self.index, *rest))
            leader = min(j for j in members if j in online)
            self._leaders[members] = leader
            if leader != self.index:
                continue
            key = os.urandom(SEED_BYTES)
            self._own[members] = key
            mask = set_mask(members)
            for j in sorted(members):
                if j != self.index and j in online:
                    nonce = os.urandom(NONCE_BYTES)
                    sealed = self._pairs[j].encrypt(nonce, key, _seal_ad(self.session, mask, self.index, j))
                    sets.append(mask)
                    recipients.append(j)
                    ciphertexts.append(nonce + sealed)
        self.sealed = PRZSSealed(sets, recipients, ciphertexts)
        return self.sealed

    def open(self, relay: str, delivered: PRZSDeliver) -> PartyPRZS:
        """Step 3: open the keys the set leaders sealed for this node; return its zero-sharer.

        Raises:
            PeerAuthError: a ciphertext does not authenticate, comes from a node that does not lead
                its set, or a key is missing or sent twice (names ``relay`` and the sender).
            OutOfPhaseError: before :meth:`accept_peers`, or the three lists differ in length.
        """
        if self.opened is not None:
            return self.opened
        if self.sealed is None:
            raise OutOfPhaseError(edge_party(self.index), "PRZS keys delivered before the peers were relayed")
        if not len(delivered.sets) == len(delivered.senders) == len(delivered.ciphertexts):
            raise OutOfPhaseError(edge_party(self.index), "PRZS delivery: the three lists differ in length")
        keys = dict(self._own)
        for mask, sender, sealed in zip(delivered.sets, delivered.senders, delivered.ciphertexts):
            members = members_of(mask, self.n) if mask >> self.n == 0 else frozenset()
            if self._leaders.get(members) != sender or sender == self.index or members in keys:
                raise PeerAuthError(
                    relay, f"relayed a PRZS key of set {mask:#x} from {edge_party(sender)}, which does not lead it for "
                    f"{edge_party(self.index)} (or the key came twice)",
                )
            try:
                keys[members] = self._pairs[sender].decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _seal_ad(self.session, mask, sender, self.index))
            except InvalidTag:
                raise PeerAuthError(
                    relay, f"relayed a PRZS key of set {mask:#x} from {edge_party(sender)} that does not authenticate (tampered)"
                ) from None
        missing = [set_mask(a) for a in self._leaders if a not in keys]
        if missing:
            raise PeerAuthError(relay, f"withheld the PRZS keys of sets {[hex(m) for m in missing[:8]]} from {edge_party(self.index)}")
        self.opened = PartyPRZS(self.index, self.t, self.n, keys, self.field)
        return self.opened
