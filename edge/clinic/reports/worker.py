"""Finds each final result of a DICOM scan, builds its SR, PDF and FHIR report once, and queues
them in the gateway's one durable outbox; drains send them to the PACS and the FHIR endpoint.

"Final" is the cloud's answer when it graded the scan, else the edge verdict (the scan never
went to the cloud, or the cloud refused it). The reports and their outbox rows commit in one
transaction, with a `dicom_reports` row that marks the scan done: a crash between finding and
queueing redoes the work, and nothing is queued twice. A PACS or FHIR outage leaves the rows in
the outbox, retried with backoff, so nothing is lost.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pydicom

from edge.clinic.database import Database
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.reports.capture import dataset_bytes, secondary_capture
from edge.clinic.reports.content import final_result, is_dicom, reviewed_result
from edge.clinic.reports.fhir import FhirSender, bundle_json
from edge.clinic.reports.pacs import PacsSender
from edge.clinic.reports.pdf import pdf_bytes
from edge.clinic.reports.sr import build_sr, sr_bytes
from edge.clinic.review_follow import DECIDED, FAILED, REPORTED
from edge.clinic.store import JUDGED, ScanRecord, ScanStore
from edge.outbox import Outbox, OutboxItem
from shared.config.dicom import DicomSettings
from shared.proto import edgeward_pb2 as pb

log = logging.getLogger(__name__)

PACS = "pacs"  # outbox queue: SR and PDF instances for the site's PACS
FHIR = "fhir"  # outbox queue: FHIR transaction Bundles
SCHEMA = """
CREATE TABLE IF NOT EXISTS dicom_reports (
    scan_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    detail TEXT,
    created_at REAL NOT NULL
)
"""
FINAL_UNREPORTED = f"""
SELECT s.scan_id FROM scans s LEFT JOIN dicom_reports r ON r.scan_id = s.scan_id
WHERE r.scan_id IS NULL AND s.state = '{JUDGED}'
  AND (s.cloud_state IS NULL OR s.cloud_state IN ('graded', 'rejected'))
