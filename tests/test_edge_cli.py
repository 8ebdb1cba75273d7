"""``ppbfl edge`` requires signed uploads by default: the node it serves takes each device's key
from the device certificates the manifest registers, so a node's mismatch claim can be checked
(the Flower path's edge tier; the Flower tests run it end to end with signing devices)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.cli import build_parser, edge_node
from ppbfl.protocol.attribution import sign_upload, upload_signed
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.registry import MANIFEST
from ppbfl.protocol.tls import load_credentials

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
