"""How long the cloud uplink keeps trying one scan, and what happens when it stops.

Each failed grading call is classed by its gRPC code: `transient` (UNAVAILABLE: the cloud is
down or overloaded, nothing wrong with the scan) or `refused` (any other answer: the cloud
heard the scan and failed on it). Each class has its own attempt bound (cloud.max_attempts_*);
past it the item moves, in one transaction, from the outbox to the dead letters and the scan's
cloud state becomes `dead_letter`, so the scans behind it go out. A scan the cloud rejects for
good (INVALID_ARGUMENT, class `permanent`) is buried at once. An operator lists them with
`edgeward edge clinic dead-letters` and sends them again with `... retry ID|--all`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from edge.clinic.store import ScanStore
from edge.outbox import CLOUD, Outbox, OutboxItem, Store
from shared.config.clinic import CloudUplink as CloudSettings

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({"UNAVAILABLE"})
DEAD_LETTER = "dead_letter"


def error_class(message: str) -> str:
    """`transient` or `refused`, from the uplink's "CODE: detail" message."""
    code = message.split(":", 1)[0].strip()
    return "transient" if code in TRANSIENT_CODES else "refused"


class CloudOutbox(Outbox):
    """The outbox the uplink sees: a failure past its class's bound buries the item."""

    def __init__(self, db: Store, settings: CloudSettings, on_buried: Callable[[], None]) -> None:
        super().__init__(db)
        self.limits = {
            "transient": settings.max_attempts_transient,
            "refused": settings.max_attempts_refused,
        }
        self._on_buried = on_buried

    def note_failure(self, item: OutboxItem, error: str) -> int:
        if item.queue != CLOUD:
            return super().note_failure(item, error)
        kind = error_class(error)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT attempts, failures FROM outbox WHERE seq = ?", (item.seq,)
            ).fetchone()
            if row is None:  # settled meanwhile
                return item.attempts + 1
            failures: dict[str, int] = json.loads(row[1] or "{}")
            failures[kind] = failures.get(kind, 0) + 1
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, failures = ? "
                "WHERE seq = ?",
                (error[:500], json.dumps(failures), item.seq),
            )
            buried = failures[kind] >= self.limits[kind]
            if buried:
                detail = f"gave up after {failures[kind]} {kind} failures: {error}"[:500]
                self.bury(conn, item, kind, error)
                ScanStore.set_cloud(conn, str(item.meta["scan_id"]), DEAD_LETTER, None, detail)
        if buried:
            log.error(
                "scan %s: moved to the dead letters after %d %s failures (%s); the queue goes "
                "on. Send it again with `edgeward edge clinic retry %s`",
                item.meta["scan_id"],
                failures[kind],
                kind,
                error[:200],
                item.meta["scan_id"],
            )
            self._on_buried()
        return int(row[0]) + 1


class DeadLetters:
    """The operator's view: list the dead letters, put them back in the queue."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "scan_id": d.key,
                "error_class": d.error_class,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "dead_at": d.dead_at,
            }
            for d in self.outbox.dead_letters(CLOUD)
        ]

    def retry(self, scan_id: str | None = None) -> list[str]:
        """Queue `scan_id` (every dead letter when None) again; the ids that went back."""
        keys = [scan_id] if scan_id else [d.key for d in self.outbox.dead_letters(CLOUD)]
        revived = []
        with self.outbox.db.transaction() as conn:
            for key in keys:
                if Outbox.revive(conn, CLOUD, key):
                    ScanStore.set_cloud(conn, key, "queued")
                    revived.append(key)
        return revived
