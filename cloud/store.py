"""Durable cloud records behind small interfaces: grade results, the review queue, gateway nodes.

SQLite (WAL) is the embedded implementation for one machine; a cluster swaps in a networked store
behind the same Protocols. Writes are idempotent: a scan id has at most one result and one case.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb

DB_NAME = "cloud.sqlite3"
REVIEW_LABELS = ("grade0", "grade1", "grade2", "grade3", "grade4", "ungradable")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    scan_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_at REAL NOT NULL,
    result BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS edge_verdicts (
    scan_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    confidence REAL NOT NULL,
    received_at REAL NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS review_cases (
    case_id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL UNIQUE,
    site_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    edge_verdict TEXT NOT NULL,
    cloud_verdict TEXT NOT NULL,
    referable_probability REAL NOT NULL,
    confidence REAL NOT NULL,
    model_version TEXT NOT NULL,
    image BLOB NOT NULL,
    content_type TEXT NOT NULL,
    heatmap_png BLOB NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    label TEXT,
    reviewer TEXT,
    note TEXT,
    decided_at REAL
);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    outbox_depth INTEGER NOT NULL,
    last_seen REAL NOT NULL,
    last_message_id TEXT NOT NULL
);
"""


class UnknownCaseError(EdgewardError):
    """A review case id that the queue does not hold."""


class DecisionError(EdgewardError):
    """A reviewer decision that cannot be stored as given (bad label, no reviewer)."""


class DecisionConflictError(DecisionError):
    """The case was already decided with a different label."""


@dataclass(frozen=True)
class ReviewCase:
    """A scan a person must look at, with everything they need to decide."""

    scan_id: str
    site_id: str
    reason: str
    edge_verdict: str
    cloud_verdict: str
    referable_probability: float
    confidence: float
    model_version: str
    image: bytes
    content_type: str
    heatmap_png: bytes
    case_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    status: str = "open"
    label: str | None = None
    reviewer: str | None = None
    note: str | None = None
    decided_at: float | None = None

    def summary(self) -> dict[str, Any]:
        """The case without its image bytes (for listings)."""
        data = asdict(self)
        data.pop("image")
        data.pop("heatmap_png")
        return data


class ResultStore(Protocol):
    def get(self, scan_id: str) -> pb.GradeResult | None: ...
    def put_if_absent(self, result: pb.GradeResult, site_id: str) -> tuple[pb.GradeResult, bool]:
        """Store unless the scan has a result; returns the stored one and whether it is new."""
        ...

    def count(self) -> int: ...
    def record_edge_verdict(
        self,
        scan_id: str,
        *,
        site_id: str,
        message_id: str,
        verdict: str,
        confidence: float,
        event: str,
    ) -> bool: ...
    def edge_verdict(self, scan_id: str) -> tuple[str, float] | None: ...


class ReviewQueue(Protocol):
    def enqueue(self, case: ReviewCase) -> ReviewCase:
        """Queue the case unless its scan already has one; returns the queued case."""
        ...

    def cases(self, status: str | None = "open", limit: int = 100) -> list[ReviewCase]: ...
    def case(self, case_id: str) -> ReviewCase: ...
    def decide(self, case_id: str, label: str, reviewer: str, note: str = "") -> ReviewCase: ...


class NodeTable(Protocol):
    def upsert(
        self,
        node_id: str,
        *,
        kind: str,
        state: str,
        detail: str,
        outbox_depth: int,
        message_id: str,
    ) -> None: ...
    def nodes(self) -> list[dict[str, Any]]: ...


