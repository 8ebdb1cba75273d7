"""Attack: a peer that speaks TLS 1.2 (or older) to a ppbfl gRPC server (issue 12: TLS 1.3 only).

The server runs in its own process (``python -m ppbfl.protocol.serve``) on 127.0.0.1, so the
handshake is the one a deployment's edge node makes; the attacker is Python's ``ssl`` module
with a valid client certificate of the consortium.
"""

from __future__ import annotations

import socket
import ssl

import pytest

from ppbfl.protocol.process import spawn_server
from ppbfl.protocol.registry import MANIFEST, write_manifest
from ppbfl.protocol.tls import issue, make_ca, save_ca, save_credentials
from tests.test_protocol_transport import child_env, echo_server_args


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory):
    ca = make_ca("ppbfl tls test")
    directory = tmp_path_factory.mktemp("tls-pki")
    save_ca(ca, directory)
    creds = {party: issue(ca, party) for party in ("edge-1", "device-1")}
    for c in creds.values():
        save_credentials(c, directory)
    write_manifest(directory / MANIFEST, {p: c.fingerprint for p, c in creds.items()})
    return {"ca": ca, "dir": directory}


def handshake(pki, port: int, version: ssl.TLSVersion) -> str:
    """A mutual-TLS handshake pinned to ``version``; returns the negotiated version or raises ssl.SSLError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_verify_locations(cafile=str(pki["dir"] / "ca.crt"))
    ctx.load_cert_chain(str(pki["dir"] / "device-1.crt"), str(pki["dir"] / "device-1.key"))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, ctx.wrap_socket(sock, server_hostname="edge-1") as tls:
        tls.getpeercert()
        return str(tls.version())


def test_a_tls12_handshake_with_a_server_fails_and_tls13_succeeds(tls_pki):
    with spawn_server(echo_server_args(tls_pki), ready_timeout=60, env=child_env()) as proc:
        with pytest.raises(ssl.SSLError):
            handshake(tls_pki, proc.port, ssl.TLSVersion.TLSv1_2)
        assert handshake(tls_pki, proc.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert proc.alive()  # the refused handshake did not take the server down
