"""Make a consortium CA and per-party TLS credentials in a folder (the ``ppbfl creds`` command).

:func:`write_credentials` writes ``ca.crt`` (0644) and ``ca.key`` (0600) when it makes a new CA,
and ``<party>.crt`` (0644) / ``<party>.key`` (0600) for each party (see :mod:`ppbfl.protocol.tls`
for the certificates). It refuses to replace an existing CA or party's credentials unless
``force`` is set, and issues more parties from an existing CA (``ca_dir``, e.g. new devices
joining the consortium). Nothing is written if any check fails.

Each edge node and each device also gets its own secp256k1 chain key, ``<party>.chain.key``
(0600, hex; :class:`ppbfl.chain.attest.ChainKey`): ``ppbfl edge`` loads a node's and signs the
node's chain votes with it; a device signs its own commitment transactions with its key (the
Flower mod does). Only the addresses (:attr:`IssuedCredentials.chain_accounts`, printed by
``ppbfl creds``) go to the chain (``registerEdgeNode`` / ``registerDevice``); they are also kept,
public, in the folder's ``chain-accounts.json`` (party id -> address, :func:`read_chain_accounts`).

The returned fingerprints (SHA-256 of each DER certificate, 32 bytes) are what the chain
registers for each party and what peers pin. They are also added to the folder's credential
manifest ``registry.json`` (party id -> fingerprint, :mod:`ppbfl.protocol.registry`), from which
servers take a caller's identity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eth_utils import is_checksum_address

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.errors import ChainValueError
from ppbfl.protocol.device import device_party
from ppbfl.protocol.edge_node import COORDINATOR_PARTY, DEALER_PARTY, edge_party
from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.registry import MANIFEST, identity_of, write_manifest
from ppbfl.protocol.tls import (
    check_party_id,
    issue,
    load_ca,
    make_ca,
    read_ca_cert,
    save_ca,
    save_credentials,
)

__all__ = [
    "CHAIN_ACCOUNTS", "CHAIN_KEY_SUFFIX", "IssuedCredentials", "chain_key_path", "load_chain_key", "party_ids", "read_chain_accounts",
    "write_credentials",
]

#: the public chain addresses of a credentials folder's parties: ``chain-accounts.json``
CHAIN_ACCOUNTS = "chain-accounts.json"

#: an edge node's or device's chain key file: ``<party>.chain.key``
CHAIN_KEY_SUFFIX = ".chain.key"


def chain_key_path(directory: str | os.PathLike, party: str) -> Path:
    """Where ``party``'s chain key lives in a credentials folder."""
    return Path(directory) / f"{check_party_id(party)}{CHAIN_KEY_SUFFIX}"


def load_chain_key(path: str | os.PathLike) -> ChainKey:
    """An edge node's or a device's chain key from ``path`` (written by :func:`write_credentials`).

    Raises:
        CredentialsError: the file is missing, readable by others, or not a key.
    """
    if not Path(path).exists():
        raise CredentialsError(f"missing chain key file {path} (ppbfl creds writes one per edge node and device)")
    try:
        return ChainKey.load(path)
    except ChainValueError as exc:
        raise CredentialsError(str(exc)) from None


@dataclass(frozen=True)
class IssuedCredentials:
    """What :func:`write_credentials` did.

    ``directory``: the folder holding ``ca.crt``, the parties' files and ``registry.json``; ``ca_created``: whether
    a new CA was made (else ``ca_dir``'s was used); ``fingerprints``: party id -> 32-byte SHA-256
    of its certificate, in issue order; ``chain_accounts``: edge party id -> the address of the
    chain key written for it (what ``registerEdgeNode`` registers).
    """

    directory: Path
    ca_created: bool
    fingerprints: dict[str, bytes]
    chain_accounts: dict[str, str]


