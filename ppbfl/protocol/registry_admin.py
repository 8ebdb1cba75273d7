"""The consortium admin's side of the contract's party registry (what ``ppbfl registry`` runs).

Servers that identify callers from the chain (:class:`~ppbfl.protocol.chain_registry.ChainRegistry`)
accept a certificate only while its SHA-256 fingerprint is registered and active in
``PPBFLRounds`` (``registerParties`` / ``revokeParty``, admin only). This module turns an
operator's inputs into those calls, checking everything it can before anything is signed:

* :func:`parties_of_folder`: the parties of a credentials folder ``ppbfl creds`` wrote (its
  manifest ``registry.json``), each certificate read from ``<party>.crt`` and required to match
  the manifest's fingerprint, to be named after its party and to be issued by the consortium CA,
  so an edited manifest cannot slip another certificate in;
* :func:`party_of_certificate`: one certificate with an explicit role and index;
* :func:`admin_key`: the admin's chain key from a 0600 key file or the ``PPBFL_ADMIN_KEY``
  environment variable, never from a command-line argument (visible to every local user in
  ``ps``); errors never echo the key;
* :func:`list_parties`: every registration and revocation, from the contract's
  ``PartyRegistered`` / ``PartyRevoked`` events;
* :func:`rotate_edge_node`: a new certificate (and chain account) for a registered edge node
  (``rotateEdgeNode``, only between rounds): the old certificate and account stop counting.

Bad input is a :class:`~ppbfl.errors.ConfigError` naming the field (or a
:class:`~ppbfl.protocol.errors.CredentialsError` for an unreadable certificate); what only the
contract can decide (``NotAdmin``, ``PartyExists``, ``BadParty``, ``NotActiveParty``) is its
typed :class:`~ppbfl.chain.errors.ChainRevertError` (``rotateEdgeNode`` also ``WrongPhase``: a
round in flight, ``AddressInUse``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from eth_utils import to_checksum_address

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.errors import ChainError, ChainValueError
from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_EDGE, ROLES, RoundsContract
from ppbfl.errors import ConfigError, PPBFLError
from ppbfl.protocol.chain_registry import identity_from_chain
from ppbfl.protocol.registry import MANIFEST, Registry, identity_of
from ppbfl.protocol.tls import fingerprint, party_id_of, read_ca_cert

__all__ = [
    "ADMIN_KEY_ENV",
    "PartyEntry",
    "admin_key",
    "list_parties",
    "pending_parties",
    "register_edge_nodes",
    "edge_rotation_input",
    "rotate_edge_node",
    "EdgeRotation",
    "parse_fingerprint",
    "parse_role",
    "parties_of_folder",
    "party_of_certificate",
]

#: environment variable holding the admin's chain key (64 hex digits) when no key file is given
ADMIN_KEY_ENV = "PPBFL_ADMIN_KEY"
_ROLE_CODES = {name: code for code, name in ROLES.items()}
_FINGERPRINT = re.compile(r"^(0x)?([0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class PartyEntry:
    """One certificate in the contract's registry: its 32-byte ``fingerprint``, ``role`` (1..4,
    :data:`~ppbfl.chain.rounds.ROLES`), ``index`` and whether it is still ``active``."""

    fingerprint: bytes
    role: int
    index: int
    active: bool

    @property
    def party(self) -> str:
        """The party id servers give its holder (``edge-2``, ``device-0``, ``coordinator``)."""
        identity = identity_from_chain(self.role, self.index)
        return identity.party if identity is not None else f"role-{self.role}-{self.index}"


def parse_role(text: str) -> int:
    """The contract's role code of ``text`` (``edge``, ``device``, ``coordinator``, ``dealer``).

    Raises:
        ConfigError: ``role``: another word.
    """
    code = _ROLE_CODES.get(text)
    if code is None:
        raise ConfigError("role", f"{text!r:.40} is not one of {', '.join(sorted(_ROLE_CODES))}")
    return code


def parse_fingerprint(text: str) -> bytes:
    """The 32 bytes of a certificate fingerprint written as 64 hex digits (``0x`` optional), as
    ``ppbfl creds`` and ``ppbfl registry list`` print them.

    Raises:
        ConfigError: ``fingerprint``: not 64 hex digits.
    """
    match = _FINGERPRINT.match(text.strip())
    if match is None:
        raise ConfigError("fingerprint", f"{text!r:.80} is not 64 hex digits (a SHA-256 certificate fingerprint)")
    return bytes.fromhex(match.group(2))


def _check_index(role: int, index: int, party: str) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1 << 32:
        raise ConfigError("index", f"{party}: {index!r} is not an integer in [0, 2^32)")
    if role in (ROLE_COORDINATOR, ROLE_DEALER) and index != 0:
        raise ConfigError("index", f"{party}: the {ROLES[role]} has index 0, got {index}")
    if role == ROLE_EDGE and index < 1:
        raise ConfigError("index", f"{party}: edge nodes are numbered from 1, got {index}")


def _certificate(path: Path, ca_pem: bytes) -> tuple[bytes, str]:
    """``(fingerprint, party id)`` of the PEM certificate at ``path``, which ``ca_pem`` must have issued."""
    cert_pem = read_ca_cert(path)  # a readable PEM certificate, else CredentialsError naming the file
    cert, ca = x509.load_pem_x509_certificate(cert_pem), x509.load_pem_x509_certificate(ca_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigError("cert", f"{path} was not issued by the consortium CA {ca.subject.rfc4514_string()}") from None
    return fingerprint(cert_pem), party_id_of(cert_pem)


def party_of_certificate(cert: str | os.PathLike, role: str, index: int, ca: str | os.PathLike) -> tuple[str, bytes, int, int]:
    """``(party id, fingerprint, role code, index)`` to register for the certificate at ``cert``.

    The certificate must be issued by the CA at ``ca`` (servers refuse any other before they ask
    the registry) and named after the party it is registered as (a certificate named ``device-4``
    registered as device 3 would be refused as a sender by every server: a typing error).

    Raises:
        ConfigError: ``role`` / ``index`` out of range, ``cert`` not issued by the CA or named otherwise;
        CredentialsError: a file is missing or not a PEM certificate.
    """
    code = parse_role(role)
    _check_index(code, index, f"{role} {index!r}")
    identity = identity_from_chain(code, index)
    assert identity is not None  # every role has a party id for an index the checks above let through
    party = identity.party
    fp, named = _certificate(Path(cert), read_ca_cert(ca))
    if named != party:
        raise ConfigError("cert", f"{cert} is the certificate of {named!r}, not of {party!r}")
    return party, fp, code, index


def parties_of_folder(
    folder: str | os.PathLike, only: Sequence[str] = (), ca: str | os.PathLike | None = None,
) -> tuple[list[tuple[str, bytes, int, int]], list[str]]:
    """The parties of the credentials folder ``folder`` (``ppbfl creds --out``) to register:
    ``([(party id, fingerprint, role code, index), ...], [party ids left out])`` — left out are
    ids with no role in the contract (a manifest's extra parties). ``only``: just these party ids.
    Each ``<party>.crt`` must have the manifest's fingerprint, be named after its party and be
    issued by the CA at ``ca`` (default ``folder/ca.crt``).

    Raises:
        ConfigError: ``party``: an id of ``only`` not in the manifest or with no role; ``cert``: a
            certificate that differs from the manifest, is named otherwise or not CA-issued;
        CredentialsError: the manifest or a certificate is missing or unreadable.
    """
    directory = Path(folder)
    manifest = Registry.load(directory / MANIFEST).fingerprints
    ca_pem = read_ca_cert(Path(ca) if ca is not None else directory / "ca.crt")
    for party in only:
        if party not in manifest:
            raise ConfigError("party", f"{party!r:.60} is not in {directory / MANIFEST}")
    chosen = [p for p in manifest if not only or p in only]
    entries, skipped = [], []
    for party in chosen:
        identity = identity_of(party)
        if identity.role not in _ROLE_CODES:
            if only:
                raise ConfigError("party", f"{party!r} has no role in the contract's registry")
            skipped.append(party)
            continue
        fp, named = _certificate(directory / f"{party}.crt", ca_pem)
        if fp != manifest[party] or named != party:
            raise ConfigError("cert", f"{directory / f'{party}.crt'} is not the certificate {directory / MANIFEST} lists for {party!r}")
        entries.append((party, fp, _ROLE_CODES[identity.role], identity.index or 0))
    return entries, skipped


def admin_key(key_file: str | os.PathLike | None, environ: Mapping[str, str] = os.environ) -> ChainKey | None:
    """The admin's chain key: from ``key_file`` (64 hex digits, mode 0600, as
    :meth:`~ppbfl.chain.attest.ChainKey.save` writes), else from the environment variable
    :data:`ADMIN_KEY_ENV`; None when neither is given. The key is never part of an error message.

    Raises:
        ConfigError: ``admin_key``: the file is unreadable, readable by others or holds no key;
            :data:`ADMIN_KEY_ENV` is set but is not a key.
    """
    if key_file is not None:
        try:
            return ChainKey.load(key_file)
        except ChainValueError as error:
            raise ConfigError("admin_key", str(error)) from None
    text = environ.get(ADMIN_KEY_ENV)
    if text is None:
        return None
    text = text.strip().removeprefix("0x")
    try:
        return ChainKey(bytes.fromhex(text))
    except (ValueError, ChainValueError):
        raise ConfigError("admin_key", f"${ADMIN_KEY_ENV} is not a 32-byte secp256k1 key in hex (64 digits)") from None


def list_parties(contract: RoundsContract, from_block: int | None = None) -> list[PartyEntry]:
    """Every certificate registered in ``contract`` since block ``from_block`` (default: the
    contract's deployment block, :attr:`~ppbfl.chain.rounds.RoundsContract.deployed_at`), in
    registration order, with whether it is still active (from the ``PartyRegistered`` and
    ``PartyRevoked`` events, asked in bounded block ranges: :func:`ppbfl.chain.logs.scan_logs`).

    Raises:
        ChainError: the node does not answer.
    """
    from ppbfl.chain.logs import scan_logs

    events = contract.contract.events
    try:
        start = contract.deployed_at if from_block is None else from_block
        registered = scan_logs(events.PartyRegistered, start)
        revoked = {bytes(log["args"]["fingerprint"]) for log in scan_logs(events.PartyRevoked, start)}
    except PPBFLError:
        raise
    except Exception as error:  # connection refused, timeout, a node that keeps no logs
        raise ChainError(f"the node did not return the registry's events ({type(error).__name__}: {error})") from None
    return [
        PartyEntry(bytes(log["args"]["fingerprint"]), int(log["args"]["role"]), int(log["args"]["index"]),
                   bytes(log["args"]["fingerprint"]) not in revoked)
        for log in registered
    ]


def pending_parties(
    contract: RoundsContract, entries: Sequence[tuple[str, bytes, int, int]],
) -> tuple[list[tuple[str, bytes, int, int]], list[str]]:
    """Split ``entries`` (as :func:`parties_of_folder` returns them) into those to register and the
    party ids already registered, active, with that very certificate (registering a folder twice
    changes nothing). An edge entry must carry the certificate ``registerEdgeNode`` recorded for
    its index (the contract refuses any other with ``BadParty``; named here before anything is
    signed). Any other conflict (a revoked certificate, a party holding another active one) is
    left to the contract (``PartyExists``).

    Raises:
        ConfigError: ``cert``: an edge certificate that is not the registered edge node's.
    """
    todo, already = [], []
    for party, fp, role, index in entries:
        if contract.party(fp) == (role, index, True):
            already.append(party)
            continue
        if role == ROLE_EDGE:
            registered = contract.edge_node_fingerprint(index) if index <= contract.n else bytes(32)
            if registered == bytes(32):
                raise ConfigError("cert", f"{party}: no edge node {index} is registered in the contract (registerEdgeNode; ppbfl registry register --edge-nodes)")
            if registered != fp:
                raise ConfigError("cert", f"{party}: the contract's edge node {index} holds certificate {registered.hex()[:16]}..., not {fp.hex()[:16]}... (registerEdgeNode)")
        todo.append((party, fp, role, index))
    return todo, already


def register_edge_nodes(
    contract: RoundsContract, entries: Sequence[tuple[str, bytes, int, int]], accounts: Mapping[str, str], *,
    sender: str | None = None, key: ChainKey | None = None,
) -> list[str]:
    """Register (``registerEdgeNode``, admin) every edge node of ``entries`` the contract does not
    hold yet, with its chain account from ``accounts`` (party id -> address: a credentials folder's
    ``chain-accounts.json``) and its certificate; returns their party ids. Edge nodes the contract
    holds already are left alone (their certificate is checked by :func:`pending_parties`).

    Raises:
        ConfigError: ``chain_accounts``: an edge node to register has no account in ``accounts``;
            ``index``: an edge index beyond the contract's ``n``;
        ChainRevertError: the contract refused (``NotAdmin``, ``AddressInUse``).
    """
    todo = []
    for party, fp, role, index in entries:
        if role != ROLE_EDGE:
            continue
        if index > contract.n:
            raise ConfigError("index", f"{party}: the contract has {contract.n} edge nodes")
        if int(contract.edge_node(index)[0], 16) != 0:  # registered already
            continue
        if party not in accounts:
            raise ConfigError("chain_accounts", f"{party}: no chain account for it (ppbfl creds writes chain-accounts.json)")
        todo.append((party, fp, index))
    for party, fp, index in todo:
        contract.register_edge_node(index, accounts[party], fp, sender=sender, key=key)
    return [party for party, _, _ in todo]


@dataclass(frozen=True)
class EdgeRotation:
    """What :func:`rotate_edge_node` changed for edge node ``index``: its chain account and
    certificate fingerprint before and after, and the gas of the transaction."""

    index: int
    old_account: str
    account: str
    old_fingerprint: bytes
    fingerprint: bytes
    gas: int


def edge_rotation_input(index: int, cert: str | os.PathLike, ca: str | os.PathLike, account: str) -> tuple[bytes, str]:
    """``(fingerprint, checksummed account)`` for giving edge node ``index`` the certificate at
    ``cert`` and the chain account ``account``, checked without the chain: the index is >= 1, the
    certificate is issued by the CA at ``ca`` and named ``edge-<index>``, the account is an address.

    Raises:
        ConfigError: ``index``, ``account`` or ``cert`` as above;
        CredentialsError: a file is missing or not a PEM certificate.
    """
    _check_index(ROLE_EDGE, index, f"edge {index!r}")
    try:
        checksummed = to_checksum_address(account)
    except (ValueError, TypeError):
        raise ConfigError("account", f"{account!r:.60} is not an address") from None
    _, fp, _, _ = party_of_certificate(cert, "edge", index, ca)
    return fp, checksummed


def rotate_edge_node(
    contract: RoundsContract, index: int, fp: bytes, account: str, *, sender: str | None = None, key: ChainKey | None = None,
) -> EdgeRotation:
    """Give registered edge node ``index`` the certificate fingerprint ``fp`` and the chain account
    ``account`` (the address of the node's new :class:`~ppbfl.chain.attest.ChainKey`; its current
    one to change only the certificate), as :func:`edge_rotation_input` returns them:
    ``rotateEdgeNode``, admin, only while no round is in flight. The old certificate is revoked
    (servers with a :class:`~ppbfl.protocol.chain_registry.ChainRegistry` refuse it within their
    ``max_age_s``) and the old account's signatures no longer count in any vote.

    Raises:
        ConfigError: ``index`` beyond the contract's n or no edge node registered there; ``cert``:
            ``fp`` registered before (a certificate is registered once, ever) or the current one;
        ChainRevertError: the contract refused (``NotAdmin``, ``WrongPhase``: a round is open or
            not yet closed or failed, ``AddressInUse``: the account is another party's).
    """
    if index > contract.n:
        raise ConfigError("index", f"edge {index}: the contract has {contract.n} edge nodes")
    old_account, old_fp = contract.edge_node(index)
    if int(old_account, 16) == 0:
        raise ConfigError("index", f"no edge node {index} is registered in the contract (ppbfl registry register --edge-nodes)")
    role, registered_index, active = contract.party(fp)
    if role != 0 or fp == old_fp:
        state = "active" if active or role == 0 else "revoked"
        holder = f"{ROLES[role]} {registered_index}" if role else f"edge {index}"
        raise ConfigError("cert", f"certificate {fp.hex()[:16]}... is registered already ({holder}, {state}): issue a new one")
    gas = contract.rotate_edge_node(index, account, fp, sender=sender, key=key)
    return EdgeRotation(index, old_account, account, old_fp, fp, gas)
