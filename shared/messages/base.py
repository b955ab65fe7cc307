"""Every MQTT payload is a versioned envelope: schema_version, message id, sender and time."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import SchemaError

T = TypeVar("T", bound="Message")


class Part(BaseModel):
    """A nested piece of a payload: strict like its envelope, but without one."""

    # No NaN/Infinity: JSON has none, pydantic would encode them as null (found by fuzzing).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Message(BaseModel):
    """Base of every payload. `message_id` makes delivery idempotent: receivers dedupe on it."""

    # No NaN/Infinity: JSON has none, pydantic would encode them as null (found by fuzzing).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = Field(1, description="payload schema version")
    message_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=64)
    sender: str = Field(..., min_length=1, max_length=128, description="gateway or service id")
    sent_at: float = Field(default_factory=time.time, description="sender's UNIX time")

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def decode(payload: bytes | str, cls: type[T]) -> T:
    """Parse and validate a payload as `cls`; SchemaError names the field and the expectation."""
    name = cls.__name__
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{name}: payload is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{name}: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != cls.SCHEMA_VERSION:
        raise SchemaError(
            f"{name}: schema_version is {version!r}, expected {cls.SCHEMA_VERSION}; "
            "upgrade the older side"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            + ("" if e["type"] == "missing" else f" (got {e['input']!r})")
            for e in exc.errors()
        )
        raise SchemaError(f"{name}: {problems}") from None
