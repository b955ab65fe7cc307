"""The grading flow both transports share: idempotency, decoding, grading, review, storage."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cloud.decode import BadScanError, ScaledScan, decode_scan, decode_scan_scaled
from cloud.explain import HotRegion
from cloud.grader import GradeFailure, GradeJob
from cloud.grading import Grading
from cloud.metrics import request_counter, request_seconds
from cloud.model_loading import BadModelIdError, parse_model_id
from cloud.retention import ImageRetention, review_image
from cloud.store import CloudStore, EdgeFindings, ReviewCase
from shared.decision import decide, sampled
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import MAX_CODES, Verdict, check_codes

log = logging.getLogger("ray.serve")
SCAN_ID = re.compile(r"^[A-Za-z0-9._:@~-]{1,64}$")
EDGE_VERDICTS = {v.value for v in Verdict}


class InvalidRequestError(EdgewardError):
    """The caller sent something we cannot grade: HTTP 400, gRPC INVALID_ARGUMENT."""


class NotFoundError(EdgewardError):
    """No such scan result or case: HTTP 404, gRPC NOT_FOUND."""


class ModelUnavailableError(EdgewardError):
    """The requested model is refused or unknown: HTTP 422, gRPC FAILED_PRECONDITION."""


class RetryableError(EdgewardError):
    """The grader is restarting or overloaded: HTTP 503, gRPC UNAVAILABLE; retry, same scan id."""


@dataclass(frozen=True)
class GradeInput:
    scan_id: str
    image: bytes
    content_type: str
    site_id: str = ""
    request_id: str = ""
    model_id: str = ""
    edge_verdict: str = ""
    edge_referable_probability: float | None = None
    edge_findings: EdgeFindings | None = None  # quality findings, OOD scores (gRPC uploads)


GradeCall = Callable[[GradeJob], Awaitable[Grading | GradeFailure]]


def check_scan_id(scan_id: str) -> str:
    if not SCAN_ID.match(scan_id or ""):
        raise InvalidRequestError(
            f"scan id {scan_id!r} is missing or invalid; send 1-64 characters of "
            "letters, digits and . _ : @ ~ - (X-Scan-Id header or GradeRequest.scan_id)"
        )
    return scan_id


def check_edge_codes(header: str, scan_id: str) -> EdgeFindings | None:
    """An HTTP upload's X-Edge-Codes ("quality_doubt, mirror_disagrees"): the gateway's codes,
    so the cloud's rule reads its doubt as it does a gRPC upload's EdgeVerdict.codes."""
    try:
        codes = check_codes([c.strip() for c in header.split(",") if c.strip()])
    except ValueError as exc:
        raise InvalidRequestError(
            f"scan {scan_id}: X-Edge-Codes must be up to {MAX_CODES} comma-separated codes "
            f"(lower-case letters, digits and _, e.g. quality_doubt): {exc}"
        ) from None
    return EdgeFindings(codes=codes) if codes else None


def grading_decode_side(registry_dir: Path, model: str) -> int | None:
    """The side scans are decoded to for grading: twice the serving grader's input side.

    Twice, so the crop to the field of view and the area resize to the model's input still
    average over real pixels (the edge asks its decoder for 2x its nets' sides by the same rule).
    A per-site model or a later champion with a larger input still grades, on fewer pixels; None
    (full-size decode) where the champion cannot be read here.
    """
    from shared.registry import Registry

    try:
        return 2 * Registry(registry_dir).load_serving(model).manifest.preprocess.size
    except (EdgewardError, OSError) as exc:
        log.warning("grader %s: decoding scans at full size (%s)", model, exc)
        return None


def full_size(region: HotRegion, scan: ScaledScan) -> HotRegion:
    """A hot region found on a reduced decode, in the scan's own pixels (the reviewer's frame)."""
    f = scan.factor
    if f == 1:
        return region
    x, y = min(region.x * f, scan.width - 1), min(region.y * f, scan.height - 1)
    return HotRegion(
        x=x,
        y=y,
        width=max(1, min(region.width * f, scan.width - x)),
        height=max(1, min(region.height * f, scan.height - y)),
        score=region.score,
    )


class Arrival:
    """One request counted in `GradingService.arriving` until it reaches the grader (or ends)."""

    def __init__(self, service: GradingService) -> None:
        self.service = service
        self.open = True
        service.arriving += 1

    def handed_over(self) -> None:
        if self.open:
            self.open = False
            self.service.arriving -= 1


class GradingService:
    """Transport-free core of the ingress (tested without Ray by passing a plain grade call)."""

    def __init__(
        self,
        store: CloudStore,
        grade_call: GradeCall,
        review_band: tuple[float, float],
        default_model: str,
        image_retention_days: float | None = None,
        *,
        review_sample: float = 0.0,
        decode_min_side: int | None = None,
    ) -> None:
        self.store = store
        # Scans are decoded straight to at least this side where the codec allows (JPEG DCT
        # scaling): the grader looks at ~200 px, and decoding and cropping a 2048 px scan whole
        # cost more than its forward pass. None: always at full size.
        self.decode_min_side = decode_min_side
        self.review_sample = review_sample  # QA: this fraction of confident results also reviewed
        self.grade_call = grade_call
        self.review_band = review_band
        self.default_model = default_model
        self.retention = (
            ImageRetention(store, image_retention_days) if image_retention_days else None
        )
        # Requests received and not yet handed to the grader (checked, decoding): while there
        # are any, a batch is worth waiting for; with none, a lone scan is graded at once.
        self.arriving = 0

    def result(self, scan_id: str) -> pb.GradeResult:
        check_scan_id(scan_id)
        stored = self.store.get(scan_id)
        if stored is None:
            raise NotFoundError(
                f"scan {scan_id} has no result; submit it with POST /v1/grade (or Grade over gRPC)"
            )
        return stored

    def arrival(self) -> Arrival:
        """Count a request as on its way from now (the HTTP ingress: before its body is read)."""
        return Arrival(self)

    async def grade(
        self, inp: GradeInput, transport: str, arrival: Arrival | None = None
    ) -> tuple[pb.GradeResult, bool]:
        """(result, replayed): a scan graded before returns its stored result, never a new one.

        `arrival`: the count this request holds since it arrived (made here if None).
        """
        started = time.perf_counter()
        outcome = "error"
        arrival = arrival or Arrival(self)
        try:
            result, replayed = await self._grade(inp, arrival)
            outcome = "replayed" if replayed else "graded"
            return result, replayed
        except InvalidRequestError:
            outcome = "invalid"
            raise
        finally:
            arrival.handed_over()
            request_counter().inc(tags={"transport": transport, "outcome": outcome})
            request_seconds().observe(time.perf_counter() - started, tags={"transport": transport})

    async def _grade(self, inp: GradeInput, arrival: Arrival) -> tuple[pb.GradeResult, bool]:
        scan_id = check_scan_id(inp.scan_id)
        request_id = inp.request_id or uuid.uuid4().hex
        stored = self.store.get(scan_id)
        if stored is not None:
            log.info("scan %s request_id=%s: replaying stored result", scan_id, request_id)
            return stored, True
        if inp.edge_verdict and inp.edge_verdict not in EDGE_VERDICTS:
            raise InvalidRequestError(
                f"scan {scan_id}: edge verdict {inp.edge_verdict!r} is not one of "
                f"{', '.join(sorted(EDGE_VERDICTS))}"
            )
        try:
            parse_model_id(inp.model_id, self.default_model)
        except BadModelIdError as exc:
            raise InvalidRequestError(f"scan {scan_id}: {exc}") from None
        try:
            # in a thread: the codec releases the GIL, so the next scan decodes while a batch
            # runs on the other core, as the in-process ceiling's client threads do
            scan = await asyncio.to_thread(
                decode_scan_scaled,
                inp.image,
                inp.content_type,
                scan_id,
                min_side=self.decode_min_side,
            )
        except BadScanError as exc:
            raise InvalidRequestError(str(exc)) from None
        image = scan.image
        job = GradeJob(scan_id, image, request_id=request_id, model_id=inp.model_id)
        arrival.handed_over()
        try:
            graded = await self.grade_call(job)
        except EdgewardError:
            raise
        except Exception as exc:  # a replica died or the handle timed out: the caller retries
            log.warning("scan %s request_id=%s: grader unavailable: %s", scan_id, request_id, exc)
            raise RetryableError(
                f"scan {scan_id}: the grader is unavailable ({type(exc).__name__}); "
                "retry with the same scan id — it will be graded once"
            ) from None
        if isinstance(graded, GradeFailure):
            if graded.kind == "model":
                raise ModelUnavailableError(f"scan {scan_id}: {graded.message}")
            raise RetryableError(f"scan {scan_id}: {graded.message}; retry with the same scan id")
        edge = inp.edge_verdict
        codes: tuple[str, ...] = tuple(inp.edge_findings.codes) if inp.edge_findings else ()
        if not edge or not codes:
            # the gateway's MQTT event, if it came first: its verdict, and its doubts for an
            # upload that carried none (an HTTP client that sent no X-Edge-Codes)
            recorded = self.store.edge_verdict(scan_id)
            if recorded is not None:
                edge = edge or recorded.verdict
                codes = codes or recorded.codes
        decision = decide(
            graded.referable_probability,
            graded.thresholds,
            self.review_band,
            edge,
            qa_sample=sampled(scan_id, self.review_sample),
            edge_codes=codes,
        )
        # A case keeps decoded pixels only: an upload's DICOM tags or EXIF never reach the store.
        # The reviewer gets the scan at full size: decoded again only for the cases that need it.
        # In a thread, like the first decode: the PNG of a 2048 px scan is ~90 ms of codec work
        # that would otherwise hold this replica's event loop (and every request behind it).
        kept, kept_type = (
            await asyncio.to_thread(
                lambda: review_image(
                    image if scan.factor == 1 else decode_scan(inp.image, inp.content_type)
                )
            )
            if decision.needs_review
            else (b"", "")
        )
        result = pb.GradeResult(
            scan_id=scan_id,
            grade_probabilities=graded.probabilities,
            referable_probability=graded.referable_probability,
            confidence=decision.confidence,
            model_version=graded.model_version,
            verdict=decision.verdict.value,
            heatmap_png=graded.heatmap_png,
            regions=[
                pb.Region(x=r.x, y=r.y, width=r.width, height=r.height, score=r.score)
                for r in (full_size(r, scan) for r in graded.regions)
            ],
            needs_review=decision.needs_review,
            review_reason=decision.review_reason,
            request_id=request_id,
            timings_s=graded.timings_s,
        )
        case = (
            ReviewCase(
                scan_id=scan_id,
                site_id=inp.site_id,
                reason=decision.review_reason,
                edge_verdict=edge,
                cloud_verdict=decision.grade_verdict.value,
                referable_probability=graded.referable_probability,
                confidence=decision.confidence,
                model_version=graded.model_version,
                image=kept,
                content_type=kept_type,
                heatmap_png=graded.heatmap_png,
                edge_findings=inp.edge_findings,
            )
            if decision.needs_review
            else None
        )
        # one transaction: a needs_review result is never stored without its case
        stored, created = self.store.record(result, inp.site_id, case)
        if self.retention is not None:
            self.retention.maybe_purge()
        log.info(
            "scan %s request_id=%s site=%s: %s (p_ref=%.3f, model %s%s)",
            scan_id,
            request_id,
            inp.site_id or "-",
            stored.verdict,
            stored.referable_probability,
            stored.model_version,
            ", queued for review" if created and decision.needs_review else "",
        )
        return stored, not created
