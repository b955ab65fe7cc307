"""Scan records: written before anything else happens to a scan, updated as verdicts arrive."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.clinic.database import Database

Receipt = Literal["accepted", "duplicate", "conflict"]
RECEIVED = "received"  # recorded, not judged yet (a restart judges it)
JUDGED = "judged"


@dataclass
class ScanRecord:
    scan_id: str
    cloud_id: str
    received_at: float
    source: str
    filename: str | None
    content_type: str | None
    metadata: dict[str, str]
    source_path: str | None
    state: str
    attempts: int
    verdict: str | None
    outcome: dict[str, Any] = field(default_factory=dict)
    cloud_state: str | None = None
    cloud_result: bytes | None = None
    cloud_detail: str | None = None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> ScanRecord:
        return cls(
            scan_id=r["scan_id"],
            cloud_id=r["cloud_id"],
            received_at=r["received_at"],
            source=r["source"],
            filename=r["filename"],
            content_type=r["content_type"],
            metadata=json.loads(r["metadata"]),
            source_path=r["source_path"],
            state=r["state"],
            attempts=r["attempts"],
            verdict=r["verdict"],
            outcome=json.loads(r["outcome"]) if r["outcome"] else {},
            cloud_state=r["cloud_state"],
            cloud_result=r["cloud_result"],
            cloud_detail=r["cloud_detail"],
        )


class ScanStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        scan_id: str,
        cloud_id: str,
        data: bytes,
        *,
        source: str,
        filename: str | None,
        content_type: str | None,
        metadata: dict[str, str],
        source_path: str | None = None,
    ) -> Receipt:
        """Record a submission with its bytes; a repeated id is a duplicate, or a conflict if
        the bytes differ (a client reused an id for another image)."""
        digest = hashlib.sha256(data).hexdigest()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT image_sha256 FROM scans WHERE scan_id = ?", (scan_id,)
            ).fetchone()
            if row is not None:
                return "duplicate" if row[0] == digest else "conflict"
            conn.execute(
                "INSERT INTO scans (scan_id, cloud_id, image_sha256, received_at, source, filename,"
                " content_type, metadata, source_path, state) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    scan_id,
                    cloud_id,
                    digest,
                    time.time(),
                    source,
                    filename,
                    content_type,
                    json.dumps(metadata),
                    source_path,
                    RECEIVED,
                ),
            )
            conn.execute("INSERT INTO scan_images (scan_id, data) VALUES (?, ?)", (scan_id, data))
        return "accepted"

    def get(self, scan_id: str) -> ScanRecord | None:
        rows = self.db.read("SELECT * FROM scans WHERE scan_id = ?", (scan_id,))
        return ScanRecord.from_row(rows[0]) if rows else None

    def image(self, scan_id: str) -> bytes:
        rows = self.db.read("SELECT data FROM scan_images WHERE scan_id = ?", (scan_id,))
        return bytes(rows[0]["data"]) if rows else b""

    def unjudged(self) -> list[str]:
        """Ids recorded but not judged, oldest first: the work a restart must resume."""
        rows = self.db.read(
            "SELECT scan_id FROM scans WHERE state = ? ORDER BY received_at, rowid", (RECEIVED,)
        )
        return [r["scan_id"] for r in rows]

    def with_cloud_state(self, state: str) -> list[str]:
        """Ids whose cloud state is `state`, oldest first (e.g. copies a restart must make)."""
        rows = self.db.read(
            "SELECT scan_id FROM scans WHERE cloud_state = ? ORDER BY received_at, rowid", (state,)
        )
        return [r["scan_id"] for r in rows]

    def start_attempt(self, scan_id: str) -> int:
        """Count an attempt to judge before making it, so a scan that crashes us is noticed."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE scans SET attempts = attempts + 1 WHERE scan_id = ?", (scan_id,))
            row = conn.execute(
                "SELECT attempts FROM scans WHERE scan_id = ?", (scan_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def set_outcome(
        conn: sqlite3.Connection,
        scan_id: str,
        *,
        verdict: str,
        outcome: dict[str, Any],
        cloud_state: str | None,
        cloud_detail: str | None = None,
    ) -> None:
        conn.execute(
            "UPDATE scans SET state = ?, verdict = ?, outcome = ?, judged_at = ?, cloud_state = ?,"
            " cloud_detail = ? WHERE scan_id = ?",
            (JUDGED, verdict, json.dumps(outcome), time.time(), cloud_state, cloud_detail, scan_id),
        )

    @staticmethod
    def set_cloud(
        conn: sqlite3.Connection,
        scan_id: str,
        state: str,
        result: bytes | None = None,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            "UPDATE scans SET cloud_state = ?, cloud_result = ?, cloud_detail = ?, cloud_at = ?"
            " WHERE scan_id = ?",
            (state, result, detail, time.time(), scan_id),
        )

    def counts(self) -> dict[str, int]:
        rows = self.db.read("SELECT state, COUNT(*) AS n FROM scans GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}
