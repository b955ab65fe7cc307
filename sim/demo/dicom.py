"""The DICOM side of the demo: a camera that sends by C-STORE (dcmtk's storescu) to its clinic
gateway's SCP, and an Orthanc PACS where the gateway's Structured Reports and PDFs arrive."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pydicom

from edge.clinic.reports.capture import study_uid_of
from shared.dcmtk import dcmtk_tool
from shared.errors import EdgewardError
from sim.demo.facts import Check, ScanRecord
from sim.pacs import AET, Orthanc

CAMERA_AE = "DEMOCAM"  # the calling AE title the demo's camera uses; the SCP allows only it
GATEWAY_AE = "EDGEWARD"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def storescu_binary() -> str:
    found = dcmtk_tool("storescu")
    if found is None:
        raise EdgewardError("dcmtk's storescu is not installed: run `apt-get install dcmtk`")
    return found


def scp_settings(port: int) -> dict[str, Any]:
    return {
        "ae_title": GATEWAY_AE,
        "host": "127.0.0.1",
        "port": port,
        "allowed_calling_ae_titles": [CAMERA_AE],
    }


def pacs_settings(orthanc: Orthanc) -> dict[str, Any]:
    return {
        "protocol": "c-store",
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "ae_title": AET,
        "calling_ae_title": GATEWAY_AE,
        "timeout_s": 10,
        "backoff_initial_s": 1.0,
        "backoff_max_s": 5.0,
    }


def c_store(port: int, data: bytes, spool: Path) -> tuple[str, str]:
    """Send one Part 10 file as the camera would; (scan id, study UID) on success.

    The gateway's scan id for a C-STORE is the SOP Instance UID.
    """
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    uid, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{uid}.dcm"
    path.write_bytes(data)
    # -R: propose only the file's own SOP class (not dcmtk's whole list, which the SCP refuses).
    argv = [storescu_binary(), "-R", "-aet", CAMERA_AE, "-aec", GATEWAY_AE, "127.0.0.1", str(port)]
    done = subprocess.run(
        [*argv, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise OSError(f"storescu to port {port} failed ({done.returncode}): {done.stderr[-300:]}")
    return uid, study


def found_in_pacs(orthanc: Orthanc, study: str) -> set[str]:
    """Which of SR and PDF the PACS holds in this study."""
    try:
        classes = orthanc.study_instances(study)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        raise OSError(f"Orthanc at {orthanc.url} unreadable: {exc}") from exc
    names = {COMPREHENSIVE_SR: "SR", ENCAPSULATED_PDF: "PDF"}
    return {names[c] for c in classes if c in names}


def wait_for_reports(
    orthanc: Orthanc,
    records: list[ScanRecord],
    timeout_s: float,
    say: Callable[[str], None],
) -> dict[str, set[str]]:
    """Study UID -> {SR, PDF} found, once each judged C-STORE scan's reports arrived (or the
    time is up). The gateway sends them through its outbox after the final result."""
    wanted = [r for r in records if r.study_uid and r.edge_verdict is not None]
    found: dict[str, set[str]] = {}
    deadline = time.monotonic() + timeout_s
    next_note = 0.0
    while True:
        for r in wanted:
            assert r.study_uid is not None
            if found.get(r.study_uid) != {"SR", "PDF"}:
                try:
                    found[r.study_uid] = found_in_pacs(orthanc, r.study_uid)
                except OSError as exc:
                    say(f"pacs: {exc}")
        done = sum(found.get(str(r.study_uid)) == {"SR", "PDF"} for r in wanted)
        if done == len(wanted) or time.monotonic() > deadline:
            return found
        if time.monotonic() > next_note:
            say(f"pacs: {done}/{len(wanted)} C-STORE studies have their SR and PDF in Orthanc")
            next_note = time.monotonic() + 10
        time.sleep(1.0)


def check_pacs(records: list[ScanRecord], found: dict[str, set[str]], url: str) -> Check:
    wanted = [r for r in records if r.study_uid and r.edge_verdict is not None]
    missing = [
        f"{r.scan_id}: {sorted({'SR', 'PDF'} - found.get(str(r.study_uid), set()))}"
        for r in wanted
        if found.get(str(r.study_uid)) != {"SR", "PDF"}
    ]
    return Check(
        "every C-STORE scan's SR and PDF reached the PACS",
        bool(wanted) and not missing,
        f"{len(wanted) - len(missing)}/{len(wanted)} studies sent by storescu have an SR and a "
        f"PDF in Orthanc ({url})" + (f"; missing: {missing[:3]}" if missing else ""),
    )


def check_studies(
    orthanc: Orthanc, records: list[ScanRecord], say: Callable[[str], None]
) -> tuple[Check, list[str]]:
    """Wait for each C-STORE study's SR and PDF in the PACS; the check and notes for the report."""
    found = wait_for_reports(orthanc, records, 120.0, say)
    check = check_pacs(records, found, orthanc.url)
    say(f"pacs: {check.detail}")
    notes = [
        f"PACS: study {r.study_uid} (scan {r.scan_id}): "
        f"{', '.join(sorted(found.get(str(r.study_uid), set()))) or 'nothing'} in Orthanc"
        for r in records[:5]
    ]
    return check, notes


PACS_CLINIC = "clinic-1"  # the demo configures a PACS for the first clinic only


def study_of(record: ScanRecord) -> str | None:
    """The study of a scan's reports in the PACS: the camera's for a C-STORE scan, the one the
    gateway makes for a JPEG/PNG scan of the clinic with a PACS; None for the others."""
    if record.study_uid:
        return record.study_uid
    if record.clinic == PACS_CLINIC and record.fmt in ("jpeg", "png"):
        return study_uid_of(record.scan_id)
    return None
