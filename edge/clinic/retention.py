"""Retention of patient data on the gateway: raw scans and their headers do not stay forever.

A scan older than `retention_days` whose work is over (judged, and the cloud graded it,
refused it, or it was never meant to go) loses its recorded bytes (a DICOM's header with the
patient's name and id is in them), its upload metadata and the patient id in its outcome; the
verdict, reasons and pseudonymous ids stay for audits. A scan still queued, preparing or in the
dead letters keeps everything until that ends. Files in watch_dir/done/ older than the same
age are deleted. One thread runs this at start and every `retention_check_s`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.clinic.database import Database
from edge.clinic.watcher import DONE

log = logging.getLogger(__name__)

FINISHED_CLOUD_STATES = ("graded", "rejected", "not_sent")
DAY_S = 86_400.0


@dataclass(frozen=True)
class Purged:
    scans: int
    done_files: int


class Retention:
    def __init__(
        self, db: Database, days: float, watch_dir: Path | None, interval_s: float = 3600.0
    ) -> None:
        self.db = db
        self.days = days
        self.watch_dir = watch_dir
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clinic-retention", daemon=True)

    def start(self) -> Retention:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # retention must never take the gateway down
                log.exception("retention pass failed; the next one retries")
            self._stop.wait(self.interval_s)

    def run_once(self, now: float | None = None) -> Purged:
        cutoff = (now or time.time()) - self.days * DAY_S
        marks = ",".join("?" * len(FINISHED_CLOUD_STATES))
        due = self.db.read(
            "SELECT scan_id, outcome FROM scans WHERE purged_at IS NULL AND received_at < ? "
            f"AND verdict IS NOT NULL AND (cloud_state IS NULL OR cloud_state IN ({marks}))",
            (cutoff, *FINISHED_CLOUD_STATES),
        )
        for row in due:
            outcome = json.loads(row["outcome"]) if row["outcome"] else {}
            outcome.pop("patient_id", None)
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM scan_images WHERE scan_id = ?", (row["scan_id"],))
                conn.execute(
                    "UPDATE scans SET metadata = '{}', filename = NULL, source_path = NULL, "
                    "outcome = ?, purged_at = ? WHERE scan_id = ?",
                    (json.dumps(outcome), time.time(), row["scan_id"]),
                )
        files = self._prune_done(cutoff)
        if due or files:
            log.info(
                "retention: removed the raw data of %d scans and %d files in %s/ older than %g "
                "days",
                len(due),
                files,
                DONE,
                self.days,
            )
        return Purged(len(due), files)

    def _prune_done(self, cutoff: float) -> int:
        if self.watch_dir is None or not (self.watch_dir / DONE).is_dir():
            return 0
        removed = 0
        for path in (self.watch_dir / DONE).iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError as exc:
                log.warning("retention: cannot remove a file in %s/ (%s)", DONE, exc.strerror)
        return removed
