"""Durable cloud records behind small interfaces: grade results, the review queue, gateway nodes.

One implementation on SQLAlchemy Core serves both databases: SQLite (WAL) in the cloud data_dir,
the embedded default for one machine, and PostgreSQL for anything beyond one node (replicas on
several machines, two clusters during an upgrade), chosen by `EDGEWARD_DATABASE_URL` (a
secret: it carries the password, so it comes from the environment, never a config file).
The SQL is the subset both speak (ON CONFLICT, no dialect functions); the schema comes from the
numbered migrations in `cloud/store_migrations.py`. Writes are idempotent: a scan id has at most
one result and one case, and a result that needs review is stored with its case in ONE
transaction, so no crash leaves a needs_review result without a case.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from cloud.store_cases import (
    REVIEW_LABELS,
    DecisionConflictError,
    DecisionError,
    EdgeFindings,
    ReviewCase,
    ReviewCaseTable,
    UnknownCaseError,
)
from cloud.store_migrations import migrate
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb

DB_NAME = "cloud.sqlite3"
DATABASE_URL_ENV = "EDGEWARD_DATABASE_URL"


class StoreConfigError(EdgewardError):
    """The database URL cannot be used (bad form, unsupported database, unreachable)."""


class EdgeVerdictRecord(NamedTuple):
    """The gateway's own verdict event for a scan, as the bridge recorded it."""

    verdict: str
    confidence: float
    codes: tuple[str, ...] = ()


class ResultStore(Protocol):
    def get(self, scan_id: str) -> pb.GradeResult | None: ...
    def put_if_absent(self, result: pb.GradeResult, site_id: str) -> tuple[pb.GradeResult, bool]:
        """Store unless the scan has a result; returns the stored one and whether it is new."""
        ...

    def record(
        self, result: pb.GradeResult, site_id: str, case: ReviewCase | None
    ) -> tuple[pb.GradeResult, bool]:
        """`put_if_absent`, and the review case with a new result, in one transaction."""
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
    def edge_verdict(self, scan_id: str) -> EdgeVerdictRecord | None: ...


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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")  # several replicas on one file wait, not fail
    cur.close()


