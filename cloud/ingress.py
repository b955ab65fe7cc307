"""HTTP (FastAPI) and gRPC (`CloudGrader`) ingress of the cloud tier, with the grader inside.

One Serve deployment: each replica receives a scan, decodes it, grades it in its own batcher
(`cloud.grader.Grader`) and stores the result. There is no handle hop to a grader deployment, so
the pixels are never pickled into the object store and out again (that hop, the second replica's
request handling and the raylet's share cost about as much CPU as grading the scan itself).
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import asyncio
import base64
import logging
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field, ValidationError
from ray import serve
from ray.serve.grpc_util import RayServegRPCContext
from ray.serve.handle import DeploymentHandle

from cloud.access import (
    MAX_BODY_BYTES,
    MAX_JSON_BYTES,
    AccessDeniedError,
    AccessLog,
    BodyTooLargeError,
    UnauthenticatedError,
    authorize,
    read_bounded,
)
from cloud.grader import GradeFailure, GradeJob, Grader
from cloud.grading import Grading
from cloud.review_desk import MOUNT_PATH, bind_desk, desk_asgi
from cloud.service import (
    GradeInput,
    GradingService,
    InvalidRequestError,
    ModelUnavailableError,
    NotFoundError,
    RetryableError,
    check_edge_codes,
    check_scan_id,
    grading_decode_side,
)
from cloud.store import (
    DecisionConflictError,
    DecisionError,
    EdgeFindings,
    ReviewCase,
    SqliteStore,
    UnknownCaseError,
)
from shared.config import CloudConfig
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb
from shared.security.apikeys import KEY_FILE_ENV, KEYS_ENV, Principal, required_keys

log = logging.getLogger("ray.serve")
READY_TIMEOUT_S = 5.0

app = FastAPI(
    title="edgeward cloud",
    description="Grades retinal scans with Grad-CAM explanations; review queue; gateway nodes.",
)
app.mount(MOUNT_PATH, desk_asgi)  # the browser review desk, bound to the store in Ingress

_HTTP_STATUS: dict[type[EdgewardError], int] = {
    UnauthenticatedError: 401,
    AccessDeniedError: 403,
    BodyTooLargeError: 413,
    InvalidRequestError: 400,
    NotFoundError: 404,
    UnknownCaseError: 404,
    DecisionConflictError: 409,
    DecisionError: 400,
    ModelUnavailableError: 422,
    RetryableError: 503,
}
_GRPC_STATUS: dict[type[EdgewardError], grpc.StatusCode] = {
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    ModelUnavailableError: grpc.StatusCode.FAILED_PRECONDITION,
    RetryableError: grpc.StatusCode.UNAVAILABLE,
}


class Decision(BaseModel):
    label: str = Field(..., description="grade0..grade4 or ungradable")
    reviewer: str = Field(
        "",
        max_length=128,
        description="who decided; with API keys on, the authenticated reviewer (may be omitted)",
    )
    note: str = Field("", max_length=2000)


def result_json(result: pb.GradeResult) -> dict[str, Any]:
    """The GradeResult as JSON (bytes base64), the same shape the edge stores."""
    return MessageToDict(
        result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def case_json(case: ReviewCase, with_images: bool) -> dict[str, Any]:
    data = case.summary()
    if with_images:
        data["image_b64"] = base64.b64encode(case.image).decode()
        data["heatmap_png_b64"] = base64.b64encode(case.heatmap_png).decode()
    return data


def _http_error(exc: EdgewardError) -> JSONResponse:
    status = next((s for t, s in _HTTP_STATUS.items() if isinstance(exc, t)), 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)


def _site_of(principal: Principal | None, claimed: str) -> str:
    """The site a request acts for: its key's site; the X-Site-Id header only without keys."""
    if principal is None or principal.role != "site":
        return claimed
    if claimed and claimed != principal.name:
        raise AccessDeniedError(
            f"X-Site-Id {claimed!r} is not the site of this API key ({principal.name!r}); "
            "omit the header or send your own site id"
        )
    return principal.name


