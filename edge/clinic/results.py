"""Results: the cloud grader's answers as they come back, and the read side of every scan."""

from __future__ import annotations

import logging
from sqlite3 import Connection
from typing import Any

from google.protobuf.json_format import MessageToDict

from edge.clinic import verdict as rules
from edge.clinic.database import Database
from edge.clinic.events import EventPublisher
from edge.clinic.metrics import GatewayMetrics
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.review_follow import REVIEW_VERDICTS, wait_for_review
from edge.clinic.store import ScanStore
from edge.outbox import Outbox, OutboxItem
from shared.messages import ScanVerdictEvent
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import Verdict

log = logging.getLogger(__name__)


def cloud_result_dict(result: pb.GradeResult) -> dict[str, Any]:
    """The cloud's result as JSON, without the heatmap bytes (served on their own URL)."""
    light = pb.GradeResult()
    light.CopyFrom(result)
    light.ClearField("heatmap_png")
    return MessageToDict(light, preserving_proto_field_name=True)


class Results:
    """`cloud_result`/`cloud_rejected` are the uplink's callbacks; the rest answers readers."""

    def __init__(
        self,
        *,
        db: Database,
        store: ScanStore,
        events: EventPublisher,
        metrics: GatewayMetrics,
        site_id: str,
        gateway_id: str,
        pseudonyms: Pseudonymiser,
    ) -> None:
        self.pseudonyms = pseudonyms
        self.db = db
        self.store = store
        self.events = events
        self.metrics = metrics
        self.site_id = site_id
        self.gateway_id = gateway_id

    # -- the cloud's answers (uplink thread) ------------------------------------------------------

    def cloud_result(self, item: OutboxItem, result: pb.GradeResult) -> None:
        scan_id = str(item.meta["scan_id"])
        record = self.store.get(scan_id)
        cloud_id = result.scan_id or (record.cloud_id if record else scan_id)
        verdict = rules.cloud_verdict(result.verdict, result.needs_review)
        event = ScanVerdictEvent(
            sender=self.gateway_id,
            scan_id=cloud_id,
            site_id=self.site_id,
            verdict=verdict,
            reasons=[result.review_reason] if result.review_reason else [],
            confidence=rules.unit(float(result.confidence)),
            source="cloud",
            model_versions={"grader": result.model_version} if result.model_version else {},
        )
        with self.db.transaction() as conn:
            ScanStore.set_cloud(conn, scan_id, "graded", result.SerializeToString())
            Outbox.settle(conn, item)
            self.events.put(conn, event)
            if result.needs_review:  # followed to the reviewer's decision (review_follow.py)
                wait_for_review(conn, scan_id, cloud_id)
        self.metrics.cloud_calls.labels(result="graded").inc()
        self.events.notify()
        log.info("scan %s: cloud says %s (p=%.2f)", scan_id, verdict, result.referable_probability)

    def reviewer_decided(self, conn: Connection, cloud_id: str, result: pb.GradeResult) -> None:
        """The desk's decision as the scan's last verdict event (edge/clinic/review_follow.py)."""
        review = result.review
        verdict = REVIEW_VERDICTS.get(review.outcome, Verdict.REVIEW)
        said = f"a reviewer at the desk decided {review.outcome or 'nothing usable'}"
        event = ScanVerdictEvent(
            sender=self.gateway_id,
            scan_id=cloud_id,
            site_id=self.site_id,
            verdict=verdict,
            reasons=[f"{said} ({review.label})" if review.label else said],
            confidence=1.0,
            source="reviewer",
            model_versions={"grader": review.model_version} if review.model_version else {},
        )
        self.events.put(conn, event)

    def cloud_rejected(self, item: OutboxItem, message: str) -> None:
        scan_id = str(item.meta["scan_id"])
        with self.db.transaction() as conn:
            ScanStore.set_cloud(conn, scan_id, "rejected", None, message)
            # A dead letter, not a tombstone: visible in /status and sent again by `retry`.
            Outbox.bury(conn, item, "permanent", message)
        self.metrics.cloud_calls.labels(result="rejected").inc()

    # -- the read side ---------------------------------------------------------------------------

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
        outcome = {k: v for k, v in record.outcome.items() if k not in ("verdict", "patient_id")}
        out.update(outcome)
        # The patient's pseudonym only: the raw id stays in the gateway's records.
        patient = record.outcome.get("patient_id") or record.metadata.get("patient_id")
        out["patient_ref"] = self.pseudonyms.patient(str(patient)) if patient else None
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
        out["review"] = self._review(record.scan_id)
        return out

    def _review(self, scan_id: str) -> dict[str, Any] | None:
        """The desk's case for this scan: waiting, or the reviewer's decision (None: no case)."""
        rows = self.db.read(
            "SELECT state, decision FROM review_decisions WHERE scan_id = ?",
            (scan_id,),
        )
        if not rows:
            return None
        row = rows[0]
        out: dict[str, Any] = {"state": row["state"]}
        if row["decision"] is not None:
            review = pb.GradeResult.FromString(row["decision"]).review
            out.update(
                outcome=review.outcome,
                label=review.label,
                reviewer=review.reviewer,
                role=review.role,
                note=review.note,
                decided_at=review.decided_at,
            )
        return out

    def heatmap(self, scan_id: str) -> bytes | None:
        record = self.store.get(scan_id)
        if record is None or not record.cloud_result:
            return None
        return pb.GradeResult.FromString(record.cloud_result).heatmap_png or None
