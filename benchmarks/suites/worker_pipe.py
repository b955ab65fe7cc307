"""The answer protocol of `bench mqtt`'s worker processes (gateways, bridge replicas).

A worker answers each command on its pipe with `(kind, payload)`; `("error", text)` reports an
exception it caught, which the bench raises with the worker named.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any

from shared.errors import EdgewardError


def answer(conn: Connection, who: str, timeout_s: float, expected: str | None = None) -> Any:
    """The payload of `who`'s next answer; raised: silence past `timeout_s`, a reported error, or
    (with `expected`) an answer of another kind."""
    if not conn.poll(timeout_s):
        raise EdgewardError(f"mqtt bench: {who} did not answer within {timeout_s:.0f}s")
    kind, payload = conn.recv()
    if kind == "error":
        raise EdgewardError(f"mqtt bench: {who} failed: {payload}")
    if expected is not None and kind != expected:
        raise EdgewardError(f"mqtt bench: {who} answered {kind!r}, not {expected!r}")
    return payload