@serve.deployment(name="Ingress", max_ongoing_requests=32, ray_actor_options={"num_cpus": 1})
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        grader: dict[str, Any],
        config: dict[str, Any],
        bridge: DeploymentHandle | None = None,
        insecure_dev: bool = False,
    ) -> None:
        """`grader`: `cloud.grader.Grader`'s arguments (`cloud.app.grader_args`)."""
        self.config = CloudConfig.model_validate(config)
        self.keys = required_keys(insecure_dev)  # no keys, no replica: before the model loads
        # Loads and verifies the champion: a replica that cannot never goes live.
        self.grader = Grader(**grader)
        self.bridge = bridge
        self.store = SqliteStore(self.config.data_dir)
        self.access = AccessLog(self.config.data_dir)
        if self.keys is None:
            log.warning(
                "cloud HTTP ingress: INSECURE DEVELOPMENT MODE, no API keys (%s / %s unset): "
                "every route is open",
                KEY_FILE_ENV,
                KEYS_ENV,
            )
        self.service = GradingService(
            self.store,
            self._call_grader,
            tuple(self.config.review_band),  # type: ignore[arg-type]
            self.config.grader.model,
            image_retention_days=self.config.image_retention_days,
            review_sample=self.config.review_sample,
            decode_min_side=grading_decode_side(self.config.registry_dir, self.config.grader.model),
        )
        bind_desk(self.store, self._label_to_grader)

    async def _label_to_grader(self, scan_id: str, label: str) -> None:
        """A desk decision's label into the prediction log and canary gate, as the API's."""
        await self.grader.canary_label(scan_id, label)

    async def _call_grader(self, job: GradeJob) -> Grading | GradeFailure:
        # a batch waits for company only while another scan is on its way in this replica
        return await self.grader.grade(job, more_coming=self.service.arriving > 0)

    # ---- handle methods (benchmarks and tests switch and watch the live grader) ----
    def configure(self, max_batch_size: int, batch_wait_timeout_s: float, explain: bool) -> str:
        """`cloud.grader.Grader.configure` on this replica; returns the replica's id (a handle
        call reaches one replica: callers repeat until every replica answered)."""
        self.grader.configure(max_batch_size, batch_wait_timeout_s, explain)
        return str(serve.get_replica_context().replica_id.unique_id)

    def queue_depth(self) -> int:
        """Scans this replica's grader accepted and has not graded yet."""
        return self.grader.queue_depth()

    def in_flight(self) -> int:
        """Scans this replica holds: being received or decoded, or waiting in the grader."""
        return self.service.arriving + self.grader.queue_depth()

    def model_version(self) -> str:
        return self.grader.model_version()

    # ---- HTTP ----
    @app.post("/v1/grade")
    async def grade_http(self, request: Request) -> Response:
        """Body: the image bytes; headers: Content-Type, X-Scan-Id, optional X-Request-Id,
        X-Site-Id, X-Model-Id, X-Edge-Verdict, X-Edge-Codes (the gateway's codes, comma-separated:
        a readability doubt among them is never cleared by the grade)."""
        h = request.headers
        arrival = self.service.arrival()  # on its way to the grader while its body comes in
        try:
            principal = authorize(self.keys, h, "site")
            site_id = _site_of(principal, h.get("x-site-id", ""))
            scan_id = check_scan_id(h.get("x-scan-id", ""))
            findings = check_edge_codes(h.get("x-edge-codes", ""), scan_id)
            image = await read_bounded(
                h.get("content-length"), request.stream(), MAX_BODY_BYTES, f"scan {scan_id}"
            )
            if site_id:  # before any replay: another site's scan id must not return its result
                self.access.claim(scan_id, site_id)
            inp = GradeInput(
                scan_id=scan_id,
                image=image,
                content_type=h.get("content-type", ""),
                site_id=site_id,
                request_id=h.get("x-request-id", ""),
                model_id=h.get("x-model-id", ""),
                edge_verdict=h.get("x-edge-verdict", ""),
                edge_findings=findings,
            )
            result, replayed = await self.service.grade(inp, "http", arrival)
        except EdgewardError as exc:
            return _http_error(exc)
        finally:
            arrival.handed_over()
        return JSONResponse(
            result_json(result),
            headers={"X-Request-Id": result.request_id, "X-Replayed": str(replayed).lower()},
        )

    @app.get("/v1/results/{scan_id}")
    async def result_http(self, scan_id: str, request: Request) -> Response:
        try:
            principal = authorize(self.keys, request.headers, "site")
            # Another site's scan gets the same answer as an unknown one: no probing of ids.
            if (
                principal is not None
                and principal.role == "site"
                and self.access.owner(scan_id) != principal.name
            ):
                raise NotFoundError(f"scan {scan_id} has no result for site {principal.name}")
            return JSONResponse(result_json(self.service.result(scan_id)))
        except EdgewardError as exc:
            return _http_error(exc)

    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(self) -> Response:
        # the grader is in this replica and a replica goes live only with its model loaded
        return JSONResponse({"ready": True, "model_version": self.grader.model_version()})

    @app.get("/v1/review")
    async def review_list(
        self, request: Request, status: str = "open", limit: int = 100
    ) -> Response:
        try:
            authorize(self.keys, request.headers, "reviewer")
        except EdgewardError as exc:
            return _http_error(exc)
        if status not in ("open", "decided", "all"):
            return JSONResponse(
                {"error": f"status {status!r} is not one of open, decided, all"}, 400
            )
        cases = self.store.cases(None if status == "all" else status, max(1, min(limit, 1000)))
        return JSONResponse({"cases": [case_json(c, with_images=False) for c in cases]})

    @app.get("/v1/review/{case_id}")
    async def review_case(self, case_id: str, request: Request) -> Response:
        try:
            authorize(self.keys, request.headers, "reviewer")
            return JSONResponse(case_json(self.store.case(case_id), with_images=True))
        except EdgewardError as exc:
            return _http_error(exc)

    @app.post("/v1/review/{case_id}/decision")
    async def review_decide(self, case_id: str, request: Request) -> Response:
        """Body: Decision JSON. Who decided is the authenticated reviewer, recorded for good."""
        try:
            principal = authorize(self.keys, request.headers, "reviewer")
            raw = await read_bounded(
                request.headers.get("content-length"),
                request.stream(),
                MAX_JSON_BYTES,
                f"decision on case {case_id}",
            )
            try:
                decision = Decision.model_validate_json(raw)
            except ValidationError as exc:
                return JSONResponse({"error": f"decision on case {case_id}: {exc}"}, 422)
            reviewer = decision.reviewer
            if principal is not None:
                if reviewer and reviewer != principal.name:
                    raise AccessDeniedError(
                        f"reviewer {reviewer!r} is not the holder of this API key "
                        f"({principal.name!r}); omit `reviewer` or send your own name"
                    )
                reviewer = principal.name
            case = self.store.decide(case_id, decision.label, reviewer, decision.note)
            self.access.record_decision(
                case_id,
                case.scan_id,
                decision.label,
                reviewer,
                decision.note,
                authenticated=principal is not None,
            )
        except EdgewardError as exc:
            return _http_error(exc)
        log.info("review case %s (scan %s) decided: %s", case_id, case.scan_id, case.label)
        try:  # into the prediction log and the canary's accuracy gate; the decision is kept
            await self.grader.canary_label(case.scan_id, decision.label)
        except Exception as exc:
            log.warning(
                "review case %s: label not passed to the grader (%s: %s); it stays in the "
                "review store and GET /v1/labels",
                case_id,
                type(exc).__name__,
                exc,
            )
        return JSONResponse(case_json(case, with_images=False))

    @app.get("/v1/review/{case_id}/decisions")
    async def review_audit(self, case_id: str, request: Request) -> Response:
        """Every decision on the case, oldest first: who, what and when (append-only)."""
        try:
            authorize(self.keys, request.headers, "reviewer")
            self.store.case(case_id)
        except EdgewardError as exc:
            return _http_error(exc)
        return JSONResponse({"decisions": self.access.decisions(case_id)})

    @app.get("/v1/labels")
    async def labels(self, request: Request) -> Response:
        """Reviewer labels for retraining."""
        try:
            authorize(self.keys, request.headers, "reviewer")
        except EdgewardError as exc:
            return _http_error(exc)
        return JSONResponse({"labels": self.store.labels()})

    @app.get("/v1/nodes")
    async def nodes(self, request: Request) -> Response:
        """Gateways seen on the status topics; Last Wills mark them offline."""
        try:
            authorize(self.keys, request.headers, "admin")
        except EdgewardError as exc:
            return _http_error(exc)
        return JSONResponse({"nodes": self.store.nodes()})

    @app.get("/v1/bridge")
    async def bridge_status(self, request: Request) -> Response:
        """Whether the MQTT bridge is connected, and what it has handled."""
        try:
            authorize(self.keys, request.headers, "admin")
        except EdgewardError as exc:
            return _http_error(exc)
        if self.bridge is None:
            return JSONResponse({"enabled": False})
        try:
            status = await asyncio.wait_for(self.bridge.status.remote(), timeout=READY_TIMEOUT_S)
        except Exception as exc:
            return JSONResponse({"enabled": True, "error": f"bridge unreachable: {exc}"}, 503)
        return JSONResponse({"enabled": True, **status})

    # ---- gRPC (method names match service CloudGrader in shared/proto/edgeward.proto) ----
    async def Grade(  # noqa: N802
        self, request: pb.GradeRequest, grpc_context: RayServegRPCContext
    ) -> pb.GradeResult:
        inp = GradeInput(
            scan_id=request.scan_id,
            image=request.image,
            content_type=request.content_type,
            site_id=request.site_id,
            request_id=request.request_id or (grpc_context.request_id() or ""),
            model_id=request.model_id,
            edge_verdict=request.edge.verdict if request.HasField("edge") else "",
            edge_findings=EdgeFindings.from_proto(request.edge)
            if request.HasField("edge")
            else None,
        )
        try:
            if inp.site_id:  # as over HTTP: another site's scan id never replays its result
                self.access.claim(check_scan_id(inp.scan_id), inp.site_id)
            result, _ = await self.service.grade(inp, "grpc")
        except EdgewardError as exc:
            return self._grpc_error(exc, grpc_context)
        return result

    async def GetResult(  # noqa: N802
        self, request: pb.ResultQuery, grpc_context: RayServegRPCContext
    ) -> pb.GradeResult:
        try:
            return self.service.result(request.scan_id)
        except EdgewardError as exc:
            return self._grpc_error(exc, grpc_context)

    @staticmethod
    def _grpc_error(exc: EdgewardError, context: RayServegRPCContext) -> pb.GradeResult:
        code = next(
            (c for t, c in _GRPC_STATUS.items() if isinstance(exc, t)), grpc.StatusCode.INTERNAL
        )
        context.set_code(code)
        context.set_details(str(exc))
        return pb.GradeResult()
