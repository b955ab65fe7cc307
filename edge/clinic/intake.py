"""Intake: check a submission, record it (bytes included) durably, queue it for judging."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from edge.clinic.metrics import GatewayMetrics
from edge.clinic.ports import (
    ConflictError,
    InsufficientStorageError,
    Submission,
    SubmissionError,
)
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.store import ScanStore

SCAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_METADATA = 32
MAX_METADATA_VALUE = 256


def normalise_metadata(raw: dict[str, str] | None) -> dict[str, str]:
    """Keys as `patient_id`, `laterality`, ... whatever casing or dashes a device sent."""
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        name = key.strip().lower().replace("-", "_")
        if not name:
            continue
        if len(value) > MAX_METADATA_VALUE:
            raise SubmissionError(
                f"metadata {key!r} is {len(value)} characters long, at most "
                f"{MAX_METADATA_VALUE} are accepted"
            )
        out[name] = value.strip()
    if len(out) > MAX_METADATA:
        raise SubmissionError(f"{len(out)} metadata entries sent, at most {MAX_METADATA} accepted")
    return out


class Intake:
    """The one way in for every adapter; `enqueue` hands an accepted scan id to judging."""

    def __init__(
        self,
        store: ScanStore,
        pseudonyms: Pseudonymiser,
        metrics: GatewayMetrics,
        max_upload_bytes: int,
        enqueue: Callable[[str], None],
        *,
        data_dir: Path | None = None,
        min_free_bytes: int = 0,
    ) -> None:
        self._data_dir = data_dir
        self.min_free_bytes = min_free_bytes
        self._store = store
        self._pseudonyms = pseudonyms
        self._metrics = metrics
        self._max_upload_bytes = max_upload_bytes
        self._enqueue = enqueue

    @property
    def max_upload_bytes(self) -> int:
        return self._max_upload_bytes

    def _check_space(self, incoming: int) -> None:
        """Refuse before writing: below the watermark the disk is kept for the work accepted
        already (judging, upload copies, outbox), which must not fail half-way."""
        if self._data_dir is None or self.min_free_bytes <= 0:
            return
        free = shutil.disk_usage(self._data_dir).free
        if free - incoming < self.min_free_bytes:
            raise InsufficientStorageError(
                f"the gateway's disk ({self._data_dir}) has {free // (1 << 20)} MiB free, below "
                f"limits.min_free_bytes ({self.min_free_bytes // (1 << 20)} MiB): keep the scan "
                "on the device and send it later; free space on the gateway (or lower the "
                "watermark)"
            )

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
    ) -> Submission:
        """Record a scan durably and queue it for judging; returns at once with its id."""
        limit = self._max_upload_bytes
        if len(data) > limit:
            raise SubmissionError(
                f"upload is {len(data)} bytes, above limits.max_upload_bytes ({limit}); "
                "send the camera's original file, not an archive"
            )
        if scan_id:
            if not SCAN_ID.match(scan_id):
                raise SubmissionError(
                    f"scan id {scan_id[:80]!r} is not valid: use 1-64 letters, digits, '.', '_', "
                    "':' or '-', starting with a letter or digit"
                )
        else:
            scan_id = uuid.uuid4().hex
        meta = normalise_metadata(metadata)
        self._check_space(len(data))
        receipt = self._store.create(
            scan_id,
            self._pseudonyms.scan(scan_id),
            data,
            source=source,
            filename=filename,
            content_type=content_type,
            metadata=meta,
            source_path=source_path,
        )
        self._metrics.submissions.labels(source=source, receipt=receipt).inc()
        if receipt == "conflict":
            raise ConflictError(
                f"scan id {scan_id!r} was already used for a different image; "
                "choose a new id (or resend the same bytes to retry)"
            )
        if receipt == "accepted":
            self._enqueue(scan_id)
        return Submission(scan_id, receipt)
