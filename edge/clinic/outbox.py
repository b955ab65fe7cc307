"""A durable FIFO in the gateway database: items wait on disk until their sender confirms them.

Each queue delivers in `seq` order; a key enters a queue at most once in the gateway's life
(`outbox_done` remembers settled keys), which is what makes the uplink idempotent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from edge.clinic.database import Database

CLOUD = "cloud"  # gradable scans waiting for the cloud grader
EVENTS = "events"  # MQTT events waiting for the broker's PUBACK


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    queue: str
    key: str
    payload: bytes
    meta: dict[str, Any]
    attempts: int


class Outbox:
    def __init__(self, db: Database) -> None:
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

    def enqueue(self, queue: str, key: str, payload: bytes, meta: dict[str, Any]) -> bool:
        with self.db.transaction() as conn:
            return self.put(conn, queue, key, payload, meta)

    def peek(self, queue: str, limit: int = 1, after_seq: int = 0) -> list[OutboxItem]:
        """The oldest waiting items of `queue` with seq above `after_seq`."""
        rows = self.db.read(
            "SELECT seq, queue, key, payload, meta, attempts FROM outbox "
            "WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ?",
            (queue, after_seq, limit),
        )
        return [
            OutboxItem(
                r["seq"], r["queue"], r["key"], r["payload"], json.loads(r["meta"]), r["attempts"]
            )
            for r in rows
        ]

    @staticmethod
    def settle(
        conn: sqlite3.Connection, item: OutboxItem, outcome: str = "delivered", detail: str = ""
    ) -> None:
        """Remove `item` inside the caller's transaction and remember how it ended."""
        conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
        if item.queue == EVENTS and outcome == "delivered":
            return  # event keys are fresh uuids: no tombstone needed, and events are many
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

    def depth(self, queue: str) -> int:
        return int(
            self.db.read("SELECT COUNT(*) AS n FROM outbox WHERE queue = ?", (queue,))[0]["n"]
        )

    def outcome(self, queue: str, key: str) -> str | None:
        rows = self.db.read(
            "SELECT outcome FROM outbox_done WHERE queue = ? AND key = ?", (queue, key)
        )
        return str(rows[0]["outcome"]) if rows else None
