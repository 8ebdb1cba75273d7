"""``ppbfl edge`` as a real process: credentials from ``ppbfl creds``, one mutual-TLS call, stop by PID; bad arguments.

The node it serves requires signed uploads by default: it takes each device's key from the device
certificates the manifest registers, so a node's mismatch claim can be checked (the Flower path's
edge tier; the Flower tests run it end to end with signing devices)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import ppbfl
from ppbfl.cli import build_parser, edge_node, main
from ppbfl.protocol.attribution import sign_upload, upload_signed
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.messages import PRZSOffer, SetupEdge
from ppbfl.protocol.przs_setup import offer_payload
from ppbfl.protocol.registry import MANIFEST
from ppbfl.protocol.tls import load_credentials

T, N = 2, 3


def _ppbfl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ppbfl.cli", *args]


def _env() -> dict[str, str]:
    root = str(Path(ppbfl.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _fingerprints(stdout: str) -> dict[str, bytes]:
    """``ppbfl creds`` output -> party id -> 32-byte fingerprint."""
    rows = [line.split() for line in stdout.splitlines() if line and not line.startswith("#")]
    return {party: bytes.fromhex(fp) for party, fp in rows}


def test_ppbfl_edge_serves_a_setup_call_over_mutual_tls_with_credentials_from_ppbfl_creds(tmp_path):
    made = subprocess.run(_ppbfl("creds", "--out", str(tmp_path), "--edges", "1", "--coordinator"),
                          check=False, capture_output=True, text=True, env=_env(), timeout=120)
    assert made.returncode == 0, made.stderr
    fingerprints = _fingerprints(made.stdout)
    assert sorted(fingerprints) == ["coordinator", "edge-1"]

    edge = subprocess.Popen(
        _ppbfl("edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt"), "--port", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        stdout = edge.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("<EOF>")

        threading.Thread(target=read, daemon=True).start()
        first = lines.get(timeout=120)
        assert first.startswith("LISTENING 127.0.0.1:"), (first, edge.poll(), edge.stderr.read() if edge.poll() is not None else "")
        address = first.split()[1]

        # the coordinator pins edge-1 to the fingerprint `ppbfl creds` printed
        coordinator = GrpcTransport(
            "coordinator", load_credentials(tmp_path, "coordinator"), (tmp_path / "ca.crt").read_bytes(),
            {"edge-1": address}, fingerprints={"edge-1": fingerprints["edge-1"]},
        )
        setup = SetupEdge(index=1, t=T, n=N, d=8, frac_bits=16, tau=0.0, validity_k=40, session=b"\x05" * 32)
        try:
            reply = coordinator.call("edge-1", setup, round=0, timeout=30.0, expect=PRZSOffer)
        finally:
            coordinator.close()
        assert reply.sender == "edge-1"
        # the node signed its PRZS offer with the key of the certificate `ppbfl creds` registered for it
        offer = reply.message
        cert = x509.load_pem_x509_certificate(offer.certificate)
        assert cert.fingerprint(hashes.SHA256()) == fingerprints["edge-1"]
        cert.public_key().verify(offer.signature, offer_payload(b"\x05" * 32, 1, T, N, offer.public_key), ec.ECDSA(hashes.SHA256()))

        os.kill(edge.pid, signal.SIGTERM)
        assert edge.wait(timeout=30) == 0
    finally:
        if edge.poll() is None:
            edge.kill()
            edge.wait()


def test_ppbfl_edge_without_credentials_exits_2_with_a_one_line_error(tmp_path):
    done = subprocess.run(
        _ppbfl("edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt")),
        check=False, capture_output=True, text=True, env=_env(), timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"ppbfl edge: CredentialsError: missing credentials file {tmp_path / 'edge-1.crt'}"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--party": "Edge_1"}, "party id 'Edge_1' is not valid"),
        ({"--party": "edge-2"}, "missing credentials file"),
        ({"--ca": "nowhere.crt"}, "missing credentials file"),
        ({"--ca": "edge-1.key"}, "not a PEM X.509 certificate"),
    ],
)
def test_ppbfl_edge_bad_credentials_are_named_with_exit_status_2(tmp_path, capsys, change, message):
    write_credentials(tmp_path, ["edge-1"])
    args = {"--party": "edge-1", "--creds": str(tmp_path), "--ca": "ca.crt", **change}
    args["--ca"] = str(tmp_path / args["--ca"])
    assert main(["edge", *[item for pair in args.items() for item in pair]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppbfl edge: CredentialsError: ") and message in err, err


def test_ppbfl_edge_rejects_an_unknown_behaviour(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt"), "--behaviour", "evil"])
    assert exited.value.code == 2
    assert "invalid choice: 'evil'" in capsys.readouterr().err


ROOT = b"\x42" * 32


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("edge-cli") / "creds"
    write_credentials(folder, party_ids(edges=3, devices=2, coordinator=True))
    return folder


def _args(creds: Path, *extra: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["edge", "--party", "edge-1", "--creds", str(creds), "--ca", str(creds / "ca.crt"), *extra])


def _public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_served_node_checks_uploads_against_the_registered_device_keys(creds: Path) -> None:
    node = edge_node(_args(creds))
    assert node.device_keys is not None
    for device in (0, 1):
        own = load_credentials(creds, f"device-{device}").key
        key = node.device_keys(device)
        assert key is not None and _public_der(key) == _public_der(own.public_key())
        assert upload_signed(key, 3, device, ROOT, sign_upload(own, 3, device, ROOT))
    # device 1's key does not sign for device 0, and an unregistered device has no key at all
    other = load_credentials(creds, "device-1").key
    assert not upload_signed(node.device_keys(0), 3, 0, ROOT, sign_upload(other, 3, 0, ROOT))  # type: ignore[arg-type]
    assert node.device_keys(7) is None


def test_a_device_removed_from_the_manifest_loses_its_key(tmp_path: Path, creds: Path) -> None:
    folder = tmp_path / "creds"
    shutil.copytree(creds, folder)  # keeps the 0600 key files' modes
    node = edge_node(_args(folder))
    assert node.device_keys is not None and node.device_keys(1) is not None
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["parties"]["device-1"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert node.device_keys(1) is None and node.device_keys(0) is not None


def test_unsigned_uploads_is_an_explicit_choice(creds: Path) -> None:
    assert edge_node(_args(creds, "--unsigned-uploads")).device_keys is None


def test_a_device_certs_folder_without_a_manifest_is_a_typed_error(tmp_path: Path, creds: Path) -> None:
    with pytest.raises(CredentialsError):
        edge_node(_args(creds, "--device-certs", str(tmp_path)))


def test_the_server_entry_point_names_bad_credentials_and_exits_2(tmp_path, capsys):
    """``python -m ppbfl.protocol.serve`` (the dealer's and any served handler's entry point): a typed
    one-line error, not a traceback."""
    from ppbfl.protocol.serve import main as serve_main

    code = serve_main(["--handler", "ppbfl.protocol.testing:make_echo_handler", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "CredentialsError" in err and "edge-1.crt" in err
