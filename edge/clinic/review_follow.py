"""Follow a scan the cloud sent to its review desk until a reviewer decides.

The cloud's "review" is not the last word. Every gateway asks the cloud (GetResult) about each of
its scans that wait for review, and stores the decision when it comes: `GET /scans/{id}` shows it,
and with a PACS the report worker turns it into the study's final report (an amended SR, the
cloud's SR its predecessor, verified by the reviewer, and a new PDF). Why the gateway asks and the
cloud does not push: the gateway owns its PACS and the original DICOM header, and the cloud never
learns either (only pixels and a pseudonymous scan id leave the site).

States of a `review_decisions` row (edge/clinic/database.py, migrations 4-5): waiting (asked
again when due, see DUE) -> decided (the decision is stored) -> reported (SR and PDF queued), or
failed (this scan's header cannot carry a report; detail says why).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

import grpc

from edge.clinic.database import Database
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import Verdict

log = logging.getLogger(__name__)

WAITING, DECIDED, REPORTED, FAILED = "waiting", "decided", "reported", "failed"
FetchResult = Callable[[str], pb.GradeResult]  # CloudUplink.get_result
# Called inside the transaction that stores a decision: (conn, the cloud's scan id, its result).
Record = Callable[[sqlite3.Connection, str, pb.GradeResult], None]
# Outcomes of the desk -> verdicts of the reports (edge/clinic/reports/content.py PLAIN_WORDS).
VERDICTS = {"refer": "refer", "no_referable": "no_refer", "ungradable": "ungradable"}
# ... and as the verdict of the scan's last event: a photograph a reviewer cannot grade is taken
# again.
REVIEW_VERDICTS = {
    "refer": Verdict.REFER,
    "no_referable": Verdict.NO_IMMEDIATE_CONCERN,
    "ungradable": Verdict.RETAKE,
}


def wait_for_review(conn: sqlite3.Connection, scan_id: str, cloud_id: str) -> None:
    """Mark a scan whose final result says "review" (inside the caller's transaction)."""
    conn.execute(
        "INSERT OR IGNORE INTO review_decisions (scan_id, cloud_id, state, updated_at) "
        "VALUES (?, ?, ?, ?)",
        (scan_id, cloud_id, WAITING, time.time()),
    )


# A waiting scan is asked again after a tenth of the time it has waited, between 2 s and 5 min:
# a decision is learned within ~10 % of its wait, and a desk with hundreds of open cases costs
# each gateway a few calls a second, not 100 every round.
DUE = """
SELECT scan_id, cloud_id FROM review_decisions
WHERE state = ?
  AND (asked_at IS NULL OR asked_at + MAX(2.0, MIN(300.0, (? - updated_at) / 10.0)) <= ?)
ORDER BY asked_at IS NOT NULL, asked_at LIMIT 100
"""


class ReviewFollower:
    """One thread: every `poll_s`, ask the cloud about each waiting scan; store decisions."""

    def __init__(
        self,
        db: Database,
        fetch: FetchResult,
        *,
        record: Record | None = None,  # e.g. the decision's MQTT event, in the same transaction
        on_decided: Callable[[], None] | None = None,  # after commit: wake whoever sends it
        poll_s: float = 2.0,
    ) -> None:
        self.db = db
        self.fetch = fetch
        self.record = record
        self.on_decided = on_decided
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="review-follower", daemon=True)
        self._failing = False

    def start(self) -> ReviewFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # a gateway that failed to start stops too
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                if self.poll_once() and self.on_decided is not None:
                    self.on_decided()
            except Exception:  # a bug here must not stop later decisions; it is logged
                log.exception("following review decisions failed")

    def poll_once(self, now: float | None = None) -> int:
        """Ask about the waiting scans that are due (100 a round); returns how many decided."""
        now = time.time() if now is None else now
        rows = self.db.read(DUE, (WAITING, now, now))
        decided = 0
        undecided: list[str] = []
        try:
            for row in rows:
                try:
                    result = self.fetch(str(row["cloud_id"]))
                except grpc.RpcError as exc:
                    # The cloud is down or forgot nothing yet: ask again next round, log once.
                    if not self._failing:
                        code = exc.code() if isinstance(exc, grpc.Call) else "?"
                        log.warning("review decisions: cloud not answering (%s); will retry", code)
                    self._failing = True
                    return decided
                self._failing = False
                if not result.HasField("review"):
                    undecided.append(str(row["scan_id"]))
                    continue
                self._store(str(row["scan_id"]), str(row["cloud_id"]), result, now)
                decided += 1
        finally:
            if undecided:  # one write for the round: when each was last asked
                with self.db.transaction() as conn:
                    conn.executemany(
                        "UPDATE review_decisions SET asked_at = ? WHERE scan_id = ?",
                        [(now, s) for s in undecided],
                    )
        return decided

    def _store(self, scan_id: str, cloud_id: str, result: pb.GradeResult, now: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE review_decisions SET state = ?, decision = ?, updated_at = ? "
                "WHERE scan_id = ? AND state = ?",
                (DECIDED, result.SerializeToString(), now, scan_id, WAITING),
            )
            if self.record is not None:
                self.record(conn, cloud_id, result)
        review = result.review
        log.info(
            "scan %s: reviewer %s (%s) decided %s",
            scan_id,
            review.reviewer,
            review.role,
            review.outcome,
        )
