"""What each ingest adapter (HTTP, gRPC, folder watcher) may ask of the gateway, and no more.

The adapters import this module, never the app that wires them: the app hands each one the
narrow part it needs (Frigate's communicators and MONAI Deploy's operators work the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from edge.clinic.store import Receipt, ScanRecord
from shared.errors import EdgewardError


class SubmissionError(EdgewardError):
    """A submission the gateway cannot take; the message says what to change."""


class ConflictError(SubmissionError):
    """A client reused a scan id for different bytes."""


class InsufficientStorageError(SubmissionError):
    """The data directory is below its free-space watermark: new scans wait at the device."""


@dataclass(frozen=True)
class Submission:
    scan_id: str
    receipt: Receipt


class ScanIntake(Protocol):
    """Records a scan durably and queues it for judging."""

    @property
    def max_upload_bytes(self) -> int: ...

    def submit(
        self,
        data: bytes,
        source: str,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        metadata: dict[str, str] | None = None,
        scan_id: str | None = None,
        source_path: str | None = None,
    ) -> Submission: ...


class ScanReader(Protocol):
    """The read side: what `GET /scans/{id}` and gRPC GetScan answer."""

    def scan_status(self, scan_id: str) -> dict[str, Any] | None: ...

    def heatmap(self, scan_id: str) -> bytes | None: ...


class GatewayHealth(Protocol):
    """`/healthz`, `/metrics` and `/status` (health plus the dead letters)."""

    def health(self) -> dict[str, Any]: ...

    def metrics_page(self) -> tuple[bytes, str]: ...

    def status(self) -> dict[str, Any]: ...


class RecordLookup(Protocol):
    """The folder watcher's question about a file seen again: was its scan judged already?"""

    def get(self, scan_id: str) -> ScanRecord | None: ...
