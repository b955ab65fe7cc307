"""Sends a DICOM instance to the site's PACS: C-STORE (pynetdicom SCU) or DICOMweb STOW-RS.

Any failure raises, so the outbox keeps the instance and the drain retries it later.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import uuid

import pydicom
from pynetdicom import AE

from shared.config.dicom import PacsSettings
from shared.errors import EdgewardError


class PacsSender:
    def __init__(self, settings: PacsSettings) -> None:
        self.settings = settings

    def where(self) -> str:
        s = self.settings
        return s.stow_url or "" if s.protocol == "stow-rs" else f"{s.ae_title}@{s.host}:{s.port}"

    def send(self, key: str, payload: bytes) -> None:
        if self.settings.protocol == "stow-rs":
            self._stow(payload)
        else:
            self._c_store(payload)

    def _c_store(self, payload: bytes) -> None:
        s = self.settings
        ds = pydicom.dcmread(io.BytesIO(payload))
        ae = AE(ae_title=s.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = s.timeout_s
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate(s.host, s.port, ae_title=s.ae_title)
        if not assoc.is_established:
            raise EdgewardError(f"PACS {self.where()} did not accept an association")
        try:
            status = assoc.send_c_store(ds)
        finally:
            assoc.release()
        code = int(getattr(status, "Status", -1)) if status else -1
        # 0x0000 success; 0xB000, 0xB007, 0xB006 warnings: the PACS kept the instance.
        if code not in (0x0000, 0xB000, 0xB006, 0xB007):
            raise EdgewardError(f"PACS {self.where()} answered C-STORE with status 0x{code:04X}")

    def _stow(self, payload: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + payload
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            str(self.settings.stow_url),
            data=body,
            method="POST",
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise EdgewardError(f"PACS {self.where()} did not take the instance: {exc}") from exc
