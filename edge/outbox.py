"""The one durable outbox of both gateways: items wait in SQLite until their sender confirms them.

Each queue delivers in `seq` order. A key enters a queue at most once in the gateway's life
(`outbox_done` remembers settled keys), which is what makes the clinic's cloud uplink
idempotent. Senders react to a transport's answer (paho's return codes, a gRPC status) by
leaving the item in place: nothing is dropped while the link is down.

The clinic keeps its queues in its gateway database so a verdict and what it must send commit
together (`put`/`settle` take the caller's transaction); a traffic junction opens a file of its
own with `TopicOutbox.open`.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CLOUD = "cloud"  # gradable scans waiting for the cloud grader
EVENTS = "events"  # MQTT messages waiting for the broker's PUBACK
# Queues whose keys are fresh uuids: a delivered item needs no tombstone, and they are many.
FRESH_KEYS = frozenset({EVENTS})

OUTBOX_SCHEMA = """
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


# Items a sender gave up on (too many attempts of one error class, or refused for good). They
# leave the queue, so the next item goes out, and wait here for an operator's `retry`.
DEAD_LETTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    meta TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error_class TEXT NOT NULL,
    last_error TEXT NOT NULL,
    created_at REAL NOT NULL,
    dead_at REAL NOT NULL,
    PRIMARY KEY (queue, key)
);
"""


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    key: str
    attempts: int
    error_class: str
    last_error: str
    dead_at: float


class Store(Protocol):
    """What the outbox needs of a database (edge.database.Database is one)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    queue: str
    key: str
    payload: bytes
    meta: dict[str, Any]
    attempts: int


