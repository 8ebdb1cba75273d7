"""``ppbfl creds`` / :mod:`ppbfl.protocol.creds`: a CA and per-party credentials in a folder."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509

from ppbfl.cli import main
from ppbfl.protocol.creds import party_ids, write_credentials
from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.tls import fingerprint, load_ca, load_credentials


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError):
        return False
    return True


def test_party_ids_of_a_deployment():
    assert party_ids(edges=2, devices=3, dealer=True, coordinator=True, extra=["gateway-1", "edge-1"]) == [
        "edge-1", "edge-2", "device-0", "device-1", "device-2", "dealer", "coordinator", "gateway-1",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"edges": -1}, "edges must be an int >= 0"),
        ({"devices": 2.5}, "devices must be an int >= 0"),
        ({}, "no parties"),
        ({"extra": ["Edge 1"]}, "party id 'Edge 1' is not valid"),
    ],
)
def test_party_ids_reject_bad_counts_and_names(kwargs, message):
    with pytest.raises(CredentialsError, match=message):
        party_ids(**kwargs)


def test_a_new_ca_and_parties_with_private_keys_0600_and_their_fingerprints(tmp_path):
    issued = write_credentials(tmp_path / "consortium", ["edge-1", "device-0"], ca_name="test consortium")
    folder = tmp_path / "consortium"
    assert issued.directory == folder and issued.ca_created
    assert (_mode(folder / "ca.key"), _mode(folder / "ca.crt")) == (0o600, 0o644)
    ca = load_ca(folder)
    assert ca.name == "test consortium"
    assert list(issued.fingerprints) == ["edge-1", "device-0"]
    for party, fp in issued.fingerprints.items():
        assert (_mode(folder / f"{party}.key"), _mode(folder / f"{party}.crt")) == (0o600, 0o644)
        creds = load_credentials(folder, party)
        assert creds.fingerprint == fp == fingerprint((folder / f"{party}.crt").read_bytes())
        assert _issued_by(creds.cert_pem, ca.cert_pem)


def test_an_existing_ca_is_not_replaced_unless_forced_and_nothing_is_written_on_refusal(tmp_path):
    write_credentials(tmp_path, ["edge-1"])
    ca_key = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(CredentialsError, match="--ca-dir"):
        write_credentials(tmp_path, ["edge-2"])
    assert (tmp_path / "ca.key").read_bytes() == ca_key and not (tmp_path / "edge-2.crt").exists()

    write_credentials(tmp_path, ["edge-1"], force=True)
    assert (tmp_path / "ca.key").read_bytes() != ca_key
    assert _issued_by((tmp_path / "edge-1.crt").read_bytes(), (tmp_path / "ca.crt").read_bytes())


def test_more_parties_from_an_existing_ca_in_the_same_or_another_folder(tmp_path):
    ca_dir, other = tmp_path / "ca", tmp_path / "devices"
    write_credentials(ca_dir, ["edge-1"])
    ca_pem = (ca_dir / "ca.crt").read_bytes()

    more = write_credentials(ca_dir, ["edge-2"], ca_dir=ca_dir)
    assert not more.ca_created and (ca_dir / "ca.crt").read_bytes() == ca_pem
    assert _issued_by((ca_dir / "edge-2.crt").read_bytes(), ca_pem)

    write_credentials(other, ["device-0"], ca_dir=ca_dir)
    assert (other / "ca.crt").read_bytes() == ca_pem and not (other / "ca.key").exists()
    assert _issued_by((other / "device-0.crt").read_bytes(), ca_pem)

    with pytest.raises(CredentialsError, match="device-0 already exist"):
        write_credentials(other, ["device-1", "device-0"], ca_dir=ca_dir)
    assert not (other / "device-1.crt").exists()

    write_credentials(tmp_path / "ca2", ["edge-1"])
    with pytest.raises(CredentialsError, match="another CA's certificate"):
        write_credentials(other, ["device-1"], ca_dir=tmp_path / "ca2")
    with pytest.raises(CredentialsError, match="missing credentials file"):
        write_credentials(other, ["device-1"], ca_dir=tmp_path / "nowhere")


def test_ppbfl_creds_prints_each_party_fingerprint_and_refuses_to_replace_the_ca(tmp_path, capsys):
    assert main(["creds", "--out", str(tmp_path), "--edges", "2", "--dealer", "--party", "gateway-1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert [party for party, _ in rows] == ["edge-1", "edge-2", "dealer", "gateway-1"]
    for party, fp in rows:
        assert bytes.fromhex(fp) == fingerprint((tmp_path / f"{party}.crt").read_bytes())

    assert main(["creds", "--out", str(tmp_path), "--devices", "1"]) == 2
    assert "ppbfl creds: " in capsys.readouterr().err and not (tmp_path / "device-0.crt").exists()
    assert main(["creds", "--out", str(tmp_path), "--ca-dir", str(tmp_path), "--devices", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("device-0 ")