ORDER BY s.rowid LIMIT 50
"""
REVIEWED_UNREPORTED = """
SELECT v.scan_id, v.decision FROM review_decisions v JOIN dicom_reports r ON r.scan_id = v.scan_id
WHERE v.state = ? AND r.state = 'queued' LIMIT 50
"""


class OutboxDrain:
    """One thread per queue: send the oldest item, settle it, or back off and try again."""

    def __init__(
        self,
        outbox: Outbox,
        queue: str,
        send: Callable[[str, bytes], None],
        where: str,
        backoff: tuple[float, float],
    ) -> None:
        self.outbox = outbox
        self.queue = queue
        self.send = send
        self.where = where
        self.backoff = backoff
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"drain-{queue}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            items = self.outbox.peek(self.queue)
            if not items:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            self._deliver(items[0])

    def _deliver(self, item: OutboxItem) -> None:
        try:
            self.send(item.key, item.payload)
        except Exception as exc:  # any failure keeps the item: the next try may succeed
            attempts = self.outbox.note_failure(item, str(exc))
            first, most = self.backoff
            delay = min(most, first * 2 ** min(attempts - 1, 16))
            # Every power-of-two attempt: an outage of hours logs a few lines, not thousands.
            if attempts & (attempts - 1) == 0:
                log.warning(
                    "%s %s not delivered to %s (attempt %d, next in %.1fs): %s",
                    self.queue,
                    item.key,
                    self.where,
                    attempts,
                    delay,
                    exc,
                )
            self._stop.wait(delay)
            return
        self.outbox.complete(item)
        log.info("%s %s delivered to %s", self.queue, item.key, self.where)


class ReportWorker:
    """`notify()` after a verdict or a cloud result; a slow poll catches anything missed."""

    def __init__(
        self,
        db: Database,
        store: ScanStore,
        outbox: Outbox,
        settings: DicomSettings,
        *,
        pseudonyms: Pseudonymiser | None = None,
    ) -> None:
        self.db = db
        self.pseudonyms = pseudonyms  # names the patient of a JPEG/PNG scan's new study
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.drains: dict[str, OutboxDrain] = {}
        if settings.pacs is not None:
            pacs = PacsSender(settings.pacs)
            backoff = (settings.pacs.backoff_initial_s, settings.pacs.backoff_max_s)
            self.drains[PACS] = OutboxDrain(outbox, PACS, pacs.send, pacs.where(), backoff)
        if settings.fhir is not None:
            f = settings.fhir
            fhir = FhirSender(f.endpoint, f.folder, f.timeout_s)
            where = f.endpoint or str(f.folder)
            self.drains[FHIR] = OutboxDrain(outbox, FHIR, fhir.send, where, (1.0, 60.0))
        with db.transaction() as conn:
            conn.execute(SCHEMA)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dicom-reports", daemon=True)

    def start(self) -> ReportWorker:
        for drain in self.drains.values():
            drain.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        for drain in self.drains.values():
            drain.stop()

    def notify(self, *_: Any) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:  # a bug here must not stop later reports; it is logged
                log.exception("building DICOM/FHIR reports failed")
                done = 0
            if not done:
                self._wake.wait(0.5)
                self._wake.clear()

    def run_once(self) -> int:
        """Report every final result not reported yet; returns how many scans it settled."""
        ids = [r["scan_id"] for r in self.db.read(FINAL_UNREPORTED)]
        for scan_id in ids:
            self._report(scan_id)
        # With a PACS, a reviewer's decision (edge/clinic/review_follow.py) becomes an amended
        # report, once the automated one it amends is queued.
        decided = (
            self.db.read(REVIEWED_UNREPORTED, (DECIDED,)) if self.settings.pacs is not None else []
        )
        for row in decided:
            self._report_review(str(row["scan_id"]), pb.GradeResult.FromString(row["decision"]))
        return len(ids) + len(decided)

    def _image(self, record: ScanRecord, data: bytes) -> tuple[pydicom.Dataset, bool]:
        """(the scan's DICOM instance, whether the gateway made it): the camera's, or a
        Secondary Capture in a new study for a JPEG/PNG/TIFF scan."""
        if is_dicom(data):
            return pydicom.dcmread(io.BytesIO(data)), False
        assert self.pseudonyms is not None  # checked by the caller
        patient = record.outcome.get("patient_id") or record.metadata.get("patient_id")
        ref = self.pseudonyms.patient(str(patient)) if patient else record.cloud_id
        return secondary_capture(record, data, ref), True

    def _report(self, scan_id: str) -> None:
        record = self.store.get(scan_id)
        data = self.store.image(scan_id)
        # Without a pseudonymiser or a PACS, a non-DICOM scan has nowhere to go as DICOM.
        capture = self.pseudonyms is not None and self.settings.pacs is not None
        if record is None or not (is_dicom(data) or capture):
            self._mark(scan_id, "not-dicom", [])
            return
        try:
            image, made = self._image(record, data)
            result = final_result(record, image)
            institution = self.settings.institution
            queued: list[tuple[str, str, bytes]] = []
            if made:  # the study's image first: the SR's evidence must be in the PACS too
                queued.append((PACS, f"sc:{scan_id}", dataset_bytes(image)))
            if self.settings.pacs is not None:
                queued.append((PACS, f"sr:{scan_id}", sr_bytes(result, institution)))
                queued.append((PACS, f"pdf:{scan_id}", pdf_bytes(result, institution)))
            if self.settings.fhir is not None:
                queued.append((FHIR, f"fhir:{scan_id}", bundle_json(result)))
        except Exception as exc:  # this scan's header cannot carry a report: say so, go on
            log.error("scan %s: no DICOM/FHIR report: %s", scan_id, exc)
            self._mark(scan_id, "failed", [], str(exc)[:500])
            return
        self._mark(scan_id, "queued", queued)
        log.info(
            "scan %s: %s result reported (%d item(s) queued)", scan_id, result.verdict, len(queued)
        )
        for queue, _key, _payload in queued:
            self.drains[queue].wake.set()

    def _report_review(self, scan_id: str, result: pb.GradeResult) -> None:
        """The reviewer's amended SR (the automated SR its predecessor) and PDF, queued."""
        record = self.store.get(scan_id)
        try:
            if record is None:
                raise ValueError("the scan is no longer in the gateway's records")
            image, _made = self._image(record, self.store.image(scan_id))
            institution = self.settings.institution
            automated = build_sr(final_result(record, image), institution)
            reviewed = reviewed_result(record, image, result)
            queued = [
                (PACS, f"sr-review:{scan_id}", sr_bytes(reviewed, institution, automated)),
                (PACS, f"pdf-review:{scan_id}", pdf_bytes(reviewed, institution)),
            ]
            if self.settings.fhir is not None:  # the EHR gets the amended report too
                queued.append((FHIR, f"fhir-review:{scan_id}", bundle_json(reviewed)))
        except Exception as exc:  # e.g. its raw bytes were purged: say so, go on
            log.error("scan %s: no report of the reviewer's decision: %s", scan_id, exc)
            self._settle_review(scan_id, FAILED, [], str(exc)[:500])
            return
        self._settle_review(scan_id, REPORTED, queued)
        log.info("scan %s: reviewer's decision %s reported", scan_id, reviewed.verdict)
        for queue, _key, _payload in queued:
            self.drains[queue].wake.set()

    def _settle_review(
        self, scan_id: str, state: str, queued: list[tuple[str, str, bytes]], detail: str = ""
    ) -> None:
        with self.db.transaction() as conn:
            for queue, key, payload in queued:
                Outbox.put(conn, queue, key, payload, {"scan_id": scan_id})
            conn.execute(
                "UPDATE review_decisions SET state = ?, detail = ?, updated_at = ? "
                "WHERE scan_id = ? AND state = ?",
                (state, detail, time.time(), scan_id, DECIDED),
            )

    def _mark(
        self,
        scan_id: str,
        state: str,
        queued: list[tuple[str, str, bytes]],
        detail: str = "",
    ) -> None:
        with self.db.transaction() as conn:
            for queue, key, payload in queued:
                Outbox.put(conn, queue, key, payload, {"scan_id": scan_id})
            conn.execute(
                "INSERT OR IGNORE INTO dicom_reports (scan_id, state, detail, created_at) "
                "VALUES (?, ?, ?, ?)",
                (scan_id, state, detail, time.time()),
            )
