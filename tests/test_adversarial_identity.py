"""Attacks on identity (issue 12, DESIGN §11): a real edge node in its own process, gRPC + mutual TLS.

The consortium CA issued certificates to edge-1, edge-2, the coordinator, device-0 and device-6,
all registered in the deployment's credential manifest; the attacker also holds a certificate of
the same CA named "coordinator" that was never registered (a CA operator's mistake, a stolen
issuing key, a test certificate left valid). A server must take every caller's identity from the
registry, never from the certificate's name.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ppbfl.protocol.commitments import share_leaf
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.messages import DeviceUpload, ProofUpload, PRZSOffer, SetupEdge, UploadsQuery, UploadsReport
from ppbfl.protocol.process import spawn_server
from ppbfl.protocol.registry import MANIFEST, write_manifest
from ppbfl.protocol.tls import issue, make_ca, save_ca, save_credentials
from ppbfl.protocol.wire import encode
from tests.test_protocol_transport import child_env

T, N, D = 2, 3, 4
REGISTERED = ("edge-1", "edge-2", "coordinator", "device-0", "device-6")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """edge-1 served by ``python -m ppbfl.protocol.serve`` with the manifest; the parties' credentials."""
    ca = make_ca("ppbfl identity test")
    directory = tmp_path_factory.mktemp("identity-pki")
    save_ca(ca, directory)
    creds = {party: issue(ca, party) for party in REGISTERED}
    for c in creds.values():
        save_credentials(c, directory)
    write_manifest(directory / MANIFEST, {p: c.fingerprint for p, c in creds.items()})
    rogue = issue(ca, "coordinator")  # same CA, same name, never registered
    command = [
        sys.executable, "-m", "ppbfl.protocol.serve", "--handler", "ppbfl.protocol.deployment:make_edge_node",
        "--party", "edge-1", "--creds", str(directory), "--ca", str(directory / "ca.crt"), "--port", "0",
    ]
    with spawn_server(command, ready_timeout=60, env=child_env()) as proc:
        clients = {
            name: GrpcTransport(c.party_id, c, ca.cert_pem, {"edge-1": proc.address}, retries=0)
            for name, c in {**creds, "rogue": rogue}.items() if name != "edge-1"
        }
        setup = clients["coordinator"].call("edge-1", setup_edge(D), round=0, timeout=20)
        assert isinstance(setup.message, PRZSOffer)
        yield {"proc": proc, **clients}
        for client in clients.values():
            client.close()


def setup_edge(d: int) -> SetupEdge:
    return SetupEdge(index=1, t=T, n=N, d=d, frac_bits=16, tau=0.0, validity_k=40, session=b"\x01" * 32)


def setup_validity_length() -> int:
    """The proof length edge-1 expects (its setup's d and validity_k)."""
    from ppbfl.defense.validity import ValidityParams

    return ValidityParams.for_length(D).proof_length


def upload(round: int, device: int, value: int = 5) -> DeviceUpload:
    """A well-formed upload of ``device`` to edge-1 (its leaf among the n leaves matches)."""
    share = np.full(D, value, dtype=np.uint64)
    leaves = [share_leaf(round, device, j, 7, share=share) for j in range(1, N + 1)]
    return DeviceUpload(device=device, share=share, seed=None, stream=0, mask_share=7, leaves=leaves)


def held(node, round: int) -> list[int]:
    report = node["coordinator"].call("edge-1", UploadsQuery(64), round=round, timeout=20).message
    assert isinstance(report, UploadsReport)
    return list(report.devices)


def test_an_unregistered_certificate_named_coordinator_cannot_re_key_a_node(node):
    with pytest.raises(PeerAuthError) as refused:
        node["rogue"].call("edge-1", setup_edge(8), round=0, timeout=20)
    assert "'coordinator'" in str(refused.value) and "not registered" in str(refused.value)
    # the node kept the registered coordinator's setup: a d = 4 upload still fits, nothing was reset
    node["device-0"].call("edge-1", upload(1, 0), round=1, timeout=20)
    assert held(node, 1) == [0]
    assert node["proc"].alive()


def test_an_edge_node_certificate_cannot_act_as_a_device(node):
    with pytest.raises(PeerAuthError, match=r"edge-2.*may not upload"):
        node["edge-2"].call("edge-1", upload(2, 0), round=2, timeout=20)
    forged = encode(upload(2, 0), sender="device-0", round=2)  # claiming the device's id as sender
    with pytest.raises(PeerAuthError, match="sender"):
        node["edge-2"].call_bytes("edge-1", forged, timeout=20)
    assert held(node, 2) == []


def test_the_registry_gives_role_and_index_and_follows_its_manifest(tmp_path):
    from ppbfl.protocol.errors import CredentialsError
    from ppbfl.protocol.registry import FileRegistry, Identity, Registry

    fp = {party: bytes([k]) * 32 for k, party in enumerate(REGISTERED, start=1)}
    write_manifest(tmp_path / MANIFEST, fp)
    registry = FileRegistry(tmp_path / MANIFEST)
    assert registry.identify(fp["device-6"]) == Identity("device-6", "device", 6)
    assert registry.identify(fp["edge-2"]) == Identity("edge-2", "edge", 2)
    assert registry.identify(fp["coordinator"]) == Identity("coordinator", "coordinator", None)
    assert registry.identify(b"\xee" * 32) is None
    write_manifest(tmp_path / MANIFEST, {"device-7": b"\xee" * 32})  # a device joins while the node runs
    assert registry.identify(b"\xee" * 32) == Identity("device-7", "device", 7)
    (tmp_path / MANIFEST).unlink()
    write_manifest(tmp_path / MANIFEST, {"edge-1": fp["edge-1"]})  # the consortium revokes everyone else
    assert registry.identify(b"\xee" * 32) is None and registry.identify(fp["edge-1"]).party == "edge-1"
    with pytest.raises(CredentialsError, match="share one"):
        Registry({"device-1": fp["edge-1"], "edge-1": fp["edge-1"]})
    (tmp_path / "bad.json").write_text('{"version": 1, "parties": {"edge-1": "abcd"}}')
    with pytest.raises(CredentialsError, match="32 bytes"):
        FileRegistry(tmp_path / "bad.json")


def test_a_device_cannot_upload_under_another_devices_id(node):
    with pytest.raises(PeerAuthError, match=r"device-6.*device 0"):
        node["device-6"].call("edge-1", upload(3, 0, value=9), round=3, timeout=20)
    assert held(node, 3) == []
    node["device-0"].call("edge-1", upload(3, 0), round=3, timeout=20)  # the real device 0 is not crowded out
    node["device-6"].call("edge-1", upload(3, 6), round=3, timeout=20)  # and device 6 may upload its own
    proof = ProofUpload(device=0, bits=np.zeros(setup_validity_length(), dtype=np.uint64), mask_share=1)
    with pytest.raises(PeerAuthError, match=r"device-6.*device 0"):  # nor its validity proof
        node["device-6"].call("edge-1", proof, round=3, timeout=20)
    assert held(node, 3) == [0, 6]
