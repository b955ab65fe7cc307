"""A real gRPC `CloudGrader` on a free loopback port that records what reached "the cloud".

Stands in for engineer D's Ray Serve app in the gateway's outage, ordering and duplicate
tests: it can be stopped and started again on the same port, and counts calls per scan id.
Idempotent by scan id like the real cloud: a repeated Grade returns the stored result.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from dataclasses import dataclass

import grpc

from shared.broker import free_port
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class Received:
    request: pb.GradeRequest
    metadata: dict[str, str]


class _Grader(pb_grpc.CloudGraderServicer):
    def __init__(self, owner: GradingServer) -> None:
        self.owner = owner

    def Grade(self, request: pb.GradeRequest, context: grpc.ServicerContext) -> pb.GradeResult:
        owner = self.owner
        with owner.lock:
            owner.calls[request.scan_id] += 1
            owner.received.append(Received(request, dict(context.invocation_metadata())))
            if not request.scan_id or not request.image or request.scan_id in owner.refuse:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "this scan cannot be graded")
            if request.scan_id in owner.results:
                return owner.results[request.scan_id]
            owner.graded[request.scan_id] += 1
            result = pb.GradeResult(
                scan_id=request.scan_id,
                grade_probabilities=[0.1, 0.1, 0.2, 0.3, 0.3],
                referable_probability=0.8,
                confidence=0.9,
                model_version="fundus-grader:test",
                verdict="refer",
                heatmap_png=b"\x89PNG\r\n\x1a\nheatmap",
                regions=[pb.Region(x=1, y=2, width=3, height=4, score=0.5)],
                request_id=request.request_id,
            )
            owner.results[request.scan_id] = result
            return result

    def GetResult(self, request: pb.ResultQuery, context: grpc.ServicerContext) -> pb.GradeResult:
        with self.owner.lock:
            if request.scan_id not in self.owner.results:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no result for {request.scan_id}")
            return self.owner.results[request.scan_id]


class GradingServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # Grade calls that reached the server, per scan id
        self.graded: Counter[str] = Counter()  # times a scan id was actually graded
        self.received: list[Received] = []
        self.results: dict[str, pb.GradeResult] = {}
        self.refuse: set[str] = set()  # scan ids answered with INVALID_ARGUMENT
        self._server: grpc.Server | None = None

    def start(self) -> GradingServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_CloudGraderServicer_to_server(_Grader(self), server)
        if server.add_insecure_port(self.target) == 0:
            raise RuntimeError(f"test grading server cannot bind {self.target}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None

    def scan_ids(self) -> list[str]:
        """Scan ids in the order their first Grade call arrived."""
        with self.lock:
            seen: list[str] = []
            for r in self.received:
                if r.request.scan_id not in seen:
                    seen.append(r.request.scan_id)
            return seen

    def __enter__(self) -> GradingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
