"""Mutual-TLS front for the cloud's gRPC ingress: gateways in over mTLS, Ray Serve behind.

Ray Serve's gRPC proxy has no TLS options, so this small server terminates TLS on the public
port, requires a client certificate signed by our CA, and forwards each call to Serve's gRPC
port on loopback. The certificate's CN is the site id (`edgeward certs device SITE`): it
replaces whatever `site_id` the request carries, so a gateway can grade and read only as its
own site.
"""

from __future__ import annotations

import argparse
import logging
import threading
from concurrent import futures
from pathlib import Path

import grpc

from cloud.access import AccessLog
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from shared.security.grpc_tls import TlsFiles, peer_common_name

log = logging.getLogger(__name__)
MAX_MESSAGE = 256 * 1024 * 1024
# Only these caller metadata keys pass through (the patient pseudonym, request ids).
FORWARDED_PREFIX = "edgeward-"


class _Forwarder(pb_grpc.CloudGraderServicer):
    def __init__(self, upstream: pb_grpc.CloudGraderStub, access: AccessLog | None) -> None:
        self.upstream = upstream
        self.access = access

    def _site(self, context: grpc.ServicerContext) -> str:
        site = peer_common_name(context)
        if not site:  # TLS verified a certificate, but it names nobody
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate has no CN")
        return str(site)

    def _forward(self, method: str, request: object, context: grpc.ServicerContext) -> object:
        metadata = [
            (k, v) for k, v in context.invocation_metadata() if k.startswith(FORWARDED_PREFIX)
        ]
        try:
            return getattr(self.upstream, method)(
                request, timeout=context.time_remaining(), metadata=metadata
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNAVAILABLE
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            context.abort(code, detail or "cloud grader unreachable")
            raise  # abort raises; this line is never reached

    def Grade(  # noqa: N802
        self, request: pb.GradeRequest, context: grpc.ServicerContext
    ) -> pb.GradeResult:
        site = self._site(context)
        if request.site_id and request.site_id != site:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"site_id {request.site_id!r} is not the site of this client certificate "
                f"({site!r}); send your own site id or none",
            )
        request.site_id = site
        result: pb.GradeResult = self._forward("Grade", request, context)  # type: ignore[assignment]
        return result

    def GetResult(  # noqa: N802
        self, request: pb.ResultQuery, context: grpc.ServicerContext
    ) -> pb.GradeResult:
        site = self._site(context)
        if self.access is not None and self.access.owner(request.scan_id) != site:
            # The same answer as for an unknown scan: no probing other sites' ids.
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"scan {request.scan_id} has no result for {site}"
            )
        result: pb.GradeResult = self._forward("GetResult", request, context)  # type: ignore[assignment]
        return result


class TlsGrpcFront:
    """`start()` listens on `port` with mutual TLS and forwards to `upstream` (host:port)."""

    def __init__(
        self,
        tls: TlsFiles,
        upstream: str,
        port: int,
        *,
        host: str = "0.0.0.0",
        access: AccessLog | None = None,
        max_workers: int = 16,
    ) -> None:
        self._channel = grpc.insecure_channel(
            upstream,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.max_receive_message_length", MAX_MESSAGE),
            ],
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-tls"),
            maximum_concurrent_rpcs=4 * max_workers,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE)],
        )
        pb_grpc.add_CloudGraderServicer_to_server(
            _Forwarder(pb_grpc.CloudGraderStub(self._channel), access), self._server
        )
        self.port = self._server.add_secure_port(f"{host}:{port}", tls.server_credentials())
        self.upstream = upstream

    def start(self) -> TlsGrpcFront:
        self._server.start()
        log.info("gRPC mTLS front on port %d -> %s", self.port, self.upstream)
        return self

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait()
        self._channel.close()


def _run(args: argparse.Namespace) -> int:
    tls = TlsFiles(args.ca, args.cert, args.key)
    access = AccessLog(args.data_dir) if args.data_dir else None
    front = TlsGrpcFront(tls, args.upstream, args.port, host=args.host, access=access).start()
    print(f"gRPC mTLS front on {args.host}:{front.port} -> {args.upstream}", flush=True)
    try:
        threading.Event().wait()
    finally:
        front.stop()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "grpc-tls",
        help="mutual-TLS front for the cloud gRPC ingress (Ray Serve's gRPC has no TLS)",
        description=(
            "Listen with mutual TLS and forward CloudGrader calls to Ray Serve's gRPC port on "
            "loopback. The client certificate's CN is the site id the call acts for."
        ),
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", type=int, default=9443, help="TLS port the gateways dial")
    p.add_argument("--upstream", default="127.0.0.1:9000", help="Ray Serve gRPC host:port")
    p.add_argument("--ca", type=Path, required=True, help="CA that signed the gateways' certs")
    p.add_argument("--cert", type=Path, required=True, help="this server's certificate")
    p.add_argument("--key", type=Path, required=True, help="this server's private key")
    p.add_argument(
        "--data-dir", type=Path, help="the cloud data_dir: GetResult then shows only own scans"
    )
    p.set_defaults(handler=_run)