def database_url(data_dir: Path | str, url: str | None = None) -> str:
    """`url`, else $EDGEWARD_DATABASE_URL, else the SQLite file in `data_dir`."""
    url = url or os.environ.get(DATABASE_URL_ENV, "")
    if url:
        return url
    path = Path(data_dir) / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreConfigError(
            f"cloud store: database URL {url.rsplit('@', maxsplit=1)[-1]!r} is not a URL; use "
            "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:////path/cloud.sqlite3"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is the driver we install; a bare postgresql:// would ask for psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=8)
    if backend == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    raise StoreConfigError(
        f"cloud store: database {backend!r} (URL {parsed.render_as_string(hide_password=True)}) "
        "is not supported; use postgresql:// or sqlite:///"
    )


def open_database(url: str) -> tuple[Engine, list[int]]:
    """An engine on `url` with every migration applied; (engine, the migrations it applied)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return engine, migrate(conn, engine.dialect.name)
    except OperationalError as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise StoreConfigError(
            f"cloud store: cannot open database {where}: {exc.orig}; check that it runs and "
            f"that {DATABASE_URL_ENV} names it"
        ) from None


class CloudStore(ReviewCaseTable):
    """ResultStore, ReviewQueue and NodeTable on one database (SQLite or PostgreSQL)."""

    def __init__(self, data_dir: Path | str, url: str | None = None) -> None:
        self.url = database_url(data_dir, url)
        self.engine, self.migrations_applied = open_database(self.url)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # ---- results ----
    def get(self, scan_id: str) -> pb.GradeResult | None:
        """The stored result, with the reviewer's decision once its case is decided: that is
        the final word, which the gateway fetches (GetResult) to report to its PACS."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT result FROM results WHERE scan_id = :s"), {"s": scan_id}
            ).first()
        if row is None:
            return None
        result = pb.GradeResult.FromString(bytes(row[0]))
        if result.needs_review:
            review = self.review_decision(scan_id)
            if review is not None:
                result.review.CopyFrom(review)
        return result

    def put_if_absent(self, result: pb.GradeResult, site_id: str) -> tuple[pb.GradeResult, bool]:
        return self.record(result, site_id, None)

    def record(
        self, result: pb.GradeResult, site_id: str, case: ReviewCase | None
    ) -> tuple[pb.GradeResult, bool]:
        """Store the result unless the scan has one and, only with a new result, its case.

        Both rows commit together or not at all: a replica dying in between leaves neither,
        and the client's retry with the same scan id grades and stores both.
        """
        with self.engine.begin() as conn:
            created = self._insert_result(conn, result, site_id)
            if created and case is not None:
                self._insert_case(conn, case)
        if created:
            return result, True
        stored = self.get(result.scan_id)
        assert stored is not None  # the row exists: the insert just skipped it
        return stored, False

    @staticmethod
    def _insert_result(conn: Connection, result: pb.GradeResult, site_id: str) -> bool:
        cur = conn.execute(
            text(
                "INSERT INTO results (scan_id, site_id, request_id, model_version, verdict, "
                "created_at, result) VALUES (:scan_id, :site_id, :request_id, :model_version, "
                ":verdict, :created_at, :result) ON CONFLICT (scan_id) DO NOTHING"
            ),
            {
                "scan_id": result.scan_id,
                "site_id": site_id,
                "request_id": result.request_id,
                "model_version": result.model_version,
                "verdict": result.verdict,
                "created_at": time.time(),
                "result": result.SerializeToString(),
            },
        )
        return cur.rowcount == 1

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM results")).scalar_one())

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
        with self.engine.begin() as conn:
            cur = conn.execute(
                text(
                    "INSERT INTO edge_verdicts (scan_id, site_id, message_id, verdict, "
                    "confidence, received_at, event) VALUES (:scan_id, :site_id, :message_id, "
                    ":verdict, :confidence, :t, :event) ON CONFLICT (scan_id) DO NOTHING"
                ),
                {
                    "scan_id": scan_id,
                    "site_id": site_id,
                    "message_id": message_id,
                    "verdict": verdict,
                    "confidence": confidence,
                    "t": time.time(),
                    "event": event,
                },
            )
            return cur.rowcount == 1

    def edge_verdict(self, scan_id: str) -> EdgeVerdictRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT verdict, confidence, event FROM edge_verdicts WHERE scan_id = :s"),
                {"s": scan_id},
            ).first()
        if row is None:
            return None
        # the event was validated on arrival (ScanVerdictEvent); one stored before it carried
        # codes has none
        codes = json.loads(row[2] or "{}").get("codes") or []
        return EdgeVerdictRecord(str(row[0]), float(row[1]), tuple(str(c) for c in codes))

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
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO nodes (node_id, kind, state, detail, outbox_depth, last_seen, "
                    "last_message_id) VALUES (:n, :kind, :state, :detail, :depth, :t, :m) "
                    "ON CONFLICT (node_id) DO UPDATE SET kind = excluded.kind, "
                    "state = excluded.state, detail = excluded.detail, "
                    "outbox_depth = excluded.outbox_depth, last_seen = excluded.last_seen, "
                    "last_message_id = excluded.last_message_id"
                ),
                {
                    "n": node_id,
                    "kind": kind,
                    "state": state,
                    "detail": detail,
                    "depth": outbox_depth,
                    "t": time.time(),
                    "m": message_id,
                },
            )

    def nodes(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM nodes ORDER BY node_id")).fetchall()
        return [dict(r._mapping) for r in rows]


__all__ = [
    "REVIEW_LABELS",
    "CloudStore",
    "DecisionConflictError",
    "DecisionError",
    "EdgeFindings",
    "EdgeVerdictRecord",
    "ReviewCase",
    "SqliteStore",
    "StoreConfigError",
    "UnknownCaseError",
]

# The name the ingress, bridge and flywheel still import; it opens whichever database is
# configured (SQLite in data_dir unless EDGEWARD_DATABASE_URL names another).
SqliteStore = CloudStore
