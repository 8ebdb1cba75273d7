"""Command line: ``ppbfl demo``, ``ppbfl info``, ``ppbfl experiment CONFIG``, ``ppbfl edge``, ``ppbfl creds``,
``ppbfl registry``, ``ppbfl trust`` and ``ppbfl ids``."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ppbfl.protocol.edge_node import EdgeNode
    from ppbfl.protocol.registry import PeerRegistry

__all__ = ["build_parser", "edge_node", "main"]


def _info(_: argparse.Namespace) -> int:
    import importlib.metadata

    import numpy

    import ppbfl
    from ppbfl.field import GF61, available_backends, backend_name
    from ppbfl.field.threads import worker_count

    print(f"ppbfl {ppbfl.__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"field: {GF61!r}; kernel backend: {backend_name()} (available: {', '.join(available_backends())})")
    try:
        numba_version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        numba_version = "not installed"
    print(f"kernel threads: {worker_count()}; numpy {numpy.__version__}; numba {numba_version}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ppbfl.demo import DemoConfig, DemoConfigError, run_demo
    from ppbfl.errors import PPBFLError

    config = DemoConfig(
        dataset=args.dataset, devices=args.devices, malicious=args.malicious, attack=args.attack, rounds=args.rounds,
        t=args.t, n=args.n, hidden=args.hidden, liar=None if args.liar == 0 else args.liar,
        kill_edge=None if args.kill_edge == 0 else args.kill_edge, kill_round=args.kill_round,
        transport=args.transport, chain=args.chain, seed=args.seed, out=args.out,
        rule=args.rule, flame_noise=args.flame_noise, rescale=args.rescale, ids=not args.no_ids,
    )
    try:
        run_demo(config)
    except (DemoConfigError, PPBFLError) as exc:
        print(f"ppbfl demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


def _edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ppbfl.errors import PPBFLError
    from ppbfl.protocol.registry import MANIFEST, FileRegistry
    from ppbfl.protocol.serve import run_server
    from ppbfl.protocol.tls import load_credentials, read_ca_cert

    try:
        credentials = load_credentials(args.creds, args.party)
        ca_pem = read_ca_cert(args.ca)
        registry = peer_registry(args) or FileRegistry(args.registry or Path(args.creds) / MANIFEST)
        return run_server(edge_node(args, registry), args.party, credentials, ca_pem, host=args.host, port=args.port, registry=registry)
    except PPBFLError as exc:
        print(f"ppbfl edge: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def peer_registry(args: argparse.Namespace) -> PeerRegistry | None:
    """With ``--chain URL --contract ADDRESS``: a :class:`~ppbfl.protocol.chain_registry.ChainRegistry`
    of that contract (``--chain URL1,URL2,... --chain-agree K``: read through K agreeing endpoints) (callers' identities, and the devices' upload keys, from the chain); else None
    (the manifest ``--registry`` is used).

    Raises:
        ConfigError: only one of ``--chain`` and ``--contract`` is given; ChainError: the node does
            not answer or holds no contract at the address.
    """
    from ppbfl.errors import ConfigError

    if args.chain is None and args.contract is None:
        return None
    if args.chain is None or args.contract is None:
        raise ConfigError("chain" if args.chain is None else "contract", "--chain and --contract go together")
    from ppbfl.protocol.chain_registry import ChainRegistry

    return ChainRegistry.connect(args.chain, args.contract, agree=args.chain_agree, max_age_s=args.registry_max_age)


def edge_node(args: argparse.Namespace, registry: PeerRegistry | None = None) -> EdgeNode:
    """The edge node ``ppbfl edge`` serves: its own chain key from ``--creds``, the devices' upload
    keys from ``--device-certs`` (default ``--creds``; none with ``--unsigned-uploads``), the
    decision rule of ``--rule``, the trust model of ``--trust-config`` and the root-set reference of ``--reference``.

    Raises:
        CredentialsError: the chain key or the manifest is missing or unreadable; ConfigError: a
            trust or rule setting is invalid.
    """
    from ppbfl.protocol.creds import chain_key_path
    from ppbfl.protocol.deployment import make_edge_node

    device_certs = None if args.unsigned_uploads else str(args.device_certs or args.creds)
    return make_edge_node(
        args.behaviour, device_certs=device_certs, chain_key=str(chain_key_path(args.creds, args.party)),
        device_registry=None if args.registry is None else str(args.registry), state_dir=args.state_dir,
        decision_rule=_edge_rule(args), peer_registry=registry if args.chain is not None else None, **_edge_trust(args),
        ids_flags_dir=args.ids_flags, request_quorum=args.request_quorum, reference=args.reference,
        reference_tolerance=args.reference_tolerance,
    )


def _edge_rule(args: argparse.Namespace) -> dict | None:
    """``make_edge_node``'s decision rule from ``--rule`` (and ``--tau``, ``--rescale``,
    ``--flame-noise``); None without ``--rule`` (the node then takes the coordinator's rule)."""
    if args.rule is None:
        return None
    return {
        "rule": args.rule, "tau": args.tau, "rescale": args.rescale, "flame_noise": args.flame_noise, "norms": args.norms,
        "flame_space": args.flame_space,
    }


def _edge_trust(args: argparse.Namespace) -> dict:
    """``make_edge_node``'s trust settings from ``--trust-config FILE`` (TOML: its ``[trust]``
    table, as in experiment configs), ``--trust-devices``, ``--trust-store`` (default: the SQLite
    file ``CREDS/<party>.trust.db``) and ``--trust-t`` (the signers a missed round is adopted from:
    t of the edge accounts in ``CREDS/chain-accounts.json``); none without a file.

    Raises:
        ConfigError: the file is unreadable or not TOML, or ``--trust-devices`` is missing.
    """
    import tomllib

    from ppbfl.errors import ConfigError

    if args.trust_config is None:
        return {}
    try:
        with open(args.trust_config, "rb") as file:
            table = tomllib.load(file).get("trust", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError("trust_config", f"{args.trust_config}: {error}") from None
    if not isinstance(table, dict):
        raise ConfigError("trust_config", f"{args.trust_config}: [trust] must be a table")
    store = args.trust_store
    if store is None:  # beside the node's credentials: a restarted node still holds (and re-signs) its rounds
        from pathlib import Path

        store = f"sqlite:///{Path(args.creds).resolve() / f'{args.party}.trust.db'}"
    settings = {"trust_config": table, "trust_devices": args.trust_devices, "trust_store": store}
    if args.trust_t is not None:  # the consortium's edge accounts (public, from ppbfl creds) and t: catch-up
        from ppbfl.protocol.creds import read_chain_accounts
        from ppbfl.protocol.registry import identity_of

        edges = {party: address for party, address in read_chain_accounts(args.creds).items() if identity_of(party).role == "edge"}
        settings["trust_signers"] = {"accounts": sorted(edges.values()), "t": args.trust_t}
    return settings


def _creds(args: argparse.Namespace) -> int:
    from ppbfl.protocol.creds import party_ids, write_credentials
    from ppbfl.protocol.errors import CredentialsError

    try:
        parties = party_ids(edges=args.edges, devices=args.devices, dealer=args.dealer, coordinator=args.coordinator, extra=args.party)
        issued = write_credentials(args.out, parties, ca_dir=args.ca_dir, ca_name=args.ca_name, valid_days=args.days, force=args.force)
    except CredentialsError as exc:
        print(f"ppbfl creds: {exc}", file=sys.stderr)
        return 2
    origin = "new CA" if issued.ca_created else f"CA of {args.ca_dir}"
    print(f"# {len(issued.fingerprints)} parties in {issued.directory} ({origin}); party  SHA-256 certificate fingerprint")
    for party, fp in issued.fingerprints.items():
        print(f"{party} {fp.hex()}")
    for party, account in issued.chain_accounts.items():  # comment lines: the rows above stay "party fingerprint"
        print(f"# {party} chain account {account} (its key: {party}.chain.key; register this address)")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ppbfl.fl.config import load_config
    from ppbfl.fl.errors import ConfigError, FLError, UpdateRangeError
    from ppbfl.fl.report import write_all
    from ppbfl.fl.runner import run_experiment

    output = Path(args.output) if args.output else Path(args.config).parent
    command = f"ppbfl experiment {args.config}" + (f" --output {args.output}" if args.output else "") + (
        f" --jobs {args.jobs}" if args.jobs != 1 else "")
    try:
        config = load_config(args.config)
        results = run_experiment(config, progress=not args.no_progress, jobs=args.jobs)
    except (FLError, ConfigError, UpdateRangeError) as exc:
        print(f"ppbfl experiment: {exc}", file=sys.stderr)
        return 2
    written = write_all(results, output, command=command)
    for path in written.values():
        print(path)
    failed = [r for r in results if r.failed]
    for r in failed:
        c = r.cell
        print(f"ppbfl experiment: run failed: {c.dataset} {c.attack} {c.fraction:.0%} {c.defence} seed {c.seed}: "
              f"{r.error_type}: {r.error_message}", file=sys.stderr)
    if failed:
        print(f"ppbfl experiment: {len(failed)} of {len(results)} runs failed (recorded in {written['csv']})", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``ppbfl`` command's parser; each subcommand's ``args.run(args)`` runs it."""
    from ppbfl.ids.cli import add_parser as add_ids_parser

    parser = argparse.ArgumentParser(prog="ppbfl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show the field, the active kernel backend and versions")
    info.set_defaults(run=_info)
    demo = commands.add_parser("demo", help="secure, poisoning-resistant, on-chain federated learning on medical data")
    demo.add_argument("--dataset", default="breast_cancer", help="breast_cancer (default) or heart_failure")
    demo.add_argument("--devices", type=int, default=20, help="number of devices (default 20)")
    demo.add_argument("--malicious", type=float, default=0.3, help="fraction of malicious devices (default 0.3)")
    demo.add_argument("--attack", default="sign_flip", help="sign_flip (default), label_flip, scaling, noise, backdoor, adaptive")
    demo.add_argument("--rounds", type=int, default=10, help="training rounds (default 10)")
    demo.add_argument("-t", type=int, default=3, help="Shamir threshold (default 3)")
    demo.add_argument("-n", type=int, default=5, help="number of edge nodes (default 5)")
    demo.add_argument("--hidden", type=int, default=64, help="MLP hidden width (default 64)")
    demo.add_argument("--liar", type=int, default=2, help="edge node that returns a tampered aggregate share (0: none)")
    demo.add_argument("--kill-edge", type=int, default=0, help="edge node that goes offline (0: none)")
    demo.add_argument("--kill-round", type=int, default=2, help="round in which --kill-edge goes offline (default 2)")
    demo.add_argument("--transport", default="inprocess", choices=["inprocess", "grpc"], help="grpc: edge nodes and dealer as separate processes, mutual TLS")
    demo.add_argument(
        "--chain", default="embedded",
        help="embedded py-evm (default), anvil (a node started here) or URL: any JSON-RPC EVM node with unlocked accounts",
    )
    demo.add_argument("--seed", type=int, default=0, help="simulation seed (data split, model init, malicious devices)")
    demo.add_argument("--out", default="ppbfl-demo", help="folder for rounds.json and accuracy.png (default ppbfl-demo)")
    demo.add_argument(
        "--rule", default="cosine", choices=["cosine", "flame"],
        help="cosine (default): against a clean root set's update; flame: FLAME on shares, no root set",
    )
    demo.add_argument("--flame-noise", type=float, default=0.0, help="rule flame: noise level lambda added on shares (default 0)")
    demo.add_argument("--rescale", action="store_true", help="rule cosine: scale every accepted update to the reference norm (FLTrust)")
    demo.add_argument("--no-ids", action="store_true", help="no IDS evidence: the edge nodes' gateways run no detector, the trust records carry no flags")
    demo.set_defaults(run=_demo)
    edge = commands.add_parser("edge", help="serve one edge node over gRPC with mutual TLS (prints LISTENING host:port)")
    edge.add_argument("--party", required=True, help="this node's party id, edge-<index> (its certificate's common name)")
    edge.add_argument("--creds", required=True, help="folder with <party>.crt, <party>.key and <party>.chain.key (made by ppbfl creds)")
    edge.add_argument("--ca", required=True, help="the consortium CA certificate (PEM)")
    edge.add_argument("--registry", default=None, help="credential manifest: who may call, under which id (default: CREDS/registry.json, written by ppbfl creds)")
    edge.add_argument("--chain", default=None, help="JSON-RPC URL of the consortium's chain (or URL1,URL2,...: several endpoints, see --chain-agree): with --contract, callers' identities come from the contract's party registry instead of the manifest")
    edge.add_argument("--chain-agree", type=int, default=None, help="with several --chain endpoints: how many must give every answer identically (default: all)")
    edge.add_argument("--contract", default=None, help="with --chain: address of the consortium's PPBFLRounds contract")
    edge.add_argument("--registry-max-age", type=float, default=5.0, help="with --chain: seconds a chain answer is cached (a revoked party is refused within this bound; default 5)")
    edge.add_argument("--host", default="127.0.0.1")
    edge.add_argument("--port", type=int, default=0, help="0: any free port")
    edge.add_argument("--device-certs", default=None, help="folder with the devices' certificates (device-<i>.crt): every upload must be signed by its device's registered key (default: the --creds folder)")
    edge.add_argument("--unsigned-uploads", action="store_true", help="accept uploads without the device's signature (a node's mismatch claim then cannot be checked: it stays a dispute)")
    edge.add_argument("--behaviour", default="honest", choices=["honest", "tamper-aggregate", "tamper-verify"], help="fault injection for demonstrations")
    edge.add_argument("--trust-config", default=None, help="TOML file whose [trust] table is the consortium's trust model: the node then computes and signs each round's trust update")
    edge.add_argument("--trust-devices", type=int, default=0, help="with --trust-config: the number of registered devices (chain ids 0 .. m-1)")
    edge.add_argument(
        "--trust-t", type=int, default=None,
        help="with --trust-config: the consortium's t; the node then adopts a round it missed when t of the edge accounts in CREDS/chain-accounts.json signed it (catch-up; default: no catch-up)",
    )
    edge.add_argument(
        "--ids-flags", default=None, metavar="DIR",
        help="with --trust-config: the folder where this gateway's detector writes its counts per round (round-<r>.json, `ppbfl ids detect --flags-json`); the node signs them as its IDS report when asked (default: it reports none)",
    )
    edge.add_argument(
        "--reference", default=None, metavar="FILE",
        help="the consortium's root-set reference spec (JSON, ppbfl.fl.reference.ReferenceSpec): under rule cosine the node computes each round's "
        "reference from the round's global model itself and refuses a relayed one that differs (default: it takes the coordinator's)",
    )
    edge.add_argument(
        "--reference-tolerance", type=int, default=None, metavar="UNITS",
        help="with --reference: fixed-point units per entry a relayed reference may differ from the node's own (default 4: last-bit float differences)",
    )
    edge.add_argument("--state-dir", default=None, help="folder where the node keeps its setup, PRZS keys and spent counters (encrypted under its TLS key): restarted with the same folder it rejoins without a new setup of the tier")
    edge.add_argument("--trust-store", default=None, help="with --trust-config: the node's own trust store, a SQLAlchemy URL (default: sqlite:///CREDS/<party>.trust.db, so a restarted node keeps its rounds; sqlite:// keeps it in memory)")
    edge.add_argument(
        "--rule", default=None, choices=["cosine", "flame"],
        help="the consortium's decision rule: the node refuses a coordinator's setup with another rule or other options (default: it takes the coordinator's)",
    )
    edge.add_argument("--tau", type=float, default=0.0, help="with --rule cosine: the cosine threshold (default 0)")
    edge.add_argument("--rescale", action="store_true", help="with --rule cosine: FLTrust's norm rescaling")
    edge.add_argument("--flame-noise", type=float, default=0.0, help="with --rule flame: the noise level lambda (default 0)")
    edge.add_argument(
        "--flame-space", default="updates", choices=["updates", "models"],
        help="with --rule flame: cluster the updates (default) or the local models G + g_i (docs/flame.md)",
    )
    edge.add_argument(
        "--norms", default="auto", choices=["auto", "honest-majority"],
        help="open honest-majority norm (and FLAME Gram) shares only from 2t + 1 nodes (auto: a lying share is corrected) or from 2t - 1",
    )
    edge.add_argument(
        "--request-quorum", type=int, default=None, metavar="Q",
        help="answer a verify request only with endorsements of its hash by Q edge nodes, this one included, and only the one hash it endorsed "
        "in the round (for nodes without --chain: then every node answers the same request; Q > (n + t - 1) / 2, checked at setup; "
        "the coordinator must collect endorsements)",
    )
    edge.set_defaults(run=_edge)
    creds = commands.add_parser("creds", help="make a consortium CA and per-party TLS credentials in a folder; prints the fingerprints")
    creds.add_argument("--out", required=True, help="folder for ca.crt, ca.key (0600) and <party>.crt / <party>.key (0600)")
    creds.add_argument("--edges", type=int, default=0, help="edge-1 .. edge-N")
    creds.add_argument("--devices", type=int, default=0, help="device-0 .. device-(N-1)")
    creds.add_argument("--dealer", action="store_true", help="the triple dealer (party 'dealer')")
    creds.add_argument("--coordinator", action="store_true", help="the round coordinator (party 'coordinator')")
    creds.add_argument("--party", action="append", default=[], help="another party id (repeatable)")
    creds.add_argument("--ca-dir", default=None, help="issue from the existing CA in this folder (ca.crt, ca.key) instead of a new one")
    creds.add_argument("--ca-name", default="ppbfl consortium", help="common name of a new CA")
    creds.add_argument("--days", type=int, default=365, help="certificate lifetime in days (default 365)")
    creds.add_argument("--force", action="store_true", help="replace an existing CA or party credentials in --out")
    creds.set_defaults(run=_creds)
    experiment = commands.add_parser(
        "experiment", help="run a grid of FL poisoning experiments from a TOML config (exit 1: some runs failed, 2: bad config)",
    )
    experiment.add_argument("config", help="TOML config (see ppbfl.fl.config)")
    experiment.add_argument("--output", default=None, help="output folder (default: the config's folder)")
    experiment.add_argument("--no-progress", action="store_true", help="no progress bar")
    experiment.add_argument("--jobs", type=int, default=1, help="cells run in this many processes at once (default 1; same results)")
    experiment.set_defaults(run=_experiment)
    from ppbfl.protocol.registry_cli import add_registry_commands
    from ppbfl.trust.cli import add_trust_commands

    add_registry_commands(commands)
    add_trust_commands(commands)
    add_ids_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppbfl`` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