class Outbox:
    def __init__(self, db: Store) -> None:
        self.db = db

    @staticmethod
    def put(
        conn: sqlite3.Connection, queue: str, key: str, payload: bytes, meta: dict[str, Any]
    ) -> bool:
        """Queue inside the caller's transaction; False if `key` was queued or delivered before."""
        done = conn.execute(
            "SELECT 1 FROM outbox_done WHERE queue = ? AND key = ?", (queue, key)
        ).fetchone()
        if done is not None:
            return False
        cur = conn.execute(
            "INSERT OR IGNORE INTO outbox (queue, key, payload, meta, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (queue, key, payload, json.dumps(meta), time.time()),
        )
        return cur.rowcount == 1

    def enqueue(self, queue: str, key: str, payload: bytes, meta: dict[str, Any]) -> int | None:
        """Queue in a transaction of its own; the new item's seq, None if `key` was seen."""
        with self.db.transaction() as conn:
            if not self.put(conn, queue, key, payload, meta):
                return None
            return int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])

    def peek(self, queue: str, limit: int = 1, after_seq: int = 0) -> list[OutboxItem]:
        """The oldest waiting items of `queue` with seq above `after_seq`."""
        rows = self.db.read(
            "SELECT seq, queue, key, payload, meta, attempts FROM outbox "
            "WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ?",
            (queue, after_seq, limit),
        )
        return [
            OutboxItem(
                r["seq"],
                r["queue"],
                r["key"],
                bytes(r["payload"]),
                json.loads(r["meta"]),
                r["attempts"],
            )
            for r in rows
        ]

    @staticmethod
    def settle(
        conn: sqlite3.Connection, item: OutboxItem, outcome: str = "delivered", detail: str = ""
    ) -> None:
        """Remove `item` inside the caller's transaction and remember how it ended."""
        conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
        if item.queue in FRESH_KEYS and outcome == "delivered":
            return
        conn.execute(
            "INSERT OR REPLACE INTO outbox_done (queue, key, outcome, detail, done_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (item.queue, item.key, outcome, detail, time.time()),
        )

    def complete(self, item: OutboxItem, outcome: str = "delivered", detail: str = "") -> None:
        with self.db.transaction() as conn:
            self.settle(conn, item, outcome, detail)

    def note_failure(self, item: OutboxItem, error: str) -> int:
        """Count a failed attempt; returns the attempts so far (for the backoff)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:500], item.seq),
            )
            row = conn.execute("SELECT attempts FROM outbox WHERE seq = ?", (item.seq,)).fetchone()
        return int(row[0]) if row else item.attempts + 1

    @staticmethod
    def bury(conn: sqlite3.Connection, item: OutboxItem, error_class: str, error: str) -> None:
        """Move `item` to the dead letters inside the caller's transaction (needs
        DEAD_LETTER_SCHEMA in the database)."""
        row = conn.execute(
            "SELECT attempts, created_at FROM outbox WHERE seq = ?", (item.seq,)
        ).fetchone()
        attempts, created = (int(row[0]), float(row[1])) if row else (item.attempts, time.time())
        conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
        conn.execute(
            "INSERT OR REPLACE INTO dead_letters (queue, key, payload, meta, attempts, "
            "error_class, last_error, created_at, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.queue,
                item.key,
                item.payload,
                json.dumps(item.meta),
                attempts,
                error_class,
                error[:500],
                created,
                time.time(),
            ),
        )

    @staticmethod
    def revive(conn: sqlite3.Connection, queue: str, key: str) -> bool:
        """Put dead letter `key` back at the tail of `queue` with its attempts reset."""
        row = conn.execute(
            "SELECT payload, meta FROM dead_letters WHERE queue = ? AND key = ?", (queue, key)
        ).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM dead_letters WHERE queue = ? AND key = ?", (queue, key))
        conn.execute(
            "INSERT OR IGNORE INTO outbox (queue, key, payload, meta, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (queue, key, row[0], row[1], time.time()),
        )
        return True

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        rows = self.db.read(
            "SELECT queue, key, attempts, error_class, last_error, dead_at FROM dead_letters "
            "WHERE queue = ? ORDER BY dead_at",
            (queue,),
        )
        return [
            DeadLetter(
                r["queue"], r["key"], r["attempts"], r["error_class"], r["last_error"], r["dead_at"]
            )
            for r in rows
        ]

    def dead_count(self, queue: str) -> int:
        rows = self.db.read("SELECT COUNT(*) AS n FROM dead_letters WHERE queue = ?", (queue,))
        return int(rows[0]["n"])

    def depth(self, queue: str) -> int:
        return int(
            self.db.read("SELECT COUNT(*) AS n FROM outbox WHERE queue = ?", (queue,))[0]["n"]
        )

    def outcome(self, queue: str, key: str) -> str | None:
        rows = self.db.read(
            "SELECT outcome FROM outbox_done WHERE queue = ? AND key = ?", (queue, key)
        )
        return str(rows[0]["outcome"]) if rows else None


class TopicOutbox:
    """MQTT messages (topic, payload, retain) on the EVENTS queue of an outbox file of their own."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @classmethod
    def open(cls, path: Path) -> TopicOutbox:
        from edge.database import Database

        _migrate_topic_file(path)
        return cls(Outbox(Database(path, OUTBOX_SCHEMA)))

    def put(self, topic: str, payload: bytes, retain: bool) -> int:
        seq = self.outbox.enqueue(
            EVENTS, uuid.uuid4().hex, payload, {"topic": topic, "retain": retain}
        )
        assert seq is not None  # a fresh uuid is never a duplicate
        return seq

    def pending(self, after: int = 0, limit: int = 10_000) -> list[tuple[int, str, bytes, bool]]:
        """(seq, topic, payload, retain) of the waiting messages above `after`, oldest first."""
        return [
            (i.seq, str(i.meta["topic"]), i.payload, bool(i.meta["retain"]))
            for i in self.outbox.peek(EVENTS, limit=limit, after_seq=after)
        ]

    def remove(self, seq: int) -> None:
        """The broker acknowledged message `seq`."""
        self.outbox.complete(OutboxItem(seq, EVENTS, "", b"", {}, 0))

    def depth(self) -> int:
        return self.outbox.depth(EVENTS)

    def close(self) -> None:
        self.outbox.db.close()


def _migrate_topic_file(path: Path) -> None:
    """A junction outbox written before the shared outbox (columns topic, retain) keeps its rows."""
    if not path.exists():
        return
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        if "topic" not in columns:
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ALTER TABLE outbox RENAME TO outbox_before_shared")
        for statement in _statements(OUTBOX_SCHEMA):
            conn.execute(statement)
        now = time.time()
        for _seq, topic, payload, retain in conn.execute(
            "SELECT seq, topic, payload, retain FROM outbox_before_shared ORDER BY seq"
        ).fetchall():
            conn.execute(
                "INSERT INTO outbox (queue, key, payload, meta, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    EVENTS,
                    uuid.uuid4().hex,
                    payload,
                    json.dumps({"topic": topic, "retain": bool(retain)}),
                    now,
                ),
            )
        conn.execute("DROP TABLE outbox_before_shared")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _statements(script: str) -> Iterator[str]:
    for statement in script.split(";"):
        if statement.strip():
            yield statement