class SqliteStore:
    """ResultStore, ReviewQueue and NodeTable in one SQLite file under the cloud data_dir."""

    def __init__(self, data_dir: Path | str) -> None:
        self.path = Path(data_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- results ----
    def get(self, scan_id: str) -> pb.GradeResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT result FROM results WHERE scan_id = ?", (scan_id,)
            ).fetchone()
        if row is None:
            return None
        return pb.GradeResult.FromString(row["result"])

    def put_if_absent(self, result: pb.GradeResult, site_id: str) -> tuple[pb.GradeResult, bool]:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    result.scan_id,
                    site_id,
                    result.request_id,
                    result.model_version,
                    result.verdict,
                    time.time(),
                    result.SerializeToString(),
                ),
            )
            self._db.commit()
            created = cur.rowcount == 1
        if created:
            return result, True
        stored = self.get(result.scan_id)
        assert stored is not None  # the row exists: INSERT OR IGNORE just skipped it
        return stored, False

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def record_edge_verdict(
        self,
        scan_id: str,
        *,
        site_id: str,
        message_id: str,
        verdict: str,
        confidence: float,
        event: str,
    ) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO edge_verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (scan_id, site_id, message_id, verdict, confidence, time.time(), event),
            )
            self._db.commit()
            return cur.rowcount == 1

    def edge_verdict(self, scan_id: str) -> tuple[str, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT verdict, confidence FROM edge_verdicts WHERE scan_id = ?", (scan_id,)
            ).fetchone()
        return None if row is None else (row["verdict"], float(row["confidence"]))

    # ---- review queue ----
    def enqueue(self, case: ReviewCase) -> ReviewCase:
        data = asdict(case)
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._lock:
            self._db.execute(
                f"INSERT OR IGNORE INTO review_cases ({columns}) VALUES ({marks})",
                tuple(data.values()),
            )
            self._db.commit()
            row = self._db.execute(
                "SELECT * FROM review_cases WHERE scan_id = ?", (case.scan_id,)
            ).fetchone()
        return ReviewCase(**dict(row))

    def cases(self, status: str | None = "open", limit: int = 100) -> list[ReviewCase]:
        query = "SELECT * FROM review_cases"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        query += " ORDER BY created_at LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [ReviewCase(**dict(r)) for r in rows]

    def case(self, case_id: str) -> ReviewCase:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM review_cases WHERE case_id = ?", (case_id,)
            ).fetchone()
        if row is None:
            raise UnknownCaseError(
                f"review case {case_id!r} does not exist; list open cases with GET /v1/review"
            )
        return ReviewCase(**dict(row))

    def decide(self, case_id: str, label: str, reviewer: str, note: str = "") -> ReviewCase:
        if label not in REVIEW_LABELS:
            raise DecisionError(
                f"review case {case_id}: label {label!r} is not one of {', '.join(REVIEW_LABELS)}"
            )
        if not reviewer.strip():
            raise DecisionError(f"review case {case_id}: reviewer is empty; say who decided")
        case = self.case(case_id)
        if case.status == "decided" and case.label != label:
            raise DecisionConflictError(
                f"review case {case_id} was already decided as {case.label!r} by {case.reviewer}; "
                "a different label needs a new case"
            )
        with self._lock:
            self._db.execute(
                "UPDATE review_cases SET status = 'decided', label = ?, reviewer = ?, note = ?, "
                "decided_at = COALESCE(decided_at, ?) WHERE case_id = ?",
                (label, reviewer, note, time.time(), case_id),
            )
            self._db.commit()
        return self.case(case_id)

    def labels(self) -> list[dict[str, Any]]:
        """Reviewer labels for retraining: scan, label, the model it corrects."""
        with self._lock:
            rows = self._db.execute(
                "SELECT scan_id, site_id, label, model_version, cloud_verdict, decided_at "
                "FROM review_cases WHERE status = 'decided' ORDER BY decided_at"
            ).fetchall()
        return [dict(r) for r in rows]

    # ---- nodes ----
    def upsert(
        self,
        node_id: str,
        *,
        kind: str,
        state: str,
        detail: str,
        outbox_depth: int,
        message_id: str,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET "
                "kind = excluded.kind, state = excluded.state, detail = excluded.detail, "
                "outbox_depth = excluded.outbox_depth, last_seen = excluded.last_seen, "
                "last_message_id = excluded.last_message_id",
                (node_id, kind, state, detail, outbox_depth, time.time(), message_id),
            )
            self._db.commit()

    def nodes(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM nodes ORDER BY node_id").fetchall()
        return [dict(r) for r in rows]
