"""One SQLite file (WAL) per gateway store, shared by its threads; every write is a transaction.

At open the file is checked (`PRAGMA integrity_check`) and brought to the schema this code
knows: `schema` is version 1, `migrations[i]` takes version i+1 to i+2, and a `schema_version`
table records where a file stands. A file written before versions existed is version 1 and is
migrated in place; a file from a newer gateway is refused rather than half-understood.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.errors import EdgewardError


class Database:
    """One connection behind a lock. synchronous=FULL: what a gateway acknowledged (a scan
    answered 202, a message queued) must survive a power cut, which NORMAL in WAL mode does not
    promise.
    """

    def __init__(self, path: Path, schema: str, migrations: Sequence[str] = ()) -> None:
        self.path = path
        self.version = 1 + len(migrations)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._check_integrity()
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate(schema, migrations)
        except (OSError, sqlite3.Error) as exc:
            raise EdgewardError(
                f"gateway database {path}: cannot open ({exc}); check the data directory exists "
                "and is writable, and that no other gateway uses it"
            ) from exc
        self._lock = threading.RLock()

    def _check_integrity(self) -> None:
        try:
            problems = [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check(5)")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            self._conn.close()
            raise EdgewardError(
                f"gateway database {self.path} is damaged ({'; '.join(problems)[:300]}). "
                "Stop here: move the file (and its -wal/-shm) aside and keep it for recovery, "
                "restore it from a backup, or start with an empty data directory; scans it "
                "held that the cloud has not graded must then be sent again"
            )

    def _migrate(self, schema: str, migrations: Sequence[str]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            found = int(row[0]) if row and row[0] is not None else None
            if found is not None and found > self.version:
                raise EdgewardError(
                    f"gateway database {self.path} has schema version {found}, newer than this "
                    f"edgeward knows ({self.version}); run the edgeward that wrote it, or restore "
                    "a backup made before the upgrade"
                )
            if found is None:
                # A fresh file, or one from before versions: both are at version 1 after this
                # (every statement of `schema` is CREATE ... IF NOT EXISTS).
                for statement in _statements(schema):
                    conn.execute(statement)
                found = 1
            for number in range(found, self.version):
                for statement in _statements(migrations[number - 1]):
                    conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (self.version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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


def _statements(script: str) -> Iterator[str]:
    for statement in script.split(";"):
        if statement.strip():
            yield statement
