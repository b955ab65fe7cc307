"""The clinic side of the demo: gateways fed with scans, verdicts followed as they happen."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.demo.dicom import c_store
from sim.demo.facts import ScanRecord
from sim.demo.feeder import DemoScan
from sim.demo.supervisor import http_json

Say = Callable[[str], None]


@dataclass
class ClinicHandle:
    name: str
    base_url: str
    scans: list[DemoScan]
    token: str  # the gateway's bearer token for this client (EDGEWARD_GATEWAY_TOKEN)
    records: list[ScanRecord] = field(default_factory=list)
    # With a DICOM port, the clinic's camera sends its DICOM scans by C-STORE (storescu).
    dicom_port: int | None = None
    spool: Path | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def submit(clinic: ClinicHandle, scan: DemoScan, t0: float) -> ScanRecord:
    if clinic.dicom_port is not None and clinic.spool is not None and scan.fmt == "dicom":
        uid, study = c_store(clinic.dicom_port, scan.data, clinic.spool)
        return ScanRecord(
            clinic=clinic.name,
            scan_id=uid,
            kind=scan.kind,
            fmt="c-store",
            truth_grade=scan.truth_grade,
            defects=scan.defects,
            submitted_at=time.monotonic() - t0,
            study_uid=study,
        )
    headers = {"Content-Type": scan.content_type, **clinic.auth}
    if scan.laterality:
        headers["X-Laterality"] = scan.laterality
    answer = http_json(f"{clinic.base_url}/scans", data=scan.data, headers=headers, timeout=30)
    assert isinstance(answer, dict)
    return ScanRecord(
        clinic=clinic.name,
        scan_id=str(answer["scan_id"]),
        kind=scan.kind,
        fmt=scan.fmt,
        truth_grade=scan.truth_grade,
        defects=scan.defects,
        submitted_at=time.monotonic() - t0,
    )


def refresh(clinic: ClinicHandle, record: ScanRecord) -> bool:
    """Update one record from the gateway; True when its edge verdict just arrived."""
    try:
        status = http_json(
            f"{clinic.base_url}/scans/{record.scan_id}", headers=clinic.auth, timeout=10
        )
    except (urllib.error.URLError, OSError, ValueError):
        return False
    assert isinstance(status, dict)
    new = record.edge_verdict is None and status.get("verdict") not in (None, "pending")
    if status.get("verdict") not in (None, "pending"):
        record.edge_verdict = str(status["verdict"])
        record.reasons = list(status.get("reasons", []))
        record.confidence = status.get("confidence")
        record.timings_ms = dict(status.get("timings_ms", {}))
        record.gradable = bool(status.get("gradable", False))
    cloud = status.get("cloud", {})
    if isinstance(cloud, dict) and cloud.get("result") and record.cloud is None:
        record.cloud = dict(cloud["result"])
        if cloud.get("heatmap_url"):
            record.cloud["heatmap_png_b64"] = _heatmap_b64(clinic, str(cloud["heatmap_url"]))
    return new


def _heatmap_b64(clinic: ClinicHandle, url: str) -> str | None:
    import base64

    try:
        req = urllib.request.Request(f"{clinic.base_url}{url}", headers=clinic.auth)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return base64.b64encode(resp.read()).decode()
    except (urllib.error.URLError, OSError):
        return None


def backlog(clinic: ClinicHandle) -> int | None:
    try:
        health = http_json(f"{clinic.base_url}/healthz", timeout=5)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    assert isinstance(health, dict)
    outbox: dict[str, Any] = health.get("outbox", {})
    return int(outbox.get("cloud", 0))


def describe(record: ScanRecord) -> str:
    truth = {
        "healthy": f"healthy (grade {record.truth_grade})",
        "referable": f"referable (grade {record.truth_grade})",
        "defect": "defect: " + ", ".join(record.defects),
        "nonfundus": "not a fundus image",
    }[record.kind]
    conf = f" ({record.confidence:.2f})" if record.confidence is not None else ""
    reason = f" — {record.reasons[0]}" if record.reasons and record.edge_verdict != "refer" else ""
    return f"{record.clinic:9s} {record.fmt:5s} {truth:34s} -> {record.edge_verdict}{conf}{reason}"


class Feeder(threading.Thread):
    """Submits one clinic's scans at a steady pace, as a camera would."""

    def __init__(self, clinic: ClinicHandle, interval_s: float, t0: float, say: Say) -> None:
        super().__init__(name=f"feeder-{clinic.name}", daemon=True)
        self.clinic, self.interval_s, self.t0, self.say = clinic, interval_s, t0, say
        self.stop_event = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        for scan in self.clinic.scans:
            if self.stop_event.is_set():
                return
            try:
                self.clinic.records.append(submit(self.clinic, scan, self.t0))
            except (urllib.error.URLError, OSError, ValueError, AssertionError) as exc:
                self.errors.append(f"{self.clinic.name}: upload failed: {exc}")
                self.say(f"{self.clinic.name}: upload failed: {exc}")
            self.stop_event.wait(self.interval_s)


def summary_json(records: list[ScanRecord]) -> str:
    return json.dumps([r.__dict__ for r in records], default=str)


def clinic_status(clinics: list[ClinicHandle]) -> str:
    records = [r for c in clinics for r in c.records]
    pending = sum(r.edge_verdict is None or (r.gradable and r.cloud is None) for r in records)
    return f"clinics: {len(records)} scans sent, {pending} still awaiting a verdict"
