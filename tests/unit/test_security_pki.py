"""`edgeward certs`: the certificates it makes complete a real mutual-TLS handshake."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from shared.cli import main
from shared.security.pki import (
    PkiError,
    common_name,
    init_ca,
    issue_device,
    issue_server,
)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_cli_makes_ca_server_and_device_with_private_keys_0600(tmp_path: Path, capsys) -> None:
    d = tmp_path / "pki"
    assert main(["certs", "init", "--dir", str(d)]) == 0
    assert main(["certs", "server", "broker", "--dir", str(d), "--ip", "127.0.0.1"]) == 0
    assert main(["certs", "device", "J3", "--dir", str(d)]) == 0
    for name in ("ca", "broker", "J3"):
        assert _mode(d / f"{name}.key") == 0o600
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    for name in ("broker", "J3"):
        cert = x509.load_pem_x509_certificate((d / f"{name}.crt").read_bytes())
        cert.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert common_name((d / "J3.crt").read_bytes()) == "J3"
    server = x509.load_pem_x509_certificate((d / "broker.crt").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert "private key" in capsys.readouterr().out


def test_errors_name_the_problem_and_keep_existing_files(tmp_path: Path, capsys) -> None:
    d = tmp_path / "pki"
    with pytest.raises(PkiError, match="run `edgeward certs init"):
        issue_device(d, "J1")
    init_ca(d)
    before = (d / "ca.key").read_bytes()
    with pytest.raises(PkiError, match="already exists"):
        init_ca(d)
    assert (d / "ca.key").read_bytes() == before
    with pytest.raises(PkiError, match="not usable"):
        issue_device(d, "../evil")
    with pytest.raises(PkiError, match="not an IP address"):
        issue_server(d, "broker", ips=["localhost"])
    with pytest.raises(PkiError, match="at least one --dns or --ip"):
        issue_server(d, "broker")
    issue_device(d, "J1")
    with pytest.raises(PkiError, match="--force"):
        issue_device(d, "J1")
    # Through the CLI the same error is one line, exit status 2, no traceback.
    assert main(["certs", "device", "J1", "--dir", str(d)]) == 2
    assert "already exists" in capsys.readouterr().err


def _handshake(d: Path, client_cert: str | None, ca_file: Path) -> str:
    """Serve one mTLS connection with `broker`'s cert; return the client's CN as the server saw."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(d / "broker.crt", d / "broker.key")
    server_ctx.load_verify_locations(d / "ca.crt")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    peer: Any = tls.getpeercert() or {}
                    seen.extend(v for rdn in peer.get("subject", ()) for k, v in rdn)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                seen.append("refused")

        t = threading.Thread(target=serve)
        t.start()
        client_ctx = ssl.create_default_context(cafile=str(ca_file))
        if client_cert:
            client_ctx.load_cert_chain(d / f"{client_cert}.crt", d / f"{client_cert}.key")
        try:
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.recv(2)
        except (ssl.SSLError, OSError):
            pass
        t.join(timeout=10)
    return seen[0] if seen else "none"


def test_certificates_complete_a_mutual_tls_handshake(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    init_ca(d)
    issue_server(d, "broker", ips=["127.0.0.1"])
    issue_device(d, "clinic-a-gw1")
    assert _handshake(d, "clinic-a-gw1", d / "ca.crt") == "clinic-a-gw1"
    # No client certificate: the server refuses.
    assert _handshake(d, None, d / "ca.crt") == "refused"
    # A device certificate from another CA: refused too.
    other = tmp_path / "other"
    init_ca(other)
    issue_device(other, "clinic-a-gw1")
    (d / "rogue.crt").write_bytes((other / "clinic-a-gw1.crt").read_bytes())
    (d / "rogue.key").write_bytes((other / "clinic-a-gw1.key").read_bytes())
    assert _handshake(d, "rogue", d / "ca.crt") == "refused"
