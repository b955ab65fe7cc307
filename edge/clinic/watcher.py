"""Ingest from the folder a camera writes into, without ever reading a file half-written.

A file is taken only when its size and modification time held still over two looks, and
never while its name marks it as temporary. Its scan id is a hash of its bytes, so a file seen
again after a crash is recognised, not recorded twice. Judged files move to `done/`, files
that are not readable images (or cannot be taken) to `failed/` with a `.reason.txt` beside them:
nothing the camera wrote is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
from pathlib import Path

from edge.clinic.ports import RecordLookup, ScanIntake, SubmissionError
from edge.clinic.store import JUDGED, ScanRecord

log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp", ".lock", "~")
DONE, FAILED = "done", "failed"
CONTENT_TYPES = {".dcm": "application/dicom", ".dicom": "application/dicom"}


def is_temporary(name: str) -> bool:
    lower = name.lower()
    return lower.startswith((".", "~")) or lower.endswith(TEMP_SUFFIXES)


def file_scan_id(data: bytes) -> str:
    return "f-" + hashlib.sha256(data).hexdigest()[:40]


class FolderWatcher:
    """Call `judged` with each judged scan (the app hooks it to judging): its file moves then."""

    def __init__(
        self, intake: ScanIntake, records: RecordLookup, folder: Path, poll_s: float
    ) -> None:
        self.intake = intake
        self.records = records
        self.folder = folder
        self.poll_s = poll_s
        self._seen: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns) at the last look
        self._waiting: dict[str, set[Path]] = {}  # scan id -> files waiting for its verdict
        self._lock = threading.Lock()
        self._looking = threading.Lock()  # one look at a time: `_seen` is the state between looks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clinic-watch", daemon=True)
        for sub in ("", DONE, FAILED):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.look()
            except Exception:
                log.exception("watching %s failed; looking again", self.folder)

    def look(self) -> None:
        """One look at the folder: take every file that held still since the previous look."""
        with self._looking:
            self._look()

    def _look(self) -> None:
        now: dict[Path, tuple[int, int]] = {}
        with self._lock:
            busy = {p for paths in self._waiting.values() for p in paths}
        for entry in sorted(self.folder.iterdir()):
            if not entry.is_file() or is_temporary(entry.name) or entry in busy:
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue  # renamed or removed between listing and stat
            now[entry] = (st.st_size, st.st_mtime_ns)
        stable = [p for p, sig in now.items() if self._seen.get(p) == sig]
        self._seen = {p: sig for p, sig in now.items() if p not in stable}
        for path in stable:
            self._take(path)

    def _take(self, path: Path) -> None:
        limit = self.intake.max_upload_bytes
        try:
            size = path.stat().st_size
            if size > limit:
                self._move(
                    path,
                    FAILED,
                    f"{path.name} is {size} bytes, above "
                    f"limits.max_upload_bytes ({limit}); not a single scan",
                )
                return
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s (%s); will look again", path, exc.strerror)
            return
        scan_id = file_scan_id(data)
        with self._lock:
            self._waiting.setdefault(scan_id, set()).add(path)
        try:
            sub = self.intake.submit(
                data,
                source="watch",
                content_type=CONTENT_TYPES.get(path.suffix.lower())
                or mimetypes.guess_type(path.name)[0],
                filename=path.name,
                scan_id=scan_id,
                source_path=str(path),
            )
        except SubmissionError as exc:
            with self._lock:
                self._waiting.pop(scan_id, None)
            self._move(path, FAILED, str(exc))
            return
        log.info("%s: %s as scan %s", path.name, sub.receipt, scan_id)
        if sub.receipt == "duplicate":
            record = self.records.get(scan_id)
            if record is not None and record.state == JUDGED:
                self.judged(record)

    def judged(self, record: ScanRecord) -> None:
        with self._lock:
            paths = self._waiting.pop(record.scan_id, set())
        if record.source_path and record.source == "watch":
            paths.add(Path(record.source_path))
        failed = record.verdict == "rejected"
        reasons = "\n".join(record.outcome.get("reasons", []))
        for path in paths:
            self._move(path, FAILED if failed else DONE, reasons if failed else None)

    def _move(self, path: Path, where: str, reason: str | None) -> None:
        if not path.exists():
            return  # moved already (a duplicate drop, or before a restart)
        target = self.folder / where / path.name
        n = 1
        while target.exists():
            target = self.folder / where / f"{path.stem}.{n}{path.suffix}"
            n += 1
        try:
            path.replace(target)
            if reason:
                target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
        except OSError as exc:
            log.error("cannot move %s to %s/ (%s); it stays where it is", path, where, exc.strerror)
