"""Junction ids as netconvert makes them (a joined cluster's id runs to hundreds of characters),
fitted where a transport or a file system has a limit: readable head, stable hash tail."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def short_id(value: str, limit: int = 128) -> str:
    """`value` itself if it fits in `limit` characters, else its head + '~' + a 12-hex hash."""
    if limit < 24:
        raise ValueError(f"id limit {limit} is too small to keep ids apart; give at least 24")
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{value[: limit - 13]}~{digest}"


def file_stem(value: str, limit: int = 100) -> str:
    """A file-name-safe stem for an id (any character, any length), distinct per id."""
    safe = _UNSAFE.sub("_", value)
    if safe == value and len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{safe[: limit - 13]}~{digest}"
