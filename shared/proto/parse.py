"""Protobuf bytes -> message, with the project's error: SchemaError names the type and limit."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from shared.errors import SchemaError

M = TypeVar("M", bound=Message)
# A 64 MiB scan (the default limits.max_upload_bytes) plus the fields around it.
MAX_MESSAGE_BYTES = 68 * 1024 * 1024


def parse(data: bytes, cls: type[M], max_bytes: int = MAX_MESSAGE_BYTES) -> M:
    """`cls` parsed from `data`; SchemaError (never DecodeError) when it is not one."""
    name = cls.__name__
    if len(data) > max_bytes:
        raise SchemaError(
            f"{name}: {len(data)} bytes is over the {max_bytes} byte limit; "
            "send the scan at its native size"
        )
    try:
        return cls.FromString(bytes(data))
    except (DecodeError, ValueError, RecursionError) as exc:
        raise SchemaError(
            f"{name}: not a valid protobuf {name} ({type(exc).__name__}: {exc}); "
            "check both sides use the same shared/proto/edgeward.proto"
        ) from None
