"""Who a TLS peer is: its certificate's fingerprint looked up in the deployment's registry (DESIGN §11).

A server never takes a peer's identity from the certificate's name: any holder of a certificate
from the consortium CA can put any common name in a request for one. It hashes the peer's
certificate (SHA-256 of the DER bytes, :func:`ppbfl.protocol.tls.fingerprint`) and looks the
fingerprint up here; the registry gives the party id, hence the role (``edge``, ``device``,
``dealer``, ``coordinator``) and index. An unregistered certificate is refused, whatever it is named.

Sources:

* the deployment's credential manifest ``registry.json`` (written by ``ppbfl creds`` /
  :func:`ppbfl.protocol.creds.write_credentials` next to the certificates): party id ->
  fingerprint for every party. Servers (edge nodes, the dealer) read it by default;
* the chain: the contract's party registry records every party's fingerprint with its role and
  index (``registerParties``, revocable; ``ChainLedger.register_identities`` fills it), and a
  server started with ``--chain URL --contract ADDRESS`` asks it instead of the manifest
  (:class:`ppbfl.protocol.chain_registry.ChainRegistry`). The clients that call edge nodes pin
  them to the fingerprints ``registerEdgeNode`` recorded (``ChainLedger.verify_fingerprints``).

:class:`FileRegistry` reads the manifest and reads it again when it changes on disk (devices
joining the consortium are added to the manifest while the edge nodes run; removed ones are refused).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.parties import COORDINATOR_PARTY, DEALER_PARTY

__all__ = ["MANIFEST", "FileRegistry", "Identity", "PeerPins", "PeerRegistry", "Registry", "identity_of", "write_manifest"]

#: file name of the credential manifest in a credentials folder
MANIFEST = "registry.json"
_INDEXED = re.compile(r"^(edge|device)-(0|[1-9][0-9]{0,9})$")
Role = Literal["edge", "device", "dealer", "coordinator", "other"]


@dataclass(frozen=True)
class Identity:
    """A registered party: ``party`` id, ``role`` and ``index`` (edge nodes 1.., devices 0..; None otherwise)."""

    party: str
    role: Role
    index: int | None


def identity_of(party: str) -> Identity:
    """The role and index a registry entry's party id names (``edge-3`` -> edge 3, ``dealer`` -> dealer)."""
    match = _INDEXED.match(party)
    if match:
        return Identity(party, "edge" if match.group(1) == "edge" else "device", int(match.group(2)))
    if party in (COORDINATOR_PARTY, DEALER_PARTY):
        return Identity(party, "coordinator" if party == COORDINATOR_PARTY else "dealer", None)
    return Identity(party, "other", None)


class PeerRegistry(Protocol):
    """What a server asks: who holds the certificate with this fingerprint (None: nobody registered)."""

    def identify(self, fingerprint: bytes) -> Identity | None:
        """The registered identity of the 32-byte certificate ``fingerprint``, or None.

        Raises:
            PeerAuthError: the registry cannot answer (e.g. its chain is down): the peer is refused.
        """
        ...


class PeerPins(Protocol):
    """What a client asks before it calls a server: the fingerprint of the certificate registered as
    that party's active one (:class:`~ppbfl.protocol.chain_registry.ChainRegistry`); answers may
    be reused for ``max_age_s`` seconds."""

    max_age_s: float

    def fingerprint_of(self, party: str) -> bytes | None:
        """The 32-byte fingerprint ``party``'s server must present, or None (none registered: refuse it).

        Raises:
            PeerAuthError: the source cannot answer (the server is refused).
        """
        ...


def _check_fingerprint(party: str, fp: object) -> bytes:
    if not isinstance(fp, bytes) or len(fp) != 32:
        raise CredentialsError(f"registry entry {party!r}: fingerprint must be 32 bytes, got {fp!r:.80}")
    return fp


class Registry:
    """An in-memory registry: party id -> 32-byte certificate fingerprint (one party per fingerprint).

    Raises:
        CredentialsError: a fingerprint is not 32 bytes, or two parties share one.
    """

    def __init__(self, fingerprints: Mapping[str, bytes]) -> None:
        self.fingerprints = {party: _check_fingerprint(party, fp) for party, fp in fingerprints.items()}
        self._by_fp: dict[bytes, Identity] = {}
        for party, fp in self.fingerprints.items():
            if fp in self._by_fp:
                raise CredentialsError(f"registry: {party!r} and {self._by_fp[fp].party!r} share one certificate fingerprint")
            self._by_fp[fp] = identity_of(party)

    def identify(self, fingerprint: bytes) -> Identity | None:
        """The registered identity of ``fingerprint``, or None."""
        return self._by_fp.get(fingerprint)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Registry:
        """The manifest at ``path`` (see :func:`write_manifest`).

        Raises:
            CredentialsError: missing, unreadable, or not a manifest.
        """
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise CredentialsError(f"missing credential manifest {path}") from None
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"cannot read credential manifest {path}: {exc}") from None
        parties = data.get("parties") if isinstance(data, dict) and data.get("version") == 1 else None
        if not isinstance(parties, dict):
            raise CredentialsError(f"{path}: not a version-1 credential manifest ({{'version': 1, 'parties': {{...}}}})")
        try:
            return cls({str(p): bytes.fromhex(fp) for p, fp in parties.items()})
        except (TypeError, ValueError) as exc:
            raise CredentialsError(f"{path}: bad fingerprint ({exc})") from None


def write_manifest(path: str | os.PathLike, fingerprints: Mapping[str, bytes]) -> None:
    """Add ``fingerprints`` (party id -> 32 bytes) to the manifest at ``path`` (created if needed).

    Entries of the same parties are replaced; the file is replaced atomically (readers never see
    half a manifest). Mode 0644: fingerprints are public.
    """
    target = Path(path)
    entries = dict(Registry.load(target).fingerprints) if target.exists() else {}
    entries.update(fingerprints)
    Registry(entries)  # checks lengths and uniqueness before anything is written
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps({"version": 1, "parties": {p: fp.hex() for p, fp in entries.items()}}, indent=1))
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


class FileRegistry:
    """The manifest at ``path``, read again whenever the file changes (one ``stat`` per lookup).

A party removed from the manifest is refused from the next lookup on.

    Raises:
        CredentialsError: the manifest is missing or malformed when first read.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._registry = Registry.load(self.path)

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def identify(self, fingerprint: bytes) -> Identity | None:
        """The registered identity of ``fingerprint`` (re-reading the manifest first if it changed), or None."""
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                try:
                    self._registry = Registry.load(self.path)
                    self._stamp = stamp
                except CredentialsError:
                    pass  # a broken or vanished manifest keeps the last good one
        return self._registry.identify(fingerprint)
