"""The clinic gateway's one SQLite file: scan records and both outbox queues commit together."""

from __future__ import annotations

from pathlib import Path

from edge import database
from edge.outbox import DEAD_LETTER_SCHEMA, OUTBOX_SCHEMA

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS scans (
    scan_id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL UNIQUE,
    image_sha256 TEXT NOT NULL,
    received_at REAL NOT NULL,
    source TEXT NOT NULL,
    filename TEXT,
    content_type TEXT,
    metadata TEXT NOT NULL,
    source_path TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    verdict TEXT,
    outcome TEXT,
    judged_at REAL,
    cloud_state TEXT,
    cloud_result BLOB,
    cloud_detail TEXT,
    cloud_at REAL
);
CREATE INDEX IF NOT EXISTS scans_state ON scans(state);
CREATE TABLE IF NOT EXISTS scan_images (
    scan_id TEXT PRIMARY KEY REFERENCES scans(scan_id),
    data BLOB NOT NULL
);
"""
    + OUTBOX_SCHEMA
)


# Numbered migrations: MIGRATIONS[0] takes version 1 (SCHEMA above, frozen) to 2, and so on.
# Append, never edit: a gateway in the field may stand at any of them.
MIGRATIONS: tuple[str, ...] = (
    # 2: dead letters, and per-error-class attempt counts of each outbox item.
    DEAD_LETTER_SCHEMA + "ALTER TABLE outbox ADD COLUMN failures TEXT NOT NULL DEFAULT '{}';",
    # 3: when retention removed a scan's raw bytes and identifying metadata.
    "ALTER TABLE scans ADD COLUMN purged_at REAL;",
    # 4: scans the cloud sent to its review desk, followed to the reviewer's decision
    # (edge/clinic/review_follow.py; a gateway with DICOM reports made it before this one).
    """
CREATE TABLE IF NOT EXISTS review_decisions (
    scan_id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL,
    state TEXT NOT NULL,
    decision BLOB,
    detail TEXT,
    updated_at REAL NOT NULL
);
""",
    # 5: when the follower last asked the cloud about a waiting scan (it backs off).
    "ALTER TABLE review_decisions ADD COLUMN asked_at REAL;",
)


class Database(database.Database):
    """The gateway database at `path`, with the scan tables and the outbox."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA, MIGRATIONS)
