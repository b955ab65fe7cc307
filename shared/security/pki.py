"""A small certificate authority for operators and tests: a CA, server and device certificates.

Everything lives in one directory: `ca.key`/`ca.crt`, then `NAME.key`/`NAME.crt` per server or
device. Private keys are written 0600 and never overwritten unless asked, so a mistyped command
cannot destroy a CA that has already signed a fleet's certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.errors import EdgewardError

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
# A device id becomes a file name, a certificate CN and (with `use_identity_as_username`) the
# MQTT user name that ACL patterns substitute into topics: keep it to characters safe in all three.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PkiError(EdgewardError):
    """A certificate could not be made: missing CA, existing file, bad name or address."""


@dataclass(frozen=True)
class Issued:
    key: Path
    cert: Path


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value) or value in {"ca"}:
        raise PkiError(
            f"{what} {value!r} is not usable: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (and not 'ca')"
        )
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_private(path: Path, data: bytes, force: bool) -> None:
    """Create the key file 0600 from the start, so it is never readable by others even briefly."""
    if path.exists() and not force:
        raise PkiError(f"{path} already exists; pass --force to replace it or pick another name")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_public(path: Path, data: bytes, force: bool) -> None:
    if path.exists() and not force:
        raise PkiError(f"{path} already exists; pass --force to replace it or pick another name")
    path.write_bytes(data)
    path.chmod(0o644)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def init_ca(
    directory: Path, common_name: str = "edgeward CA", *, days: int = 3650, force: bool = False
) -> Issued:
    """A new self-signed CA in `directory` (created if missing)."""
    if days < 1:
        raise PkiError(f"--days is {days}; give at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if not force and (key_path.exists() or cert_path.exists()):
        raise PkiError(
            f"a CA already exists in {directory}; pass --force to replace it (every certificate "
            "it signed stops being trusted) or use another --dir"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key), force=True)
    _write_public(cert_path, _cert_pem(cert), force=True)
    return Issued(key_path, cert_path)


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if not key_path.exists() or not cert_path.exists():
        raise PkiError(
            f"no CA in {directory} ({CA_KEY} and {CA_CERT} expected); "
            f"run `edgeward certs init --dir {directory}` first"
        )
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path} is not an EC private key made by `edgeward certs init`")
    return key, x509.load_pem_x509_certificate(cert_path.read_bytes())


def _issue(
    directory: Path,
    name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    *,
    days: int,
    force: bool,
) -> Issued:
    if days < 1:
        raise PkiError(f"--days is {days}; give at least 1")
    ca_key, ca_cert = _load_ca(directory)
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    if not force and (key_path.exists() or cert_path.exists()):
        raise PkiError(
            f"{cert_path} or its key already exists; pass --force to reissue or pick another name"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_private(key_path, _key_pem(key), force=True)
    _write_public(cert_path, _cert_pem(cert), force=True)
    return Issued(key_path, cert_path)


def issue_server(
    directory: Path,
    name: str,
    *,
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    days: int = 825,
    force: bool = False,
) -> Issued:
    """A TLS server certificate; clients check the host they dial against `dns` and `ips`."""
    check_name(name, "server name")
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in (dns or [])]
    for ip in ips or []:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise PkiError(f"--ip {ip!r} is not an IP address; give e.g. 127.0.0.1") from None
    if not sans:
        raise PkiError(
            f"server {name!r} needs at least one --dns or --ip: clients check the address they "
            "dial against these names"
        )
    return _issue(directory, name, ExtendedKeyUsageOID.SERVER_AUTH, sans, days=days, force=force)


def issue_device(directory: Path, device_id: str, days: int = 825, force: bool = False) -> Issued:
    """A client certificate whose CN is the device id: the identity brokers and servers see."""
    check_name(device_id, "device id")
    return _issue(directory, device_id, ExtendedKeyUsageOID.CLIENT_AUTH, [], days=days, force=force)


def common_name(cert_pem: bytes) -> str:
    """The CN of a PEM certificate (how a server names the peer that presented it)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
