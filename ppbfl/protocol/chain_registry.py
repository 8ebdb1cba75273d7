"""Who a TLS peer is, asked of the chain: the ``PPBFLRounds`` contract's party registry (DESIGN §11).

The consortium's admin registers the certificate fingerprint of every party that may call a
server (``registerParties``: edge nodes, devices, the coordinator, the dealer, each with its role
and index) and revokes certificates (``revokeParty``); the view ``party(fingerprint)`` answers
``(role, index, active)``. :class:`ChainRegistry` is a :class:`~ppbfl.protocol.registry.PeerRegistry`
over that view, so a server takes its callers' identities from the chain instead of a manifest file:

* answers are cached for at most ``max_age_s`` seconds, then asked again: **a revoked party is
  refused by every lookup that starts more than ``max_age_s`` seconds after the revocation is in a
  block** (default 5 s) — a certificate in the cache is never trusted longer than that;
* a fingerprint that is not in the cache as an active party (unknown, revoked, or never
  registered) is looked up on chain at most ``lookups_per_s`` times a second on average (token
  bucket of ``burst``): a stream of fresh certificates (each must come from the consortium CA to
  reach a server's registry at all) cannot turn into unbounded chain calls; beyond the rate the
  peer is refused with :class:`RegistryBusyError`; the cache holds at most ``max_entries``
  fingerprints (least recently used evicted);
* any failure of the chain call (node down, timeout, revert, malformed answer) refuses the peer
  with :class:`RegistryUnavailableError`, never accepts it, and forgets the cached answer.

Both errors are :class:`~ppbfl.protocol.errors.PeerAuthError`: the gRPC server reports them to
the caller as an authentication refusal.

The other direction: a client pins the server it calls to the certificate the chain registers as
that party's active one (:meth:`ChainRegistry.fingerprint_of`, the view ``partyFingerprint(role,
index)``; a :class:`~ppbfl.protocol.grpc_transport.GrpcTransport` given the registry as ``pins``),
asked again after ``max_age_s``: an edge node whose certificate the admin revoked is refused by
its callers within that bound, as its callers are by it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE, RoundsContract
from ppbfl.errors import ConfigError
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.parties import COORDINATOR_PARTY, DEALER_PARTY, device_party, edge_party
from ppbfl.protocol.registry import Identity, identity_of

__all__ = ["ChainRegistry", "RegistryBusyError", "RegistryUnavailableError", "connect_contract", "identity_from_chain"]

_ROLE_CODES = {"edge": ROLE_EDGE, "device": ROLE_DEVICE, "coordinator": ROLE_COORDINATOR, "dealer": ROLE_DEALER}


class RegistryUnavailableError(PeerAuthError):
    """The chain could not say who holds a certificate: the peer is refused. ``fingerprint``: its 32 bytes."""

    def __init__(self, fingerprint: bytes, reason: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(None, f"certificate {fingerprint.hex()}: identity not confirmed on chain, refused: {reason}")


class RegistryBusyError(RegistryUnavailableError):
    """Too many unknown certificates were presented: this one is refused without a chain lookup."""


def identity_from_chain(role: int, index: int) -> Identity | None:
    """The :class:`Identity` of the contract's ``(role, index)`` (None for a role it does not define)."""
    if role == ROLE_EDGE and index >= 1:
        return identity_of(edge_party(index))
    if role == ROLE_DEVICE:
        return identity_of(device_party(index))
    if role == ROLE_COORDINATOR and index == 0:
        return identity_of(COORDINATOR_PARTY)
    if role == ROLE_DEALER and index == 0:
        return identity_of(DEALER_PARTY)
    return None


@dataclass(frozen=True)
class _Entry:
    identity: Identity | None
    at: float


