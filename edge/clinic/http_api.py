"""The upload API for clinic devices: POST /scans, GET /scans/{id}, /healthz, /status, /metrics.

Every route but /healthz (a liveness probe that names no patient) needs a client's bearer
token. At most `max_connections` connections are served at once; one more is answered 503
at once instead of starting yet another thread (a flood must not exhaust the box).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edge.clinic.auth import UNAUTHENTICATED, ApiTokens
from edge.clinic.ports import (
    ConflictError,
    GatewayHealth,
    InsufficientStorageError,
    ScanIntake,
    ScanReader,
    SubmissionError,
)

log = logging.getLogger(__name__)

# Headers that carry scan metadata when the file itself does not (e.g. a JPEG).
META_HEADERS = {"x-patient-id": "patient_id", "x-laterality": "laterality"}
META_PREFIX = "x-meta-"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # a stalled client must not hold a thread forever

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode() + b"\n", "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": status.phrase, "detail": message})

    def _authenticated(self) -> bool:
        if self.server.tokens.client_for(self.headers.get("Authorization")) is not None:
            return True
        self.close_connection = True  # an unread body must not be parsed as a request
        self.send_response(HTTPStatus.UNAUTHORIZED)
        body = json.dumps({"error": "Unauthorized", "detail": UNAUTHENTICATED}).encode() + b"\n"
        self.send_header("WWW-Authenticate", 'Bearer realm="edgeward-gateway"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        return False

    def do_GET(self) -> None:
        reader = self.server.reader
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/healthz":
            self._json(HTTPStatus.OK, self.server.gateway.health())
        elif not self._authenticated():
            return
        elif path == "/status":
            self._json(HTTPStatus.OK, self.server.gateway.status())
        elif path == "/metrics":
            page, content_type = self.server.gateway.metrics_page()
            self._send(HTTPStatus.OK, page, content_type)
        elif path.startswith("/scans/") and path.endswith("/heatmap.png"):
            scan_id = path[len("/scans/") : -len("/heatmap.png")]
            png = reader.heatmap(scan_id)
            if png is None:
                self._error(HTTPStatus.NOT_FOUND, f"scan {scan_id!r} has no cloud heatmap (yet)")
            else:
                self._send(HTTPStatus.OK, png, "image/png")
        elif path.startswith("/scans/") and path.count("/") == 2:
            scan_id = path[len("/scans/") :]
            status = reader.scan_status(scan_id)
            if status is None:
                self._error(HTTPStatus.NOT_FOUND, f"no scan with id {scan_id!r} on this gateway")
            else:
                self._json(HTTPStatus.OK, status)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such resource {path!r}; see GET /healthz")

    def do_POST(self) -> None:
        if not self._authenticated():
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/scans":
            self.close_connection = True
            self._error(HTTPStatus.NOT_FOUND, f"POST to {path!r}: upload scans to /scans")
            return
        intake = self.server.intake
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self.close_connection = True
            self._error(
                HTTPStatus.LENGTH_REQUIRED,
                "send the image with a Content-Length header (chunked uploads are not accepted)",
            )
            return
        length = int(length_header)
        limit = intake.max_upload_bytes
        if length > limit:
            self.close_connection = True  # the unread body must not be parsed as a request
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"upload is {length} bytes, above limits.max_upload_bytes ({limit})",
            )
            return
        data = self.rfile.read(length)
        if len(data) != length:
            log.warning(
                "upload from %s ended after %d of %d bytes",
                self.address_string(),
                len(data),
                length,
            )
            self.close_connection = True
            self._error(
                HTTPStatus.BAD_REQUEST,
                f"upload ended after {len(data)} of {length} bytes; send it again",
            )
            return
        metadata = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in META_HEADERS:
                metadata[META_HEADERS[lower]] = value
            elif lower.startswith(META_PREFIX) and len(lower) > len(META_PREFIX):
                metadata[lower[len(META_PREFIX) :]] = value
        try:
            sub = intake.submit(
                data,
                source="http",
                content_type=self.headers.get("Content-Type"),
                filename=self.headers.get("X-Filename"),
                metadata=metadata,
                scan_id=self.headers.get("X-Scan-Id") or None,
            )
        except ConflictError as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
            return
        except InsufficientStorageError as exc:
            self._error(HTTPStatus.INSUFFICIENT_STORAGE, str(exc))
            return
        except SubmissionError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except Exception as exc:  # e.g. disk full: never claim a scan is safe when it is not
            log.exception("could not record an upload")
            self._error(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"the gateway could not record the scan ({type(exc).__name__}); send it again",
            )
            return
        status = HTTPStatus.ACCEPTED if sub.receipt == "accepted" else HTTPStatus.OK
        self._json(
            status, {"scan_id": sub.scan_id, "status": sub.receipt, "url": f"/scans/{sub.scan_id}"}
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        intake: ScanIntake,
        reader: ScanReader,
        gateway: GatewayHealth,
        *,
        tokens: ApiTokens,
        max_connections: int,
    ) -> None:
        super().__init__(address, _Handler)
        self.intake = intake
        self.reader = reader
        self.gateway = gateway
        self.tokens = tokens
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread = threading.Thread(target=self.serve_forever, name="clinic-http", daemon=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Runs on the accept loop: a full house is answered here, without a new thread.
        if not self._slots.acquire(blocking=False):
            body = json.dumps(
                {
                    "error": "Service Unavailable",
                    "detail": f"the gateway is serving {self.max_connections} connections "
                    "(http.max_connections); retry in a second",
                }
            ).encode()
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):  # a client that left needs no answer
                request.sendall(head.encode() + body)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def serve_http(
    intake: ScanIntake,
    reader: ScanReader,
    gateway: GatewayHealth,
    host: str,
    port: int,
    *,
    tokens: ApiTokens,
    max_connections: int = 32,
) -> _Server:
    try:
        server = _Server(
            (host, port), intake, reader, gateway, tokens=tokens, max_connections=max_connections
        )
    except OSError as exc:
        raise SubmissionError(
            f"upload API cannot listen on {host}:{port} ({exc.strerror}); pick a free http.port"
        ) from exc
    server.start()
    return server
