"""Serve one party's handler over gRPC + mutual TLS, as a process entry point.

::

    python -m ppbfl.protocol.serve --handler ppbfl.protocol.testing:make_echo_handler \\
        --party edge-1 --creds DIR --ca DIR/ca.crt --port 0 [--handler-arg '{"key": 1}'] [--registry FILE]

imports ``module:factory``, builds the handler with ``factory(**handler_arg)``, loads
``DIR/<party>.crt`` and ``DIR/<party>.key`` and the credential manifest (``--registry``, default
``DIR/registry.json``: only the parties registered there may call, under their registered ids;
with ``--chain URL --contract ADDRESS`` the contract's party registry instead,
:class:`~ppbfl.protocol.chain_registry.ChainRegistry`), serves, prints ``LISTENING 127.0.0.1:PORT`` as its first
stdout line, and exits with status 0 on SIGTERM or SIGINT (in-flight calls get one second). With
``PPBFL_EXIT_ON_STDIN_EOF=1`` (set by :func:`ppbfl.protocol.process.spawn_server`) it also exits
when its stdin closes, so it never outlives its parent.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ppbfl.errors import PPBFLError
from ppbfl.protocol.grpc_transport import serve
from ppbfl.protocol.process import EXIT_ON_STDIN_EOF
from ppbfl.protocol.registry import MANIFEST, FileRegistry, PeerRegistry
from ppbfl.protocol.tls import PartyCredentials, load_credentials, read_ca_cert
from ppbfl.protocol.transport import Handler

__all__ = ["load_factory", "main", "run_server"]


def _watch_stdin(stop: threading.Event) -> None:
    # raw fd reads: a daemon thread blocked in a buffered stdin read aborts interpreter shutdown
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def run_server(
    handler: Handler,
    party_id: str,
    credentials: PartyCredentials,
    ca_pem: bytes,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    registry: PeerRegistry | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve until SIGTERM / SIGINT (or stdin EOF, see module docstring); return the exit status 0.

    Prints ``LISTENING host:port`` to ``out`` (default stdout) once the port is bound. Must run in
    the main thread (it installs signal handlers). ``registry``: who may call (see
    :func:`ppbfl.protocol.grpc_transport.serve`). A handler with an ``attach_identity(credentials,
    registry)`` method (an edge node: it signs with its TLS key) is given both first.
    """
    attach = getattr(handler, "attach_identity", None)
    if attach is not None:
        attach(credentials, registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if os.environ.get(EXIT_ON_STDIN_EOF) == "1":
        threading.Thread(target=_watch_stdin, args=(stop,), name="stdin-watch", daemon=True).start()
    server = serve(handler, party_id, credentials, ca_pem, host, port, registry=registry)
    print(f"LISTENING {host}:{server.port}", file=out or sys.stdout, flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(1.0)
    return 0


def load_factory(spec: str):
    """``"package.module:function"`` -> the function (the handler factory)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise SystemExit(f"--handler must be module:factory, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ppbfl.protocol.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--handler", required=True, help="module:factory returning the handler")
    parser.add_argument("--party", required=True, help="this party's id (certificate common name)")
    parser.add_argument("--creds", required=True, type=Path, help="directory with <party>.crt and <party>.key")
    parser.add_argument("--ca", required=True, type=Path, help="consortium CA certificate (PEM)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--registry", type=Path, default=None, help="credential manifest (default: CREDS/registry.json)")
    parser.add_argument("--chain", default=None, help="JSON-RPC URL: with --contract, callers' identities come from the contract's party registry, not the manifest")
    parser.add_argument("--contract", default=None, help="with --chain: the consortium's PPBFLRounds address")
    parser.add_argument("--chain-agree", type=int, default=None, help="with --chain URL1,URL2,...: how many endpoints must give every answer identically (default: all)")
    parser.add_argument("--handler-arg", default="{}", help="JSON object of keyword arguments for the factory")
    args = parser.parse_args(argv)
    if (args.chain is None) != (args.contract is None):
        parser.error("--chain and --contract go together")
    kwargs = json.loads(args.handler_arg)
    if not isinstance(kwargs, dict):
        parser.error("--handler-arg must be a JSON object")
    try:
        handler = load_factory(args.handler)(**kwargs)
        creds = load_credentials(args.creds, args.party)
        registry: PeerRegistry
        if args.chain is not None:
            from ppbfl.protocol.chain_registry import ChainRegistry

            registry = ChainRegistry.connect(args.chain, args.contract, agree=args.chain_agree)
        else:
            registry = FileRegistry(args.registry or args.creds / MANIFEST)
        return run_server(handler, args.party, creds, read_ca_cert(args.ca), host=args.host, port=args.port, registry=registry)
    except PPBFLError as exc:  # bad credentials, an unreachable chain, ...: one line, exit status 2
        print(f"{parser.prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
