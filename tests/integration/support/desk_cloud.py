"""A real gRPC `CloudGrader` over a real cloud store and review desk: every scan it grades is
uncertain, so it lands in the desk's queue; GetResult answers from the store, as the cloud's
ingress does (with the reviewer's decision once made). The grading is the only stand-in."""

from __future__ import annotations

import time
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc

from cloud.review_desk.server import DeskServer
from cloud.store import CloudStore, ReviewCase
from shared.broker import free_port
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from sim.demo.desk import DeskClient, Reviewer

MODEL = "fundus-grader:7"


class _Grader(pb_grpc.CloudGraderServicer):
    def __init__(self, store: CloudStore) -> None:
        self.store = store

    def Grade(self, request: pb.GradeRequest, context: grpc.ServicerContext) -> pb.GradeResult:
        reason = "uncertain: referable probability 0.50 is in the review band 0.3-0.7"
        result = pb.GradeResult(
            scan_id=request.scan_id,
            grade_probabilities=[0.2, 0.3, 0.3, 0.1, 0.1],
            referable_probability=0.5,
            confidence=0.5,
            model_version=MODEL,
            verdict="review",
            needs_review=True,
            review_reason=reason,
            request_id=request.request_id,
        )
        case = ReviewCase(
            scan_id=request.scan_id,
            site_id=request.site_id,
            reason=reason,
            edge_verdict=request.edge.verdict,
            cloud_verdict="refer",
            referable_probability=0.5,
            confidence=0.5,
            model_version=MODEL,
            image=request.image,
            content_type=request.content_type,
            heatmap_png=b"",
        )
        stored, _ = self.store.record(result, request.site_id, case)
        return stored

    def GetResult(self, request: pb.ResultQuery, context: grpc.ServicerContext) -> pb.GradeResult:
        stored = self.store.get(request.scan_id)
        if stored is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no result for {request.scan_id}")
        assert stored is not None  # abort raised
        return stored


class DeskCloud:
    """`with DeskCloud(tmp) as cloud:` gRPC at `cloud.target`, the desk at `cloud.desk.url`."""

    def __init__(self, workdir: Path) -> None:
        self.store = CloudStore(workdir)
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.desk = DeskServer(self.store)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_CloudGraderServicer_to_server(_Grader(self.store), self._server)
        if self._server.add_insecure_port(self.target) == 0:
            raise RuntimeError(f"desk cloud cannot bind {self.target}")

    def __enter__(self) -> DeskCloud:
        self._server.start()
        self.desk.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.desk.stop()
        self._server.stop(grace=None).wait(5)
        self.store.close()


def decide_by_form(desk_url: str, who: Reviewer, outcome: str, note: str) -> str:
    """Log in to the desk and decide the next case through its HTML form, as a browser posts
    it (session cookie, CSRF token). Returns the decided case id."""
    desk = DeskClient(desk_url)
    try:
        desk.login(who)
        deadline = time.monotonic() + 60
        while (case_id := desk.next_case()) is None:
            if time.monotonic() > deadline:
                raise AssertionError("no case reached the review desk within 60 s")
            time.sleep(0.5)
        desk.decide(case_id, outcome, note)
        return case_id
    finally:
        desk.close()
