"""A clinic gateway never sends scans across a network in clear: a cloud that is not on this
machine needs `cloud.tls` (mutual TLS through `edgeward grpc-tls`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config.clinic import CloudUplink

TLS = {"ca_file": "/etc/edgeward/ca.crt", "cert_file": "/e/c.crt", "key_file": "/e/c.key"}


@pytest.mark.parametrize("target", ["cloud.example.org:9443", "10.0.0.5:9000", "[2001:db8::1]:1"])
def test_a_remote_cloud_without_tls_is_refused_naming_what_to_add(target: str) -> None:
    with pytest.raises(ValidationError, match=r"cloud\.tls .*edgeward certs device"):
        CloudUplink(grpc_target=target)
    assert CloudUplink(grpc_target=target, tls=TLS).tls is not None


@pytest.mark.parametrize("target", ["127.0.0.1:9000", "localhost:9000", "[::1]:9000"])
def test_a_cloud_on_loopback_may_be_plain(target: str) -> None:
    assert CloudUplink(grpc_target=target).tls is None


def test_tls_needs_all_three_files() -> None:
    with pytest.raises(ValidationError, match="key_file"):
        CloudUplink(grpc_target="cloud:9443", tls={k: v for k, v in TLS.items() if k != "key_file"})
    assert CloudUplink(grpc_target="c:1", tls=TLS).tls.cert_file == Path("/e/c.crt")  # type: ignore[union-attr]
