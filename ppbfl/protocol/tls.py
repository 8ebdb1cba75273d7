"""Per-party TLS credentials for the consortium: one CA, one ECDSA P-256 certificate per party.

Every party (device, edge node, dealer, aggregator) holds a key and an X.509 certificate issued by
the consortium CA. The certificate names the party id three times: as the subject common name
(what a server reads from ``auth_context()`` to authenticate a client), as a SAN DNS name (what a
client pins with ``grpc.ssl_target_name_override`` to authenticate a server), and as a SAN URI
``urn:ppbfl:party:<id>``. It is also valid for ``localhost`` / ``127.0.0.1`` and carries both the
serverAuth and clientAuth extended key usages, so one certificate serves both ends of mutual TLS.

:func:`fingerprint` (SHA-256 of the DER certificate, 32 bytes) is what the chain registers as a
``bytes32`` for each party; transports can pin peers to it.

Party ids are DNS-label-like: ``[a-z0-9]``, inner ``-`` / ``.``, at most 63 characters
(``edge-3``, ``device-17``, ``dealer``).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ppbfl.protocol.errors import CredentialsError

__all__ = [
    "CertAuthority",
    "PartyCredentials",
    "check_party_id",
    "fingerprint",
    "issue",
    "load_ca",
    "load_credentials",
    "make_ca",
    "party_id_of",
    "read_ca_cert",
    "save_ca",
    "save_credentials",
]

_PARTY_ID = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
#: certificates are back-dated by this much against clock skew between parties
_SKEW = _dt.timedelta(minutes=5)


def check_party_id(party_id: str) -> str:
    """Return ``party_id`` if it is a valid party id (see module docstring), else raise CredentialsError."""
    if not isinstance(party_id, str) or not _PARTY_ID.match(party_id):
        raise CredentialsError(
            f"party id {party_id!r} is not valid: use [a-z0-9], inner '-' or '.', at most 63 characters"
        )
    return party_id


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _KeyAndCert:
    """PEM views of a ``key`` and ``cert`` pair."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The certificate, PEM."""
        return _pem_cert(self.cert)

    @property
    def key_pem(self) -> bytes:
        """The private key, PKCS#8 PEM, unencrypted."""
        return _pem_key(self.key)


@dataclass(frozen=True)
class CertAuthority(_KeyAndCert):
    """The consortium CA: ``name`` (its common name), its P-256 ``key`` and self-signed ``cert``.

    ``cert_pem`` is every party's trust root; keep ``key_pem`` off the parties' machines.
    """

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class PartyCredentials(_KeyAndCert):
    """One party's TLS identity: ``party_id``, its P-256 ``key`` and CA-issued ``cert``."""

    party_id: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the DER certificate: 32 bytes (the value registered on chain)."""
        return self.cert.fingerprint(hashes.SHA256())


def make_ca(name: str, *, valid_days: int = 365) -> CertAuthority:
    """A fresh consortium CA named ``name``: self-signed P-256 certificate, ``valid_days`` long."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertAuthority(name=name, key=key, cert=cert)


def issue(ca: CertAuthority, party_id: str, *, valid_days: int = 365) -> PartyCredentials:
    """Issue ``party_id`` a fresh P-256 key and certificate signed by ``ca`` (see module docstring)."""
    check_party_id(party_id)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.UTC)
    san = x509.SubjectAlternativeName([
        x509.DNSName(party_id),
        x509.UniformResourceIdentifier(f"urn:ppbfl:party:{party_id}"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party_id)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return PartyCredentials(party_id=party_id, key=key, cert=cert)


def _load_cert(cert_pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(f"{what}: not a PEM X.509 certificate ({exc})") from None


def fingerprint(cert_pem: bytes) -> bytes:
    """SHA-256 of the DER encoding of the PEM certificate ``cert_pem``: 32 bytes (chain ``bytes32``)."""
    return _load_cert(cert_pem, "fingerprint").fingerprint(hashes.SHA256())


def party_id_of(cert_pem: bytes) -> str:
    """The party id (subject common name) of the PEM certificate ``cert_pem``."""
    names = _load_cert(cert_pem, "party_id_of").subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CredentialsError(f"certificate has {len(names)} common names, expected 1")
    return str(names[0].value)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # O_CREAT's mode only applies to new files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"missing credentials file {path}") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None


def read_ca_cert(path: str | os.PathLike) -> bytes:
    """The consortium CA certificate (PEM bytes) at ``path``.

    Raises :class:`CredentialsError` if the file is missing or is not a PEM X.509 certificate.
    """
    cert_pem = _read(Path(path))
    _load_cert(cert_pem, str(path))
    return cert_pem


def save_ca(ca: CertAuthority, directory: str | os.PathLike) -> None:
    """Write ``ca.crt`` (0644) and ``ca.key`` (0600) into ``directory`` (created if needed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "ca.crt", ca.cert_pem, 0o644)
    _write(d / "ca.key", ca.key_pem, 0o600)


def load_ca(directory: str | os.PathLike) -> CertAuthority:
    """Read the CA written by :func:`save_ca` from ``directory``."""
    d = Path(directory)
    cert = _load_cert(_read(d / "ca.crt"), str(d / "ca.crt"))
    key = serialization.load_pem_private_key(_read(d / "ca.key"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{d / 'ca.key'}: not an EC private key")
    name = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    return CertAuthority(name=name, key=key, cert=cert)


def save_credentials(creds: PartyCredentials, directory: str | os.PathLike) -> None:
    """Write ``<party_id>.crt`` (0644) and ``<party_id>.key`` (0600) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / f"{creds.party_id}.crt", creds.cert_pem, 0o644)
    _write(d / f"{creds.party_id}.key", creds.key_pem, 0o600)


def load_credentials(directory: str | os.PathLike, party_id: str) -> PartyCredentials:
    """Read ``party_id``'s credentials written by :func:`save_credentials` from ``directory``.

    Raises :class:`CredentialsError` if a file is missing, the certificate is for another party,
    or the key does not match the certificate.
    """
    check_party_id(party_id)
    d = Path(directory)
    cert_pem = _read(d / f"{party_id}.crt")
    cert = _load_cert(cert_pem, str(d / f"{party_id}.crt"))
    try:
        key = serialization.load_pem_private_key(_read(d / f"{party_id}.key"), password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(f"{d / f'{party_id}.key'}: not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{d / f'{party_id}.key'}: not an EC private key")
    if party_id_of(cert_pem) != party_id:
        raise CredentialsError(f"{d / f'{party_id}.crt'} is issued to {party_id_of(cert_pem)!r}, not {party_id!r}")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise CredentialsError(f"{d / f'{party_id}.key'} does not match {party_id}'s certificate")
    return PartyCredentials(party_id=party_id, key=key, cert=cert)
