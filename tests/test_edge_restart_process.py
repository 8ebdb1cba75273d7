"""``ppbfl edge --state-dir`` as a real process killed with SIGKILL and started again (issue 12, item 4).

Edge 1 is a ``ppbfl edge`` process, edge 2 an in-process node; the coordinator relays their PRZS
key agreement once. After ``kill -9`` edge 1 comes back from its state folder: it serves a
request that needs its setup, signed under the session agreed before the kill, and nobody is
sent a ``SetupEdge``.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.cli import main
from ppbfl.errors import PPBFLError
from ppbfl.protocol.edge_node import EdgeNode
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.messages import SetupEdge, UploadsQuery, UploadsReport
from ppbfl.protocol.registry import MANIFEST, FileRegistry
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.signed_shares import coin_digest
from ppbfl.protocol.tls import load_credentials
from ppbfl.protocol.transport import InProcessTransport
from tests.test_cli_edge import _env, _ppbfl
from tests.test_edge_restart import Counting


def start_edge(creds: Path, state: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        _ppbfl("edge", "--party", "edge-1", "--creds", str(creds), "--ca", str(creds / "ca.crt"), "--port", "0", "--state-dir", str(state)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    first = lines.get(timeout=120)
    assert first.startswith("LISTENING "), first
    return proc, first.split()[1]


class Router:
    """The coordinator's transport: edge-1 over gRPC (mutual TLS, pinned), edge-2 in process."""

    def __init__(self, creds: Path, address: str, node2) -> None:
        self.grpc = GrpcTransport(
            "coordinator", load_credentials(creds, "coordinator"), (creds / "ca.crt").read_bytes(), {"edge-1": address},
            fingerprints={"edge-1": load_credentials(creds, "edge-1").fingerprint},
        )
        self.local = InProcessTransport("coordinator", {"edge-2": node2})

    def call(self, party: str, message, **kwargs):
        return (self.grpc if party == "edge-1" else self.local).call(party, message, **kwargs)


def test_an_edge_process_killed_with_sigkill_comes_back_set_up_from_its_state_folder(tmp_path, capsys):
    creds, state = tmp_path / "creds", tmp_path / "state"
    assert main(["creds", "--out", str(creds), "--edges", "2", "--coordinator"]) == 0
    capsys.readouterr()
    node2 = Counting(EdgeNode(credentials=load_credentials(creds, "edge-2"), registry=FileRegistry(creds / MANIFEST)))
    proc, address = start_edge(creds, state)
    routes = Router(creds, address, node2)
    coordinator = Coordinator(2, 2, 8, routes)
    try:
        with pytest.raises(PPBFLError, match="before setup"):  # the control: a node that is not set up
            routes.call("edge-1", UploadsQuery(16), round=1, timeout=30.0)
        assert coordinator.setup() == (1, 2)
        session = node2.config.session
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        routes.grpc.close()
        proc, address = start_edge(creds, state)  # the same credentials and state folder
        routes.grpc = Router(creds, address, node2).grpc
        node2.kinds.clear()
        reply = routes.call("edge-1", UploadsQuery(16), round=1, timeout=30.0).message
        assert isinstance(reply, UploadsReport)
        key = load_credentials(creds, "edge-1").cert.public_key()  # its registered key, the session from before the kill
        key.verify(reply.coin_signature, coin_digest(session, 1, 1, reply.coin), ec.ECDSA(hashes.SHA256()))
        assert SetupEdge not in node2.kinds
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "not set up" not in proc.stderr.read()
    finally:
        coordinator.close()
        routes.grpc.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
