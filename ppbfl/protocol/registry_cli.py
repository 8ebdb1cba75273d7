"""``ppbfl registry list | register | revoke | rotate-edge``: the consortium admin manages the contract's party
registry (who may call a ``--chain`` server, and as whom) on a live chain; see
:mod:`ppbfl.protocol.registry_admin` for the checks. Exit status 2 on any bad input or refusal,
with one line ``ppbfl registry: <ErrorType>: <message>`` on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ppbfl.chain.attest import ChainKey

__all__ = ["add_registry_commands"]

_KEY_HELP = (
    "file holding the admin's chain key (64 hex digits, mode 0600); without it the key is read from "
    "$PPBFL_ADMIN_KEY. Never give a key on the command line"
)


def _signer(args: argparse.Namespace) -> tuple[str | None, ChainKey | None]:
    """``(sender, key)`` of the admin: a key of ``--admin-key`` / ``$PPBFL_ADMIN_KEY`` (signed here),
    or ``--admin-account`` (the node signs). Exactly one must be given."""
    from eth_utils import to_checksum_address

    from ppbfl.errors import ConfigError
    from ppbfl.protocol.registry_admin import ADMIN_KEY_ENV, admin_key

    key = admin_key(args.admin_key)
    if key is not None and args.admin_account is not None:
        raise ConfigError("admin_account", "give the admin's key or --admin-account, not both")
    if key is not None:
        return None, key
    if args.admin_account is None:
        raise ConfigError(
            "admin_key", f"the admin must sign: --admin-key FILE (0600), ${ADMIN_KEY_ENV}, or --admin-account ADDRESS (unlocked on the node)",
        )
    try:
        return to_checksum_address(args.admin_account), None
    except ValueError:
        raise ConfigError("admin_account", f"{args.admin_account!r:.60} is not an address") from None


def _list(args: argparse.Namespace) -> int:
    from ppbfl.chain.rounds import ROLES
    from ppbfl.protocol.chain_registry import connect_contract
    from ppbfl.protocol.registry_admin import list_parties

    contract = connect_contract(args.chain, args.contract, agree=args.chain_agree)
    entries = list_parties(contract, from_block=args.from_block)
    print(f"# {len(entries)} certificates registered in {contract.address}; fingerprint role index active party")
    for entry in entries:
        if entry.active or args.all:
            print(f"{entry.fingerprint.hex()} {ROLES[entry.role]} {entry.index} {'yes' if entry.active else 'no'} {entry.party}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from ppbfl.errors import ConfigError
    from ppbfl.protocol.chain_registry import connect_contract
    from ppbfl.protocol.creds import read_chain_accounts
    from ppbfl.protocol.registry_admin import parties_of_folder, party_of_certificate, pending_parties, register_edge_nodes

    if (args.creds is None) == (args.cert is None):
        raise ConfigError("creds", "give either --creds DIR (a folder ppbfl creds wrote) or --cert FILE with --role and --index")
    if args.cert is not None:
        if args.role is None or args.ca is None:
            raise ConfigError("role" if args.role is None else "ca", "--cert needs --role, --index (0 for the coordinator and dealer) and --ca")
        if args.party:
            raise ConfigError("party", "--party selects parties of --creds")
        if args.edge_nodes:
            raise ConfigError("edge_nodes", "--edge-nodes takes the edge nodes' chain accounts from --creds")
        entries, skipped = [party_of_certificate(args.cert, args.role, args.index, args.ca)], list[str]()
    else:
        if args.role is not None:
            raise ConfigError("role", "--role and --index go with --cert; the roles of --creds come from its party ids")
        entries, skipped = parties_of_folder(args.creds, args.party, args.ca)
    sender, key = _signer(args)
    accounts = read_chain_accounts(args.creds) if args.edge_nodes else {}
    contract = connect_contract(args.chain, args.contract, agree=args.chain_agree)
    for party in register_edge_nodes(contract, entries, accounts, sender=sender, key=key) if args.edge_nodes else []:
        print(f"registered edge node {party} (account {accounts[party]})")
    todo, already = pending_parties(contract, entries)
    for party in skipped:
        print(f"# {party}: no role in the contract's registry, left out")
    for party in already:
        print(f"# {party}: already registered with this certificate")
    if todo:
        gas = contract.register_parties([(fp, role, index) for _, fp, role, index in todo], sender=sender, key=key)
        for party, fp, _, _ in todo:
            print(f"registered {party} {fp.hex()}")
        print(f"# {len(todo)} registered in one transaction, {gas} gas")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ppbfl.chain.rounds import ROLES
    from ppbfl.errors import ConfigError
    from ppbfl.protocol.chain_registry import connect_contract
    from ppbfl.protocol.registry_admin import PartyEntry, parse_fingerprint
    from ppbfl.protocol.tls import fingerprint, read_ca_cert

    if (args.fingerprint is None) == (args.cert is None):
        raise ConfigError("fingerprint", "give the certificate's FINGERPRINT or --cert FILE (one of them)")
    fp = parse_fingerprint(args.fingerprint) if args.fingerprint is not None else fingerprint(read_ca_cert(args.cert))
    sender, key = _signer(args)
    contract = connect_contract(args.chain, args.contract, agree=args.chain_agree)
    role, index, active = contract.party(fp)
    if not active:  # named here without spending gas; the contract would say NotActiveParty
        state = "was revoked before" if role else "was never registered"
        raise ConfigError("fingerprint", f"{fp.hex()} {state} in {contract.address}")
    contract.revoke_party(fp, sender=sender, key=key)
    print(f"revoked {PartyEntry(fp, role, index, False).party} ({ROLES[role]} {index}) {fp.hex()}")
    return 0


def _rotate_edge(args: argparse.Namespace) -> int:
    from ppbfl.protocol.chain_registry import connect_contract
    from ppbfl.protocol.registry_admin import edge_rotation_input, rotate_edge_node

    fp, account = edge_rotation_input(args.index, args.cert, args.ca, args.account)
    sender, key = _signer(args)
    contract = connect_contract(args.chain, args.contract, agree=args.chain_agree)
    done = rotate_edge_node(contract, args.index, fp, account, sender=sender, key=key)
    print(f"rotated edge-{done.index}: account {done.old_account} -> {done.account}")
    print(f"revoked {done.old_fingerprint.hex()}; registered {done.fingerprint.hex()} ({done.gas} gas)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ppbfl.errors import PPBFLError

    try:
        result: int = args.registry_run(args)
    except PPBFLError as exc:
        print(f"ppbfl registry: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return result


def _chain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", required=True, help="JSON-RPC URL of the consortium's chain (http:// or https://), or URL1,URL2,...: several endpoints")
    parser.add_argument("--chain-agree", type=int, default=None, help="with several --chain endpoints: how many must give every answer identically (default: all)")
    parser.add_argument("--contract", required=True, help="address of the consortium's PPBFLRounds contract")


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--admin-key", default=None, help=_KEY_HELP)
    parser.add_argument("--admin-account", default=None, help="send from this account, which the node holds unlocked (no key here)")


def add_registry_commands(commands: Any) -> None:
    """Add the ``registry`` command and its subcommands to an argparse subparsers object."""
    registry = commands.add_parser("registry", help="list, register and revoke the TLS certificates the contract's party registry accepts")
    sub = registry.add_subparsers(dest="registry_command", required=True)
    listing = sub.add_parser("list", help="every registered certificate: fingerprint, role, index, active, party id (no key needed)")
    _chain_options(listing)
    listing.add_argument("--all", action="store_true", help="also list revoked certificates")
    listing.add_argument(
        "--from-block", type=int, default=None,
        help="read the registry's events from this block on (default: the contract's deployment block)",
    )
    listing.set_defaults(run=_run, registry_run=_list)
    register = sub.add_parser("register", help="register the parties of a ppbfl creds folder, or one certificate")
    _chain_options(register)
    _admin_options(register)
    register.add_argument("--creds", default=None, help="a folder ppbfl creds wrote: its manifest's parties with a role (edge-j, device-i, coordinator, dealer)")
    register.add_argument("--party", action="append", default=[], help="with --creds: only this party (repeatable)")
    register.add_argument(
        "--edge-nodes", action="store_true",
        help="with --creds: first register (registerEdgeNode) each edge node the contract does not hold yet, with its account from DIR/chain-accounts.json",
    )
    register.add_argument("--cert", default=None, help="one PEM certificate, with --role, --index and --ca")
    register.add_argument("--role", default=None, help="with --cert: edge, device, coordinator or dealer")
    register.add_argument("--index", type=int, default=0, help="with --cert: the edge node's (1..n) or device's index (default 0)")
    register.add_argument("--ca", default=None, help="the consortium CA certificate every registered certificate must be issued by (default with --creds: DIR/ca.crt)")
    register.set_defaults(run=_run, registry_run=_register)
    revoke = sub.add_parser("revoke", help="revoke a certificate for good: chain-registry servers refuse it within their --registry-max-age")
    _chain_options(revoke)
    _admin_options(revoke)
    revoke.add_argument("fingerprint", nargs="?", default=None, help="the certificate's SHA-256 fingerprint (64 hex digits)")
    revoke.add_argument("--cert", default=None, help="or the certificate itself (PEM)")
    revoke.set_defaults(run=_run, registry_run=_revoke)
    rotate = sub.add_parser(
        "rotate-edge",
        help="give a registered edge node a new certificate and chain account (between rounds): its old certificate is revoked, its old account's votes stop counting",
    )
    _chain_options(rotate)
    _admin_options(rotate)
    rotate.add_argument("--index", type=int, required=True, help="the edge node's index (1..n)")
    rotate.add_argument("--cert", required=True, help="its new PEM certificate (named edge-INDEX, issued by --ca, never registered before)")
    rotate.add_argument("--account", required=True, help="its new chain account (the address of its new chain key; its current one to change only the certificate)")
    rotate.add_argument("--ca", required=True, help="the consortium CA certificate")
    rotate.set_defaults(run=_run, registry_run=_rotate_edge)
