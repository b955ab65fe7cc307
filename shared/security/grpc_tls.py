"""Mutual-TLS credentials for gRPC from the files `edgeward certs` writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from shared.errors import ConfigError

# gRPC's auth context key for the peer certificate's CN (set when the client showed one).
PEER_CN = "x509_common_name"


@dataclass(frozen=True)
class TlsFiles:
    """A CA to trust, and this side's certificate and key (PEM files)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def _read(self) -> tuple[bytes, bytes, bytes]:
        out = []
        for what, path in (("CA", self.ca_file), ("cert", self.cert_file), ("key", self.key_file)):
            try:
                out.append(Path(path).read_bytes())
            except OSError as exc:
                raise ConfigError(
                    f"TLS {what} file {path} is unreadable ({exc}); make it with `edgeward certs`"
                ) from None
        return out[0], out[1], out[2]

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self._read()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side: a client without a certificate signed by the CA never gets a call in."""
        ca, cert, key = self._read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )


def peer_common_name(context: grpc.ServicerContext) -> str | None:
    """The CN of the client's verified certificate, or None."""
    values = context.auth_context().get(PEER_CN) or []
    return values[0].decode() if values else None
