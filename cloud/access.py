"""Who may do what at the cloud's HTTP ingress, who owns each scan, and who decided each case.

Kept in its own SQLite file beside the results store: `scan_owner` ties a scan id to the site
that first sent it (a site reads only its own results), and `decisions` is an append-only audit
log of review decisions (triggers refuse UPDATE and DELETE, so history cannot be rewritten).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from shared.errors import EdgewardError
from shared.security.apikeys import ApiKeys, Principal

DB_NAME = "access.sqlite3"
# The edge refuses uploads over 64 MB; a little headroom for the multipart-free raw body.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scan_owner (
    scan_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    claimed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    scan_id TEXT NOT NULL,
    label TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    authenticated INTEGER NOT NULL,
    note TEXT NOT NULL,
    decided_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_case ON decisions (case_id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
"""


class AccessDeniedError(EdgewardError):
    """Authenticated, but not allowed to do this (HTTP 403)."""


class UnauthenticatedError(EdgewardError):
    """No key, or a key nobody holds (HTTP 401)."""


class BodyTooLargeError(EdgewardError):
    """A request body over the limit (HTTP 413); nothing of it is kept."""


class AccessLog:
    def __init__(self, data_dir: Path | str) -> None:
        path = Path(data_dir) / DB_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.executescript(_SCHEMA)

    def claim(self, scan_id: str, site_id: str) -> None:
        """Record `site_id` as the scan's owner; AccessDeniedError if another site owns it."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO scan_owner VALUES (?, ?, ?)", (scan_id, site_id, time.time())
            )
            self._db.commit()
        owner = self.owner(scan_id)
        if owner != site_id:
            raise AccessDeniedError(
                f"scan id {scan_id!r} was sent by another site; scan ids are per site, so "
                "send this scan under its own id"
            )

    def owner(self, scan_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT site_id FROM scan_owner WHERE scan_id = ?", (scan_id,)
            ).fetchone()
        return None if row is None else str(row["site_id"])

    def record_decision(
        self,
        case_id: str,
        scan_id: str,
        label: str,
        reviewer: str,
        note: str,
        *,
        authenticated: bool,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO decisions (case_id, scan_id, label, reviewer, authenticated, note, "
                "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (case_id, scan_id, label, reviewer, int(authenticated), note, time.time()),
            )
            self._db.commit()

    def decisions(self, case_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM decisions WHERE case_id = ? ORDER BY seq", (case_id,)
            ).fetchall()
        return [{**dict(r), "authenticated": bool(r["authenticated"])} for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def authorize(keys: ApiKeys | None, headers: Any, *roles: str) -> Principal | None:
    """The request's principal if it holds one of `roles` (admin always does).

    None when no keys are configured: authentication is off (development), and the caller
    falls back to what the request says about itself.
    """
    if keys is None:
        return None
    auth = str(headers.get("authorization", ""))
    key = (
        auth[len("Bearer ") :] if auth.startswith("Bearer ") else str(headers.get("x-api-key", ""))
    )
    principal = keys.authenticate(key.strip())
    if principal is None:
        raise UnauthenticatedError(
            "missing or unknown API key: send `Authorization: Bearer KEY` with the key issued "
            "by `edgeward certs api-key`"
        )
    if principal.role != "admin" and principal.role not in roles:
        raise AccessDeniedError(
            f"{principal.role} {principal.name!r} may not do this (needs {' or '.join(roles)})"
        )
    return principal


async def read_bounded(
    content_length: str | None, chunks: AsyncIterator[bytes], limit: int, what: str
) -> bytes:
    """The body, refused as soon as it is known to exceed `limit` (header first, then bytes)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLargeError(
            f"{what}: request body of {int(content_length)} bytes exceeds the limit of {limit} "
            "bytes; send a smaller file"
        )
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(
                f"{what}: request body exceeds the limit of {limit} bytes; send a smaller file"
            )
    return bytes(body)
