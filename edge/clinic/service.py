"""The clinic gateway: record every submission, judge it, and send what must leave, durably.

Order of work for one scan: durable record (bytes included) -> worker thread runs the pipeline
-> verdict, cloud outbox row and MQTT event commit in one transaction -> uplink and event
publisher drain their outboxes. A restart resumes every stage from the database.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict

from edge.clinic.database import Database
from edge.clinic.events import EventPublisher
from edge.clinic.metrics import GatewayMetrics
from edge.clinic.outbox import CLOUD, EVENTS, Outbox, OutboxItem
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.store import JUDGED, Receipt, ScanRecord, ScanStore
from edge.clinic.uplink import CloudUplink
from shared.config.base import secret_from_env
from shared.config.clinic import ClinicGatewayConfig
from shared.errors import EdgewardError
from shared.messages import ScanVerdictEvent
from shared.monitoring.prediction_log import PredictionLog
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import Verdict

log = logging.getLogger(__name__)

SCAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_METADATA = 32
MAX_ATTEMPTS = 3  # a scan that failed to be judged this often (e.g. crashed us) goes to a person
VERDICTS = {v.value for v in Verdict}
PREDICTION_LOG = "predictions.sqlite"  # in data_dir; `edgeward monitor report --log` reads it
RULES_MODEL = "gateway-rules"  # verdicts no model judged (unreadable files, gateway errors)
FAILURE_CODES = ("gateway_error", "internal_error")


class SubmissionError(EdgewardError):
    """A submission the gateway cannot take; the message says what to change."""


class ConflictError(SubmissionError):
    """A client reused a scan id for different bytes."""


class Pipeline(Protocol):
    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class Submission:
    scan_id: str
    receipt: Receipt


def normalise_metadata(raw: dict[str, str] | None) -> dict[str, str]:
    """Keys as `patient_id`, `laterality`, ... whatever casing or dashes a device sent."""
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        name = key.strip().lower().replace("-", "_")
        if not name:
            continue
        if len(value) > 256:
            raise SubmissionError(
                f"metadata {key!r} is {len(value)} characters long, at most 256 are accepted"
            )
        out[name] = value.strip()
    if len(out) > MAX_METADATA:
        raise SubmissionError(f"{len(out)} metadata entries sent, at most {MAX_METADATA} accepted")
    return out


def _is_dicom(data: bytes | None, content_type: str | None) -> bool:
    return bool(
        (content_type or "").lower().startswith("application/dicom")
        or (data is not None and data[128:132] == b"DICM")
    )


def outcome_dict(outcome: Any) -> dict[str, Any]:
    """The JSON-safe part of a pipeline outcome (no image bytes)."""
    verdict = getattr(outcome, "verdict", Verdict.REVIEW)
    return {
        "verdict": str(getattr(verdict, "value", verdict)),
        "reasons": list(getattr(outcome, "reasons", []) or []),
        "codes": list(getattr(outcome, "codes", []) or []),
        "flags": list(getattr(outcome, "flags", []) or []),
        "confidence": float(getattr(outcome, "confidence", 0.0) or 0.0),
        "timings_ms": {k: float(v) for k, v in (getattr(outcome, "timings_ms", {}) or {}).items()},
        "model_versions": dict(getattr(outcome, "model_versions", {}) or {}),
        "gradable": bool(getattr(outcome, "gradable", False)),
        "laterality": getattr(outcome, "laterality", None),
        "patient_id": getattr(outcome, "patient_id", None),
        "referable_probability": getattr(outcome, "referable_probability", None),
    }


def _failed_outcome(reason: str, code: str) -> dict[str, Any]:
    return {
        "verdict": Verdict.REVIEW.value,
        "reasons": [reason],
        "codes": [code],
        "flags": [],
        "confidence": 0.0,
        "timings_ms": {},
        "model_versions": {},
        "gradable": False,
        "laterality": None,
        "patient_id": None,
        "referable_probability": None,
    }


class ClinicService:
    """One gateway in this process: `start()` opens its sockets, `stop()` closes everything."""

    def __init__(
        self,
        config: ClinicGatewayConfig,
        pipeline: Pipeline | None = None,
        site_key: bytes | None = None,
    ) -> None:
        self.config = config
        key = site_key or secret_from_env(
            config.site_key_env, "pseudonymising patient ids before upload"
        )
        self.pseudonyms = Pseudonymiser(key)
        self.db = Database(Path(config.data_dir) / "gateway.db")
        # Every edge verdict, for drift checks on the gateway itself (keyed like the pseudonyms).
        self.predictions = PredictionLog(Path(config.data_dir) / PREDICTION_LOG, key)
        self.store = ScanStore(self.db)
        self.outbox = Outbox(self.db)
        self.metrics = GatewayMetrics()
        self.metrics.watch_depth(CLOUD, lambda: self.outbox.depth(CLOUD))
        self.metrics.watch_depth(EVENTS, lambda: self.outbox.depth(EVENTS))
        self._pipeline = pipeline
        self.events = EventPublisher(
            config.mqtt,
            self.outbox,
            site_id=config.site_id,
            gateway_id=config.gateway_id,
            status=self._status,
        )
        self.uplink = CloudUplink(
            config.cloud, self.outbox, self._cloud_result, self._cloud_rejected
        )
        self._work: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work_loop, name="clinic-worker", daemon=True)
        self._judged_hooks: list[Callable[[ScanRecord], None]] = []
        self._servers: list[Any] = []
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------------

    def on_judged(self, hook: Callable[[ScanRecord], None]) -> None:
        self._judged_hooks.append(hook)

    def start(self, serve: bool = True) -> ClinicService:
        """Load the models, resume unfinished work, then open the ingest paths."""
        if self._pipeline is None:
            try:
                from edge.clinic.pipeline import ClinicPipeline
            except ImportError as exc:
                raise EdgewardError(f"clinic pipeline unavailable: {exc}") from exc
            self._pipeline = ClinicPipeline(self.config)
        resumed = self.store.unjudged()
        for scan_id in resumed:
            self._work.put(scan_id)
        if resumed:
            log.info("resuming %d scan(s) recorded before the last stop", len(resumed))
        self._worker.start()
        self.uplink.start()
        self.events.start()
        if serve:
            from edge.clinic.grpc_api import serve_grpc
            from edge.clinic.http_api import serve_http

            http = serve_http(self, self.config.http.host, self.config.http.port)
            self.http_port = http.server_port
            grpc_server, self.grpc_port = serve_grpc(
                self, self.config.http.host, self.config.grpc_port
            )
            self._servers += [http, grpc_server]
        if self.config.watch_dir is not None:
            from edge.clinic.watcher import FolderWatcher

            watcher = FolderWatcher(self, Path(self.config.watch_dir), self.config.watch_poll_s)
            watcher.start()
            self._servers.append(watcher)
        self.started = True
        self._write_ports()
        log.info(
            "clinic gateway %s/%s ready: http port %s, grpc port %s, watching %s",
            self.config.site_id,
            self.config.gateway_id,
            self.http_port,
            self.grpc_port,
            self.config.watch_dir or "no folder",
        )
        return self

    def _write_ports(self) -> None:
        info = {
            "pid": os.getpid(),
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "started_at": time.time(),
        }
        path = Path(self.config.data_dir) / "gateway.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(path)

    def stop(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        # Finish the scan in hand only: the rest is on disk and resumes at the next start.
        self._stopping.set()
        self._work.put(None)
        if self._worker.is_alive():
            self._worker.join(30)
        close = getattr(self._pipeline, "close", None)
        if callable(close):
            close()
        self.uplink.stop()
        self.events.stop()
        self.db.close()
        self.predictions.close()
        self.started = False

    def __enter__(self) -> ClinicService:
        return self.start() if not self.started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ingest ----------------------------------------------------------------------------------

    def submit(
        self,
        data: bytes,
        source: str,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        metadata: dict[str, str] | None = None,
        scan_id: str | None = None,
        source_path: str | None = None,
    ) -> Submission:
        """Record a scan durably and queue it for judging; returns at once with its id."""
        limit = self.config.limits.max_upload_bytes
        if len(data) > limit:
            raise SubmissionError(
                f"upload is {len(data)} bytes, above limits.max_upload_bytes ({limit}); "
                "send the camera's original file, not an archive"
            )
        if scan_id:
            if not SCAN_ID.match(scan_id):
                raise SubmissionError(
                    f"scan id {scan_id[:80]!r} is not valid: use 1-64 letters, digits, '.', '_', "
                    "':' or '-', starting with a letter or digit"
                )
        else:
            scan_id = uuid.uuid4().hex
        meta = normalise_metadata(metadata)
        receipt = self.store.create(
            scan_id,
            self.pseudonyms.scan(scan_id),
            data,
            source=source,
            filename=filename,
            content_type=content_type,
            metadata=meta,
            source_path=source_path,
        )
        self.metrics.submissions.labels(source=source, receipt=receipt).inc()
        if receipt == "conflict":
            raise ConflictError(
                f"scan id {scan_id!r} was already used for a different image; "
                "choose a new id (or resend the same bytes to retry)"
            )
        if receipt == "accepted":
            self._work.put(scan_id)
        return Submission(scan_id, receipt)

    # -- judging -----------------------------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            scan_id = self._work.get()
            if scan_id is None or self._stopping.is_set():
                return
            try:
                self._judge(scan_id)
            except Exception:  # the worker must survive anything one scan does
                log.exception("scan %s: judging failed; it stays recorded for a restart", scan_id)

    def _judge(self, scan_id: str) -> None:
        attempt = self.store.start_attempt(scan_id)
        record = self.store.get(scan_id)
        if record is None or record.state == JUDGED:
            return
        upload: tuple[bytes, str] | None = None
        monitoring: dict[str, dict[str, Any]] = {}
        if attempt > MAX_ATTEMPTS:
            result = _failed_outcome(
                f"the gateway failed to judge this scan {attempt - 1} times; a person must look "
                "at it",
                "gateway_error",
            )
        else:
            data = self.store.image(scan_id)
            try:
                assert self._pipeline is not None
                outcome = self._pipeline.process(
                    data,
                    filename=record.filename,
                    content_type=record.content_type,
                    metadata={**record.metadata, "scan_id": record.scan_id},
                )
                result = outcome_dict(outcome)
                monitoring = dict(getattr(outcome, "monitoring", {}) or {})
                if result["verdict"] not in VERDICTS:
                    raise ValueError(f"pipeline returned unknown verdict {result['verdict']!r}")
                body = getattr(outcome, "upload_bytes", None)
                if result["gradable"] and body:
                    upload = (body, getattr(outcome, "upload_content_type", None) or "")
            except Exception as exc:
                log.exception("scan %s: pipeline error", scan_id)
                result = _failed_outcome(
                    f"the gateway could not judge this scan ({type(exc).__name__}); a person "
                    "must look at it",
                    "gateway_error",
                )
                monitoring = {}
        self._record_verdict(record, result, upload)
        self._log_prediction(record, result, monitoring)

    def _record_verdict(
        self, record: ScanRecord, result: dict[str, Any], upload: tuple[bytes, str] | None
    ) -> None:
        # From the DICOM header when there is one, else from the upload's metadata.
        patient = result.get("patient_id") or record.metadata.get("patient_id")
        cloud_state, detail, request = None, None, None
        if result["gradable"]:
            if upload is None:
                cloud_state, detail = "not_sent", "the pipeline gave no image to upload"
            elif _is_dicom(upload[0], upload[1]):
                # DICOM headers carry the patient's name and id: only pixels may leave.
                cloud_state, detail = "not_sent", "refused to upload DICOM (patient identity)"
            else:
                cloud_state = "queued"
                request = pb.GradeRequest(
                    scan_id=record.cloud_id,
                    image=upload[0],
                    content_type=upload[1],
                    site_id=self.config.site_id,
                    request_id=f"{self.config.gateway_id}:{record.cloud_id}",
                    edge=pb.EdgeVerdict(
                        verdict=result["verdict"],
                        referable_probability=float(result["referable_probability"] or 0.0),
                        model_versions=result["model_versions"],
                    ),
                    laterality=result["laterality"] or record.metadata.get("laterality", ""),
                )
        event = ScanVerdictEvent(
            sender=self.config.gateway_id,
            scan_id=record.cloud_id,
            site_id=self.config.site_id,
            verdict=Verdict(result["verdict"]),
            reasons=[self._redact(r, record, patient) for r in result["reasons"]],
            confidence=min(max(result["confidence"], 0.0), 1.0),
            source="edge",
            model_versions=result["model_versions"],
            timings_ms=result["timings_ms"],
        )
        with self.db.transaction() as conn:
            ScanStore.set_outcome(
                conn,
                record.scan_id,
                verdict=result["verdict"],
                outcome=result,
                cloud_state=cloud_state,
                cloud_detail=detail,
            )
            if request is not None:
                meta = {"scan_id": record.scan_id}
                if patient:
                    meta["patient_ref"] = self.pseudonyms.patient(patient)
                Outbox.put(conn, CLOUD, record.scan_id, request.SerializeToString(), meta)
            self.events.put(conn, event)
        self.metrics.observe_outcome(result["verdict"], result["codes"], result["timings_ms"])
        self.uplink.notify()
        self.events.notify()
        log.info("scan %s: %s %s", record.scan_id, result["verdict"], "; ".join(result["reasons"]))
        judged = self.store.get(record.scan_id)
        for hook in self._judged_hooks:
            if judged is not None:
                hook(judged)

    def _log_prediction(
        self, record: ScanRecord, result: dict[str, Any], monitoring: dict[str, dict[str, Any]]
    ) -> None:
        """One prediction-log row per model that shaped the verdict (a rules row if none did).

        Logged after the verdict commits and never allowed to fail it: the log is for audits.
        """
        versions: dict[str, str] = result["model_versions"]
        names = {"quality": self.config.quality_model, "triage": self.config.triage_model}
        attributes = {
            "site": self.config.site_id,
            "laterality": result["laterality"] or record.metadata.get("laterality", ""),
            "camera": record.metadata.get("camera", ""),
            "source": record.source,
        }
        rows = [
            (names.get(role, role), versions.get(role, "unknown"), row)
            for role, row in monitoring.items()
        ] or [(RULES_MODEL, "rules", {"confidence": result["confidence"], "features": {}})]
        try:
            for model, version, row in rows:
                self.predictions.record(
                    record.cloud_id,
                    tier="edge",
                    model=model,
                    model_version=version,
                    confidence=min(max(float(row["confidence"]), 0.0), 1.0),
                    score=row.get("score"),
                    prediction=row.get("prediction"),
                    verdict=result["verdict"],
                    site=self.config.site_id,
                    latency_ms=result["timings_ms"].get("total"),
                    error=", ".join(c for c in result["codes"] if c in FAILURE_CODES),
                    attributes=attributes,
                    features=row.get("features", {}),
                )
        except Exception:
            log.exception("scan %s: could not write the prediction log", record.scan_id)

    def _redact(self, text: str, record: ScanRecord, patient: str | None) -> str:
        """Reasons may name the scan or file; what leaves names neither, nor the patient."""
        return self.pseudonyms.redact(
            text.replace(record.scan_id, record.cloud_id),
            patient,
            record.metadata.get("patient_id"),
            record.filename,
        )

    # -- cloud results --------------------------------------------------------------------------

    def _cloud_result(self, item: OutboxItem, result: pb.GradeResult) -> None:
        scan_id = str(item.meta["scan_id"])
        record = self.store.get(scan_id)
        verdict = result.verdict if result.verdict in VERDICTS else Verdict.REVIEW.value
        if result.needs_review:
            verdict = Verdict.REVIEW.value
        reasons = [result.review_reason] if result.review_reason else []
        event = ScanVerdictEvent(
            sender=self.config.gateway_id,
            scan_id=result.scan_id or (record.cloud_id if record else scan_id),
            site_id=self.config.site_id,
            verdict=Verdict(verdict),
            reasons=reasons,
            confidence=min(max(float(result.confidence), 0.0), 1.0),
            source="cloud",
            model_versions={"grader": result.model_version} if result.model_version else {},
        )
        with self.db.transaction() as conn:
            ScanStore.set_cloud(conn, scan_id, "graded", result.SerializeToString())
            Outbox.settle(conn, item)
            self.events.put(conn, event)
        self.metrics.cloud_calls.labels(result="graded").inc()
        self.events.notify()
        log.info("scan %s: cloud says %s (p=%.2f)", scan_id, verdict, result.referable_probability)

    def _cloud_rejected(self, item: OutboxItem, message: str) -> None:
        scan_id = str(item.meta["scan_id"])
        with self.db.transaction() as conn:
            ScanStore.set_cloud(conn, scan_id, "rejected", None, message)
            Outbox.settle(conn, item, "rejected", message)
        self.metrics.cloud_calls.labels(result="rejected").inc()

    # -- queries --------------------------------------------------------------------------------

    def scan_status(self, scan_id: str) -> dict[str, Any] | None:
        """What `GET /scans/{id}` answers: the edge verdict, then the cloud's."""
        record = self.store.get(scan_id)
        if record is None:
            return None
        out: dict[str, Any] = {
            "scan_id": record.scan_id,
            "state": record.state,
            "verdict": record.verdict or "pending",
            "received_at": record.received_at,
        }
        out.update({k: v for k, v in record.outcome.items() if k != "verdict"})
        cloud: dict[str, Any] = {"state": record.cloud_state}
        if record.cloud_detail:
            cloud["detail"] = record.cloud_detail
        if record.cloud_result:
            result = pb.GradeResult.FromString(record.cloud_result)
            cloud["result"] = cloud_result_dict(result)
            cloud["heatmap_url"] = (
                f"/scans/{record.scan_id}/heatmap.png" if result.heatmap_png else None
            )
        out["cloud"] = cloud
        return out

    def heatmap(self, scan_id: str) -> bytes | None:
        record = self.store.get(scan_id)
        if record is None or not record.cloud_result:
            return None
        return pb.GradeResult.FromString(record.cloud_result).heatmap_png or None

    def _status(self) -> tuple[str, int, str]:
        depth = self.outbox.depth(CLOUD)
        if not self.uplink.healthy:
            return "degraded", depth, f"cloud unreachable: {self.uplink.last_error}"[:200]
        return "online", depth, ""

    def health(self) -> dict[str, Any]:
        degraded = not (self.events.connected and self.uplink.healthy)
        return {
            "status": "degraded" if degraded else "ok",
            "site_id": self.config.site_id,
            "gateway_id": self.config.gateway_id,
            "broker_connected": self.events.connected,
            "cloud_healthy": self.uplink.healthy,
            "outbox": {CLOUD: self.outbox.depth(CLOUD), EVENTS: self.outbox.depth(EVENTS)},
            "scans": self.store.counts(),
        }


def cloud_result_dict(result: pb.GradeResult) -> dict[str, Any]:
    """The cloud's result as JSON, without the heatmap bytes (served on their own URL)."""
    light = pb.GradeResult()
    light.CopyFrom(result)
    light.ClearField("heatmap_png")
    return MessageToDict(light, preserving_proto_field_name=True)
