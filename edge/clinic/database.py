"""The gateway's one SQLite file (WAL): scan records and both outboxes commit together."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import EdgewardError

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    meta TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    UNIQUE(queue, key)
);
CREATE TABLE IF NOT EXISTS outbox_done (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    done_at REAL NOT NULL,
    PRIMARY KEY (queue, key)
);
"""


class Database:
    """One connection shared by the gateway's threads behind a lock; every write is a transaction.

    synchronous=FULL: a scan answered with 202 must survive a power cut, which NORMAL in WAL
    mode does not promise.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EdgewardError(
                f"gateway database {path}: cannot open ({exc}); check data_dir exists and is "
                "writable, and that no other gateway uses it"
            ) from exc
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return list(cur.fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
