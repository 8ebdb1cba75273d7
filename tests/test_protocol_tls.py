"""Per-party certificates: contents, fingerprints, files on disk."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.tls import (
    fingerprint,
    issue,
    load_ca,
    load_credentials,
    make_ca,
    party_id_of,
    save_ca,
    save_credentials,
)


@pytest.fixture(scope="module")
def ca():
    return make_ca("ppbfl test consortium")


@pytest.fixture(scope="module")
def edge(ca):
    return issue(ca, "edge-3")


def test_certificate_names_the_party_and_is_valid_for_loopback(ca, edge):
    cert = x509.load_pem_x509_certificate(edge.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "edge-3"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edge-3", "localhost"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:ppbfl:party:edge-3"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    assert cert.issuer == ca.cert.subject
    ca.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    assert party_id_of(edge.cert_pem) == "edge-3"


def test_fingerprint_is_sha256_of_der_and_stable(ca, edge):
    der = x509.load_pem_x509_certificate(edge.cert_pem).public_bytes(serialization.Encoding.DER)
    fp = fingerprint(edge.cert_pem)
    assert fp == hashlib.sha256(der).digest() and len(fp) == 32
    assert fingerprint(edge.cert_pem) == fp == edge.fingerprint
    assert fingerprint(issue(ca, "edge-3").cert_pem) != fp  # a re-issued certificate is another identity


def test_save_and_load_round_trip_with_private_key_files(tmp_path, ca, edge):
    save_ca(ca, tmp_path)
    save_credentials(edge, tmp_path)
    assert stat.S_IMODE((tmp_path / "edge-3.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    loaded = load_credentials(tmp_path, "edge-3")
    assert loaded.fingerprint == edge.fingerprint and loaded.key_pem == edge.key_pem
    assert load_ca(tmp_path).cert_pem == ca.cert_pem


def test_loading_bad_credentials_raises(tmp_path, ca, edge):
    save_credentials(edge, tmp_path)
    with pytest.raises(CredentialsError, match="missing"):
        load_credentials(tmp_path, "edge-4")
    (tmp_path / "edge-4.crt").write_bytes(edge.cert_pem)
    (tmp_path / "edge-4.key").write_bytes(edge.key_pem)
    with pytest.raises(CredentialsError, match="issued to 'edge-3'"):
        load_credentials(tmp_path, "edge-4")
    other = issue(ca, "edge-5")
    (tmp_path / "edge-3.key").write_bytes(other.key_pem)
    with pytest.raises(CredentialsError, match="does not match"):
        load_credentials(tmp_path, "edge-3")
    with pytest.raises(CredentialsError, match="not a PEM"):
        fingerprint(b"garbage")


@pytest.mark.parametrize("bad", ["", "Edge-1", "edge_1", "-edge", "a" * 64, "edge 1"])
def test_party_ids_must_be_dns_labels(ca, bad):
    with pytest.raises(CredentialsError, match="party id"):
        issue(ca, bad)
