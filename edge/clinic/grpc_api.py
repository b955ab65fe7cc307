"""gRPC `ClinicGateway` for clinic devices: Submit answers with a scan id at once."""

from __future__ import annotations

import json
import logging
from concurrent import futures

import grpc

from edge.clinic.auth import ApiTokens, TokenInterceptor
from edge.clinic.ports import (
    ConflictError,
    InsufficientStorageError,
    ScanIntake,
    ScanReader,
    SubmissionError,
)
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class ClinicGatewayServicer(pb_grpc.ClinicGatewayServicer):
    def __init__(self, intake: ScanIntake, reader: ScanReader) -> None:
        self.intake = intake
        self.reader = reader

    def Submit(  # noqa: N802 (gRPC method name)
        self, request: pb.ScanUpload, context: grpc.ServicerContext
    ) -> pb.ScanReceipt:
        try:
            sub = self.intake.submit(
                request.image,
                source="grpc",
                content_type=request.content_type or None,
                filename=request.filename or None,
                metadata=dict(request.metadata),
                scan_id=request.scan_id or None,
            )
        except ConflictError as exc:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except InsufficientStorageError as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except SubmissionError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Exception as exc:
            log.exception("could not record a gRPC upload")
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"the gateway could not record the scan ({type(exc).__name__}); send it again",
            )
        return pb.ScanReceipt(scan_id=sub.scan_id, status=sub.receipt)

    def GetScan(  # noqa: N802
        self, request: pb.ScanQuery, context: grpc.ServicerContext
    ) -> pb.ScanStatus:
        status = self.reader.scan_status(request.scan_id)
        if status is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"no scan with id {request.scan_id!r} on this gateway"
            )
            raise AssertionError("abort raises")  # for the type checker
        result = status["cloud"].get("result")
        return pb.ScanStatus(
            scan_id=status["scan_id"],
            verdict=status["verdict"],
            reasons=status.get("reasons", []),
            confidence=float(status.get("confidence", 0.0)),
            cloud_result_json=json.dumps(result) if result else "",
        )


class _GrpcServer:
    def __init__(self, server: grpc.Server) -> None:
        self.server = server

    def stop(self) -> None:
        self.server.stop(grace=2).wait(5)


def serve_grpc(
    intake: ScanIntake,
    reader: ScanReader,
    host: str,
    port: int,
    *,
    tokens: ApiTokens,
    max_concurrent_rpcs: int = 16,
) -> tuple[_GrpcServer, int]:
    # Room for the largest accepted upload plus the envelope; bigger ones get RESOURCE_EXHAUSTED.
    size = intake.max_upload_bytes + 1024 * 1024
    # Four workers; RPCs beyond max_concurrent_rpcs (queued included) get RESOURCE_EXHAUSTED at
    # once rather than piling up uploads in memory. The interceptor runs before any servicer.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="clinic-grpc"),
        interceptors=[TokenInterceptor(tokens)],
        options=[("grpc.max_receive_message_length", size)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    pb_grpc.add_ClinicGatewayServicer_to_server(ClinicGatewayServicer(intake, reader), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        bound = 0
        log.debug("grpc bind failed: %s", exc)
    if bound == 0:
        raise EdgewardError(f"gRPC Submit cannot listen on {host}:{port}; pick a free grpc_port")
    server.start()
    return _GrpcServer(server), bound