class ChainRegistry:
    """A :class:`~ppbfl.protocol.registry.PeerRegistry` over ``contract``'s party registry (see module docstring).

    Args:
        contract: the consortium's deployed ``PPBFLRounds``.
        max_age_s: the longest a cached answer is used; the bound on how long a revoked party is
            still accepted (> 0).
        lookups_per_s, burst: chain lookups of fingerprints not cached as active parties (> 0;
            ``burst`` >= 1).
        max_entries: cached fingerprints (>= 1).
        clock: monotonic seconds (tests pass a fake one).

    Raises:
        ConfigError: a bound is out of range (names it).
    """

    def __init__(
        self, contract: RoundsContract, *, max_age_s: float = 5.0, lookups_per_s: float = 20.0, burst: int = 50,
        max_entries: int = 4096, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for key, value, low in (("max_age_s", max_age_s, 0.0), ("lookups_per_s", lookups_per_s, 0.0)):
            if not (isinstance(value, (int, float)) and low < value < float("inf")):
                raise ConfigError(key, f"must be a positive finite number, got {value!r}")
        for key, count in (("burst", burst), ("max_entries", max_entries)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(key, f"must be an int >= 1, got {count!r}")
        self.contract, self.max_age_s, self.lookups_per_s, self.burst = contract, float(max_age_s), float(lookups_per_s), burst
        self.max_entries, self._clock = max_entries, clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._pins: dict[str, tuple[bytes | None, float]] = {}  # party -> (active fingerprint, asked at)
        self._tokens, self._refilled = float(burst), clock()
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str | Sequence[str], address: str, *, agree: int | None = None, **bounds: Any) -> ChainRegistry:
        """The registry of the ``PPBFLRounds`` contract at ``address`` on the JSON-RPC node at
        ``url`` (``bounds``: as for the constructor). Only views are called: the node needs no
        unlocked account (a read-only :meth:`ppbfl.chain.Chain.connect`). Several endpoints
        (comma-separated or a list): every answer must come identically from ``agree`` of them
        (default all; :class:`~ppbfl.chain.quorum_provider.QuorumProvider`), else the peer is
        refused (:class:`RegistryUnavailableError` naming the disagreement).

        Raises:
            ChainError: the node does not answer or holds no contract at ``address``;
            ConfigError: ``address`` is not an address, an endpoint or ``agree`` is malformed, or
                a bound is out of range.
        """
        return cls(connect_contract(url, address, agree=agree), **bounds)

    def identify(self, fingerprint: bytes) -> Identity | None:
        """The identity the chain registers for the 32-byte certificate ``fingerprint`` (None:
        never registered, or revoked), from the cache if asked within ``max_age_s`` seconds.

        Raises:
            RegistryBusyError: a chain lookup was needed beyond ``lookups_per_s`` (peer refused).
            RegistryUnavailableError: the chain call failed (peer refused).
        """
        if not isinstance(fingerprint, bytes) or len(fingerprint) != 32:
            return None
        with self._lock:
            now = self._clock()
            entry = self._cache.get(fingerprint)
            if entry is not None and now - entry.at < self.max_age_s:
                self._cache.move_to_end(fingerprint)
                return entry.identity
            if entry is None or entry.identity is None:  # only active parties are re-checked without a token
                self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.lookups_per_s)
                self._refilled = now
                if self._tokens < 1.0:
                    raise RegistryBusyError(fingerprint, f"more than {self.lookups_per_s:g} chain lookups/s of unknown certificates")
                self._tokens -= 1.0
        try:  # outside the lock: a slow chain does not hold up answers from the cache
            role, index, active = self.contract.party(fingerprint)
        except Exception as error:  # any failure refuses: the node may be down, slow or lying
            with self._lock:
                self._cache.pop(fingerprint, None)
            raise RegistryUnavailableError(fingerprint, f"{type(error).__name__}: {error}") from None
        identity = identity_from_chain(role, index) if active else None
        with self._lock:
            newer = self._cache.get(fingerprint)
            if newer is not None and newer.at > now:  # a lookup that started later answered first: keep its answer
                return identity
            self._cache[fingerprint] = _Entry(identity, now)
            self._cache.move_to_end(fingerprint)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return identity

    def fingerprint_of(self, party: str) -> bytes | None:
        """The 32-byte fingerprint of the certificate the chain registers as ``party``'s active one
        (``edge-j``, ``device-i``, ``coordinator``, ``dealer``): what a client pins that party's
        server to. None: no active certificate (revoked, never registered) or an id with no role.
        Answers are cached for at most ``max_age_s`` seconds (the parties a client calls are its
        own peers, a handful: no rate bound is needed here).

        Raises:
            PeerAuthError: the chain call failed (the server is refused, never trusted unchecked).
        """
        identity = identity_of(party)
        if identity.role not in _ROLE_CODES or (identity.role == "edge" and not identity.index):
            return None
        with self._lock:
            now = self._clock()
            cached = self._pins.get(party)
            if cached is not None and now - cached[1] < self.max_age_s:
                return cached[0]
        try:
            active = self.contract.party_fingerprint(_ROLE_CODES[identity.role], identity.index or 0)
        except Exception as error:  # any failure refuses: the node may be down, slow or lying
            with self._lock:
                self._pins.pop(party, None)
            raise PeerAuthError(party, f"its certificate could not be confirmed on chain: {type(error).__name__}: {error}") from None
        pinned = active if isinstance(active, bytes) and len(active) == 32 and active != bytes(32) else None
        with self._lock:
            self._pins[party] = (pinned, now)
        return pinned


def connect_contract(url: str | Sequence[str], address: str, *, agree: int | None = None) -> RoundsContract:
    """The ``PPBFLRounds`` contract at ``address`` on the JSON-RPC node at ``url``, for views (a
    read-only :meth:`ppbfl.chain.Chain.connect`: no unlocked account needed). ``url`` may name
    several endpoints (comma-separated or a list), of which ``agree`` (default all) must give every
    answer identically (:class:`~ppbfl.chain.quorum_provider.QuorumProvider`).

    Raises:
        ConfigError: ``contract``: not an address; ``chain`` / ``chain_agree``: malformed
            endpoints or agreement count; ChainError: the node does not answer or holds no
            contract there (the connection is closed then).
    """
    from eth_utils import to_checksum_address

    from ppbfl.chain import Chain
    from ppbfl.chain.errors import ChainError
    from ppbfl.chain.rounds import load_artifact

    try:
        checksummed = to_checksum_address(address)
    except ValueError as error:
        raise ConfigError("contract", f"{address!r:.60} is not an address ({error})") from None
    chain = Chain.connect(url, agree=agree)
    try:
        if not chain.w3.eth.get_code(checksummed):
            raise ChainError(f"no contract at {checksummed} on {url if isinstance(url, str) else ','.join(url)}")
        return RoundsContract(chain, checksummed, load_artifact()["abi"])
    except Exception:
        chain.close()
        raise
