"""Judging: a worker runs the pipeline on each recorded scan and commits what follows from it.

Verdict and MQTT event commit in one transaction; the cloud's copy is made after, by the upload
worker (edge/clinic/upload.py), and the prediction log row is written after too, never allowed
to fail the verdict. A restart resumes every unjudged scan and every copy not yet made.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edge.clinic import verdict as rules
from edge.clinic.database import Database
from edge.clinic.events import EventPublisher
from edge.clinic.metrics import GatewayMetrics
from edge.clinic.outcome import ScanOutcome, failed_outcome
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.store import JUDGED, ScanRecord, ScanStore
from edge.clinic.upload import PREPARING, UploadWorker
from shared.config.clinic import ClinicGatewayConfig
from shared.messages import ScanVerdictEvent
from shared.monitoring.prediction_log import PredictionLog
from shared.verdicts import wire_codes

log = logging.getLogger(__name__)

PREDICTION_LOG = "predictions.sqlite"  # in data_dir; `edgeward monitor report --log` reads it
RULES_MODEL = "gateway-rules"  # verdicts no model judged (unreadable files, gateway errors)
FAILURE_CODES = (rules.GATEWAY_ERROR, rules.INTERNAL_ERROR)


class Pipeline(Protocol):
    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome: ...

    def close(self) -> None: ...


class Judging:
    """One worker thread; `put` queues a recorded scan id, `on_judged` hooks see each verdict."""

    def __init__(
        self,
        *,
        config: ClinicGatewayConfig,
        pipeline: Pipeline,
        db: Database,
        store: ScanStore,
        pseudonyms: Pseudonymiser,
        events: EventPublisher,
        metrics: GatewayMetrics,
        predictions: PredictionLog,
        cloud_notify: Callable[[], None],
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.db = db
        self.store = store
        self.pseudonyms = pseudonyms
        self.events = events
        self.metrics = metrics
        self.predictions = predictions
        self.uploads = UploadWorker(
            config=config, db=db, store=store, pseudonyms=pseudonyms, cloud_notify=cloud_notify
        )
        self._work: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work_loop, name="clinic-worker", daemon=True)
        self._judged_hooks: list[Callable[[ScanRecord], None]] = []

    def on_judged(self, hook: Callable[[ScanRecord], None]) -> None:
        self._judged_hooks.append(hook)

    def put(self, scan_id: str) -> None:
        self._work.put(scan_id)

    def start(self) -> None:
        resumed = self.store.unjudged()
        for scan_id in resumed:
            self._work.put(scan_id)
        if resumed:
            log.info("resuming %d scan(s) recorded before the last stop", len(resumed))
        self._worker.start()
        self.uploads.start()

    def stop(self) -> None:
        # Finish the scan in hand only: the rest is on disk and resumes at the next start.
        self._stopping.set()
        self._work.put(None)
        if self._worker.is_alive():
            self._worker.join(30)
        self.uploads.stop()

    def _work_loop(self) -> None:
        while True:
            scan_id = self._work.get()
            if scan_id is None or self._stopping.is_set():
                return
            try:
                self.judge(scan_id)
            except Exception:  # the worker must survive anything one scan does
                log.exception("scan %s: judging failed; it stays recorded for a restart", scan_id)

    def judge(self, scan_id: str) -> None:
        attempt = self.store.start_attempt(scan_id)
        record = self.store.get(scan_id)
        if record is None or record.state == JUDGED:
            return
        if rules.gave_up(attempt):
            outcome = failed_outcome(rules.gave_up_reason(attempt), rules.GATEWAY_ERROR)
        else:
            try:
                outcome = self.pipeline.process(
                    self.store.image(scan_id),
                    filename=record.filename,
                    content_type=record.content_type,
                    metadata={**record.metadata, "scan_id": record.scan_id},
                )
            except Exception as exc:
                log.exception("scan %s: pipeline error", scan_id)
                outcome = failed_outcome(rules.failure_reason(exc), rules.GATEWAY_ERROR)
        self._record_verdict(record, outcome)
        self._log_prediction(record, outcome)

    def _record_verdict(self, record: ScanRecord, outcome: ScanOutcome) -> None:
        # From the DICOM header when there is one, else from the upload's metadata.
        patient = outcome.patient_id or record.metadata.get("patient_id")
        # The cloud's copy is made after this commit, by the upload worker: never on this path.
        cloud_state = PREPARING if outcome.gradable else None
        event = ScanVerdictEvent(
            sender=self.config.gateway_id,
            scan_id=record.cloud_id,
            site_id=self.config.site_id,
            verdict=outcome.verdict,
            reasons=[self._redact(r, record, patient) for r in outcome.reasons],
            codes=wire_codes(outcome.codes),
            confidence=outcome.confidence,
            source="edge",
            model_versions=outcome.model_versions,
            timings_ms=outcome.timings_ms,
        )
        with self.db.transaction() as conn:
            ScanStore.set_outcome(
                conn,
                record.scan_id,
                verdict=outcome.verdict.value,
                outcome=outcome.record(),
                cloud_state=cloud_state,
            )
            self.events.put(conn, event)
        self.metrics.observe_outcome(outcome.verdict.value, outcome.codes, outcome.timings_ms)
        if outcome.gradable:
            self.uploads.put(record.scan_id)
        self.events.notify()
        log.info("scan %s: %s %s", record.scan_id, outcome.verdict, "; ".join(outcome.reasons))
        judged = self.store.get(record.scan_id)
        for hook in self._judged_hooks:
            if judged is not None:
                hook(judged)

    def _log_prediction(self, record: ScanRecord, outcome: ScanOutcome) -> None:
        """One prediction-log row per model that shaped the verdict (a rules row if none did).

        Logged after the verdict commits and never allowed to fail it: the log is for audits.
        """
        versions = outcome.model_versions
        names = {"quality": self.config.quality_model, "triage": self.config.triage_model}
        attributes = {
            "site": self.config.site_id,
            "laterality": outcome.laterality or record.metadata.get("laterality", ""),
            "camera": record.metadata.get("camera", ""),
            "source": record.source,
        }
        rules_row: dict[str, Any] = {"confidence": outcome.confidence, "features": {}}
        rows = [
            (names.get(role, role), versions.get(role, "unknown"), row)
            for role, row in outcome.monitoring.items()
        ] or [(RULES_MODEL, "rules", rules_row)]
        try:
            for model, version, row in rows:
                self.predictions.record(
                    record.cloud_id,
                    tier="edge",
                    model=model,
                    model_version=version,
                    confidence=rules.unit(float(row["confidence"])),
                    score=row.get("score"),
                    prediction=row.get("prediction"),
                    verdict=outcome.verdict.value,
                    site=self.config.site_id,
                    latency_ms=outcome.timings_ms.get("total"),
                    error=", ".join(c for c in outcome.codes if c in FAILURE_CODES),
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


def prediction_log_path(data_dir: Path) -> Path:
    return data_dir / PREDICTION_LOG