def party_ids(
    *, edges: int = 0, devices: int = 0, dealer: bool = False, coordinator: bool = False, extra: Iterable[str] = ()
) -> list[str]:
    """The party ids of a deployment: ``edge-1..edge-<edges>``, ``device-0..device-<devices - 1>``,
    ``dealer`` and ``coordinator`` when asked, then ``extra`` (each checked; duplicates dropped).

    Raises:
        CredentialsError: a negative count, an invalid party id, or no party at all.
    """
    for name, count in (("edges", edges), ("devices", devices)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CredentialsError(f"{name} must be an int >= 0, got {count!r}")
    ids = [edge_party(j) for j in range(1, edges + 1)] + [device_party(i) for i in range(devices)]
    ids += [DEALER_PARTY] * dealer + [COORDINATOR_PARTY] * coordinator + [check_party_id(p) for p in extra]
    if not ids:
        raise CredentialsError("no parties: give edges, devices, dealer, coordinator or party ids")
    return list(dict.fromkeys(ids))


def write_credentials(
    out: str | os.PathLike, parties: Iterable[str], *, ca_dir: str | os.PathLike | None = None,
    ca_name: str = "ppbfl consortium", valid_days: int = 365, force: bool = False,
) -> IssuedCredentials:
    """Issue ``parties`` credentials into the folder ``out`` (created if needed).

    Args:
        out: folder for ``ca.crt`` and each party's ``<party>.crt`` / ``<party>.key`` (and an edge
            node's ``<party>.chain.key``).
        parties: party ids (see :func:`party_ids`).
        ca_dir: folder of an existing CA (``ca.crt`` + ``ca.key``) to issue from; its
            certificate is copied to ``out`` if ``out`` has none. Default: make a new CA
            ``ca_name`` in ``out``.
        valid_days: lifetime of the new certificates.
        force: replace an existing CA in ``out`` (when making one) and existing party files.

    Raises:
        CredentialsError: ``out`` already has a CA (or another CA's certificate than
        ``ca_dir``'s), a party's files exist, ``ca_dir`` lacks a readable CA, or a party id is
        invalid. Nothing is written then.
    """
    directory = Path(out)
    ids = [check_party_id(p) for p in dict.fromkeys(parties)]
    if not ids:
        raise CredentialsError("no parties to issue credentials to")
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1:
        raise CredentialsError(f"valid_days must be an int >= 1, got {valid_days!r}")
    ca_files = [directory / "ca.crt", directory / "ca.key"]
    if ca_dir is None:
        existing = [str(f) for f in ca_files if f.exists()]
        if existing and not force:
            raise CredentialsError(
                f"{', '.join(existing)} exist(s): pass ca_dir (--ca-dir {directory}) to issue more parties "
                "from that CA, or force (--force) to replace it"
            )
        ca = make_ca(ca_name, valid_days=valid_days)
    else:
        ca = load_ca(ca_dir)
        if ca_files[0].exists() and read_ca_cert(ca_files[0]) != ca.cert_pem:
            raise CredentialsError(f"{ca_files[0]} is another CA's certificate than {Path(ca_dir) / 'ca.crt'}'s")
    clashes = [p for p in ids if not force and any((directory / f"{p}{ext}").exists() for ext in (".crt", ".key", CHAIN_KEY_SUFFIX))]
    if clashes:
        raise CredentialsError(
            f"credentials of {', '.join(clashes)} already exist in {directory} (force / --force replaces them)"
        )
    if ca_dir is None:
        save_ca(ca, directory)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        if not ca_files[0].exists():
            ca_files[0].write_bytes(ca.cert_pem)
    fingerprints, chain_accounts = {}, {}
    for party in ids:
        creds = issue(ca, party, valid_days=valid_days)
        save_credentials(creds, directory)
        fingerprints[party] = creds.fingerprint
        if identity_of(party).role in ("edge", "device"):
            key, path = ChainKey.generate(), chain_key_path(directory, party)
            path.unlink(missing_ok=True)  # only there with force (checked above)
            key.save(path)
            chain_accounts[party] = key.address
    write_manifest(directory / MANIFEST, fingerprints)
    _write_chain_accounts(directory, chain_accounts)
    return IssuedCredentials(directory, ca_dir is None, fingerprints, chain_accounts)


def read_chain_accounts(directory: str | os.PathLike) -> dict[str, str]:
    """Party id -> chain address from ``directory``'s ``chain-accounts.json`` (public: no key is read).

    Raises:
        CredentialsError: the file is missing, not JSON, or not an object of party ids to 0x addresses.
    """
    path = Path(directory) / CHAIN_ACCOUNTS
    try:
        accounts = json.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialsError(f"missing {path} (ppbfl creds writes the parties' chain addresses there)") from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"{path}: unreadable or not JSON ({exc})") from None
    if not isinstance(accounts, dict):
        raise CredentialsError(f"{path}: expected an object of party id -> address")
    for party, address in accounts.items():
        check_party_id(party)
        if not isinstance(address, str) or not is_checksum_address(address):
            raise CredentialsError(f"{path}: {party}: {address!r} is not a checksummed 0x address")
    return dict(accounts)


def _write_chain_accounts(directory: Path, accounts: dict[str, str]) -> None:
    """Add ``accounts`` to ``directory``'s ``chain-accounts.json`` (kept parties of earlier issues), atomically."""
    if not accounts:
        return
    path = directory / CHAIN_ACCOUNTS
    merged = read_chain_accounts(directory) if path.exists() else {}
    merged.update(accounts)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(merged, indent=1) + "\n")
    os.replace(partial, path)
