"""A real Orthanc PACS on free loopback ports: its own JSON config and storage in a directory,
run as the binary (never the system service); the DICOMweb plugin is loaded where installed.

The demo starts one for a clinic's Structured Reports and PDFs; the integration tests use the
same runner (tests/integration/support/orthanc.py re-exports it).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from shared.broker import free_port
from shared.errors import EdgewardError

DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
AET = "ORTHANC"


def orthanc_binary() -> str:
    path = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    if path is None:
        raise EdgewardError("Orthanc not found: run `make orthanc` (apt-get install orthanc)")
    return path


class Orthanc:
    def __init__(self, workdir: Path, dicom_port: int | None = None) -> None:
        self.workdir = workdir
        self.dicom_port = dicom_port or free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dicomweb = DICOMWEB.exists()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "edgeward-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": AET,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "HttpServerEnabled": True,
            "Plugins": [str(DICOMWEB)] if self.dicomweb else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config))
        log = (self.workdir / "orthanc.log").open("wb")
        self.proc = subprocess.Popen(
            [orthanc_binary(), str(path)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EdgewardError(
                    f"Orthanc exited: {(self.workdir / 'orthanc.log').read_text()[-800:]}"
                )
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EdgewardError(f"Orthanc did not answer on {self.url}/system within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def file(self, instance_id: str) -> bytes:
        response = httpx.get(f"{self.url}/instances/{instance_id}/file", timeout=10)
        response.raise_for_status()
        return response.content

    def study_instances(self, study_uid: str) -> dict[str, bytes]:
        """SOP class UID -> file, for every instance of the study (REST API; of two instances
        of one class, the last listed: use `study_files` to see all)."""
        import pydicom

        return {
            str(pydicom.dcmread(io.BytesIO(d)).SOPClassUID): d for d in self.study_files(study_uid)
        }

    def study_files(self, study_uid: str) -> list[bytes]:
        """Every instance file of the study (REST API); none when Orthanc lacks the study."""
        found = httpx.post(
            f"{self.url}/tools/find",
            json={"Level": "Study", "Query": {"StudyInstanceUID": study_uid}},
            timeout=10,
        ).json()
        if not found:
            return []
        return [self.file(i["ID"]) for i in self.get(f"/studies/{found[0]}/instances")]

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
