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

import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from cloud.store_migrations import migrate
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb

DB_NAME = "cloud.sqlite3"
DATABASE_URL_ENV = "EDGEWARD_DATABASE_URL"
REVIEW_LABELS = ("grade0", "grade1", "grade2", "grade3", "grade4", "ungradable")


class StoreConfigError(EdgewardError):
    """The database URL cannot be used (bad form, unsupported database, unreachable)."""


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


def _case(row: Any) -> ReviewCase:
    data = dict(row._mapping)
    data["image"] = bytes(data["image"])
    data["heatmap_png"] = bytes(data["heatmap_png"])
    return ReviewCase(**data)


class CloudStore:
    """ResultStore, ReviewQueue and NodeTable on one database (SQLite or PostgreSQL)."""

    def __init__(self, data_dir: Path | str, url: str | None = None) -> None:
        self.url = database_url(data_dir, url)
        self.engine = _engine(self.url)
        self.dialect = self.engine.dialect.name
        try:
            with self.engine.connect() as conn:
                self.migrations_applied = migrate(conn, self.dialect)
        except OperationalError as exc:
            self.engine.dispose()
            where = self.engine.url.render_as_string(hide_password=True)
            raise StoreConfigError(
                f"cloud store: cannot open database {where}: {exc.orig}; check that it runs and "
                f"that {DATABASE_URL_ENV} names it"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # ---- results ----
    def get(self, scan_id: str) -> pb.GradeResult | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT result FROM results WHERE scan_id = :s"), {"s": scan_id}
            ).first()
        return None if row is None else pb.GradeResult.FromString(bytes(row[0]))

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

    @staticmethod
    def _insert_case(conn: Connection, case: ReviewCase) -> None:
        names = [f.name for f in fields(ReviewCase)]
        columns = ", ".join(names)
        marks = ", ".join(f":{c}" for c in names)
        conn.execute(
            text(
                f"INSERT INTO review_cases ({columns}) VALUES ({marks}) "
                "ON CONFLICT (scan_id) DO NOTHING"
            ),
            asdict(case),
        )

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

    def edge_verdict(self, scan_id: str) -> tuple[str, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT verdict, confidence FROM edge_verdicts WHERE scan_id = :s"),
                {"s": scan_id},
            ).first()
        return None if row is None else (str(row[0]), float(row[1]))

    # ---- review queue ----
    def enqueue(self, case: ReviewCase) -> ReviewCase:
        with self.engine.begin() as conn:
            self._insert_case(conn, case)
            row = conn.execute(
                text("SELECT * FROM review_cases WHERE scan_id = :s"), {"s": case.scan_id}
            ).first()
        assert row is not None  # inserted now or before
        return _case(row)

    def cases(self, status: str | None = "open", limit: int = 100) -> list[ReviewCase]:
        query = "SELECT * FROM review_cases"
        args: dict[str, Any] = {"limit": limit}
        if status is not None:
            query += " WHERE status = :status"
            args["status"] = status
        query += " ORDER BY created_at LIMIT :limit"
        with self.engine.connect() as conn:
            rows = conn.execute(text(query), args).fetchall()
        return [_case(r) for r in rows]

    def case(self, case_id: str) -> ReviewCase:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT * FROM review_cases WHERE case_id = :c"), {"c": case_id}
            ).first()
        if row is None:
            raise UnknownCaseError(
                f"review case {case_id!r} does not exist; list open cases with GET /v1/review"
            )
        return _case(row)

    def decide(self, case_id: str, label: str, reviewer: str, note: str = "") -> ReviewCase:
        if label not in REVIEW_LABELS:
            raise DecisionError(
                f"review case {case_id}: label {label!r} is not one of {', '.join(REVIEW_LABELS)}"
            )
        if not reviewer.strip():
            raise DecisionError(f"review case {case_id}: reviewer is empty; say who decided")
        with self.engine.begin() as conn:
            # One statement decides or re-confirms: two reviewers racing cannot both win.
            cur = conn.execute(
                text(
                    "UPDATE review_cases SET status = 'decided', label = :label, "
                    "reviewer = :reviewer, note = :note, decided_at = COALESCE(decided_at, :t) "
                    "WHERE case_id = :c AND (status = 'open' OR label = :label)"
                ),
                {
                    "label": label,
                    "reviewer": reviewer,
                    "note": note,
                    "t": time.time(),
                    "c": case_id,
                },
            )
            changed = cur.rowcount == 1
        case = self.case(case_id)  # raises UnknownCaseError for an unknown id
        if not changed:
            raise DecisionConflictError(
                f"review case {case_id} was already decided as {case.label!r} by {case.reviewer}; "
                "a different label needs a new case"
            )
        return case

    def labels(self) -> list[dict[str, Any]]:
        """Reviewer labels for retraining: scan, label, the model it corrects."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT scan_id, site_id, label, model_version, cloud_verdict, decided_at "
                    "FROM review_cases WHERE status = 'decided' ORDER BY decided_at"
                )
            ).fetchall()
        return [dict(r._mapping) for r in rows]

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


# The name the ingress, bridge and flywheel still import; it opens whichever database is
# configured (SQLite in data_dir unless EDGEWARD_DATABASE_URL names another).
SqliteStore = CloudStore
