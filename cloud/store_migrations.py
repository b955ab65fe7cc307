"""Numbered schema migrations of the cloud store, for SQLite and PostgreSQL alike.

Each migration runs once, in order, inside one transaction with its row in `schema_version`;
a new schema change is a new entry at the end, never an edit of an old one. Statements name
their column types through `{blob}`, `{float}` and `{serial}` (BLOB/REAL on SQLite, BYTEA/DOUBLE
PRECISION on PostgreSQL, whose REAL is only 4 bytes: a time.time() stamp would lose its seconds;
an autoincrementing key).
Migration 1 uses IF NOT EXISTS, so a database made by the pre-migration code adopts it as is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, text

from shared.errors import EdgewardError


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: tuple[str, ...]
    # Statements whose SQL differs by database (triggers), after `statements`.
    by_dialect: tuple[tuple[str, tuple[str, ...]], ...] = ()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "results, edge verdicts, review cases, nodes",
        (
            """CREATE TABLE IF NOT EXISTS results (
                scan_id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                model_version TEXT NOT NULL,
                verdict TEXT NOT NULL,
                created_at {float} NOT NULL,
                result {blob} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS edge_verdicts (
                scan_id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                message_id TEXT NOT NULL,
                verdict TEXT NOT NULL,
                confidence {float} NOT NULL,
                received_at {float} NOT NULL,
                event TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS review_cases (
                case_id TEXT PRIMARY KEY,
                scan_id TEXT NOT NULL UNIQUE,
                site_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                edge_verdict TEXT NOT NULL,
                cloud_verdict TEXT NOT NULL,
                referable_probability {float} NOT NULL,
                confidence {float} NOT NULL,
                model_version TEXT NOT NULL,
                image {blob} NOT NULL,
                content_type TEXT NOT NULL,
                heatmap_png {blob} NOT NULL,
                created_at {float} NOT NULL,
                status TEXT NOT NULL DEFAULT 'open',
                label TEXT,
                reviewer TEXT,
                note TEXT,
                decided_at {float}
            )""",
            """CREATE TABLE IF NOT EXISTS nodes (
                node_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                detail TEXT NOT NULL,
                outbox_depth INTEGER NOT NULL,
                last_seen {float} NOT NULL,
                last_message_id TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "review queue listing index",
        ("CREATE INDEX IF NOT EXISTS review_cases_status ON review_cases (status, created_at)",),
    ),
    Migration(
        3,
        "review desk: accounts, sessions, decision audit, second opinions",
        (
            """CREATE TABLE IF NOT EXISTS desk_users (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at {float} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS desk_sessions (
                token_hash TEXT PRIMARY KEY,
                user_name TEXT NOT NULL REFERENCES desk_users (name),
                csrf TEXT NOT NULL,
                created_at {float} NOT NULL,
                expires_at {float} NOT NULL
            )""",
            # Append-only: the desk only ever INSERTs here (record_id is a fresh uuid).
            """CREATE TABLE IF NOT EXISTS desk_decisions (
                record_id TEXT PRIMARY KEY,
                case_id TEXT NOT NULL,
                scan_id TEXT NOT NULL,
                reviewer TEXT NOT NULL,
                outcome TEXT NOT NULL,
                label TEXT,
                note TEXT NOT NULL,
                model_version TEXT NOT NULL,
                assigned_to TEXT,
                decided_at {float} NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS desk_decisions_case "
            "ON desk_decisions (case_id, decided_at)",
            """CREATE TABLE IF NOT EXISTS desk_second_opinions (
                case_id TEXT PRIMARY KEY,
                requested_by TEXT NOT NULL,
                assigned_to TEXT NOT NULL,
                requested_at {float} NOT NULL
            )""",
        ),
    ),
    Migration(
        4,
        "review desk audit is append-only (UPDATE and DELETE refused by the database)",
        (),
        (
            (
                "sqlite",
                tuple(
                    f"CREATE TRIGGER IF NOT EXISTS desk_decisions_no_{op.lower()} BEFORE {op} "
                    "ON desk_decisions BEGIN SELECT RAISE(ABORT, 'the review desk audit is "
                    "append-only'); END"
                    for op in ("UPDATE", "DELETE")
                ),
            ),
            (
                "postgresql",
                (
                    "CREATE OR REPLACE FUNCTION desk_decisions_append_only() RETURNS trigger "
                    "AS $$ BEGIN RAISE EXCEPTION 'the review desk audit is append-only'; END $$ "
                    "LANGUAGE plpgsql",
                    "CREATE TRIGGER desk_decisions_append_only BEFORE UPDATE OR DELETE ON "
                    "desk_decisions FOR EACH ROW EXECUTE FUNCTION desk_decisions_append_only()",
                ),
            ),
        ),
    ),
    Migration(
        5,
        "review cases carry the edge's findings (quality findings, OOD scores) as JSON",
        ("ALTER TABLE review_cases ADD COLUMN edge_findings TEXT",),
    ),
    Migration(
        6,
        "the grade log (predictions, reviewer labels) for deployments beyond one node",
        (
            # the columns of shared/monitoring/prediction_log.py's SCHEMA, copied: a migration is
            # frozen, so a later change to the log's columns is a new migration here as well
            """CREATE TABLE IF NOT EXISTS predictions (
                seq {serial},
                pid TEXT NOT NULL,
                tier TEXT NOT NULL,
                model TEXT NOT NULL,
                model_version TEXT NOT NULL,
                at {float} NOT NULL,
                site TEXT NOT NULL DEFAULT '',
                verdict TEXT NOT NULL DEFAULT '',
                confidence {float} NOT NULL,
                score {float},
                prediction INTEGER,
                arm TEXT NOT NULL DEFAULT 'champion',
                latency_ms {float},
                error TEXT NOT NULL DEFAULT '',
                attributes TEXT NOT NULL DEFAULT '{{}}',
                features TEXT NOT NULL DEFAULT '{{}}',
                UNIQUE (pid, model_version, arm)
            )""",
            "CREATE INDEX IF NOT EXISTS predictions_model ON predictions (model, seq)",
            """CREATE TABLE IF NOT EXISTS labels (
                pid TEXT PRIMARY KEY,
                label INTEGER NOT NULL,
                source TEXT NOT NULL DEFAULT 'reviewer',
                at {float} NOT NULL
            )""",
        ),
    ),
)

_TYPES = {
    "sqlite": {"blob": "BLOB", "float": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {
        "blob": "BYTEA",
        "float": "DOUBLE PRECISION",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}
# Any constant: two replicas starting at once take turns migrating a PostgreSQL database.
_PG_LOCK = 0x65647761


def migrate(conn: Connection, dialect: str) -> list[int]:
    """Apply the migrations `conn`'s database lacks, in one transaction; their numbers.

    `conn` must not be in a transaction. Refuses a database from a newer edgeward (a higher
    migration than this code knows): an old replica must not write to a schema it cannot read.
    """
    if dialect not in _TYPES:
        raise EdgewardError(
            f"cloud store: database dialect {dialect!r} is not supported; use sqlite or postgresql"
        )
    types = _TYPES[dialect]
    applied: list[int] = []
    with conn.begin():
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                f"number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {types['float']})"
            )
        )
        done = {int(n) for (n,) in conn.execute(text("SELECT number FROM schema_version"))}
        newest = max((m.number for m in MIGRATIONS), default=0)
        if done and max(done) > newest:
            raise EdgewardError(
                f"cloud store: the database is at schema migration {max(done)} but this edgeward "
                f"knows only up to {newest}; upgrade edgeward before pointing it at this database"
            )
        # One transaction for all pending steps (the advisory lock lives as long as it does).
        for migration in MIGRATIONS:
            if migration.number in done:
                continue
            for statement in migration.statements:
                conn.execute(text(statement.format(**types)))
            for statement in dict(migration.by_dialect).get(dialect, ()):
                conn.execute(text(statement))
            # ON CONFLICT: SQLite has no advisory lock, and its DDL above is idempotent, so a
            # second process racing this one must not fail on the version row either.
            conn.execute(
                text(
                    "INSERT INTO schema_version (number, name, applied_at) "
                    "VALUES (:n, :name, :t) ON CONFLICT (number) DO NOTHING"
                ),
                {"n": migration.number, "name": migration.name, "t": time.time()},
            )
            applied.append(migration.number)
    return applied
