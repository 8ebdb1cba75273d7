"""``ppbfl trust show DEVICE``, ``ppbfl trust prove DEVICE ROUND`` and ``ppbfl trust verify PROOF``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_trust_commands"]

_STORE_HELP = "trust store database URL (SQLAlchemy; default sqlite:///ppbfl-trust.db, e.g. postgresql+psycopg://user@host/db)"


def _show(args: argparse.Namespace) -> int:
    from ppbfl.defense.decision import REASON_CODES
    from ppbfl.trust.reputation import TRUST_ONE
    from ppbfl.trust.store import TrustStore, safe_url

    names = {code: name for name, code in REASON_CODES.items()}
    with TrustStore(args.store) as store:
        history = store.history(args.device)
    if not history:
        print(f"ppbfl trust: no records of device {args.device} in {safe_url(args.store)}", file=sys.stderr)
        return 2
    print(f"# device {args.device}: {len(history)} rounds")
    print(f"{'round':>5}  {'evidence':<26} {'cosine':>7} {'weight':>7} {'trust before':>12} {'trust after':>11} {'quarantined':>11} {'pow bits':>8}")
    for x in history:
        evidence = names[x.evidence.reason] + (" +pow" if x.evidence.pow_failed else "") + (f" +ids{x.evidence.ids_flags}" if x.evidence.ids_flags else "")
        print(
            f"{x.round:>5}  {evidence:<26} {x.cosine:>7.3f} {x.weight:>7.3f} {x.before.trust / TRUST_ONE:>12.4f} "
            f"{x.after.trust / TRUST_ONE:>11.4f} {'yes' if x.after.quarantined else 'no':>11} {x.pow_bits:>8}"
        )
    return 0


def _prove(args: argparse.Namespace) -> int:
    from ppbfl.trust.store import TrustStore

    with TrustStore(args.store) as store:
        proof = store.prove(args.device, args.round)
    print(proof.to_json())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ppbfl.chain import Chain
    from ppbfl.chain.rounds import RoundsContract, load_artifact
    from ppbfl.trust.proof import TrustProof, verify_on_chain

    proof = TrustProof.from_json(Path(args.proof).read_text() if args.proof != "-" else sys.stdin.read())
    chain = Chain.connect(args.chain)
    try:
        ok = verify_on_chain(proof, RoundsContract(chain, args.contract, load_artifact()["abi"]))
    finally:
        chain.close()
    x = proof.record
    print(f"device {x.device}, round {x.round}: {'VALID' if ok else 'INVALID'} against the root anchored on chain at {args.contract}")
    return 0 if ok else 1


def _run(args: argparse.Namespace) -> int:
    from ppbfl.errors import PPBFLError

    try:
        result: int = args.trust_run(args)
    except (PPBFLError, OSError) as exc:  # OSError: an unreadable proof file
        print(f"ppbfl trust: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return result


def add_trust_commands(commands: Any) -> None:
    """Add the ``trust`` command and its subcommands to an argparse subparsers object."""
    trust = commands.add_parser("trust", help="device reputation: history, Merkle proofs, chain-only verification")
    sub = trust.add_subparsers(dest="trust_command", required=True)
    show = sub.add_parser("show", help="print a device's trust history from the off-chain store")
    show.add_argument("device", type=int)
    show.add_argument("--store", default="sqlite:///ppbfl-trust.db", help=_STORE_HELP)
    show.set_defaults(run=_run, trust_run=_show)
    prove = sub.add_parser("prove", help="print (JSON) the Merkle proof of a device's record of a round")
    prove.add_argument("device", type=int)
    prove.add_argument("round", type=int)
    prove.add_argument("--store", default="sqlite:///ppbfl-trust.db", help=_STORE_HELP)
    prove.set_defaults(run=_run, trust_run=_prove)
    verify = sub.add_parser("verify", help="check a proof against the root anchored on chain (exit 0 valid, 1 invalid)")
    verify.add_argument("proof", help="proof JSON file (- for stdin)")
    verify.add_argument("--chain", required=True, help="JSON-RPC URL of the chain")
    verify.add_argument("--contract", required=True, help="PPBFLRounds address")
    verify.set_defaults(run=_run, trust_run=_verify)
