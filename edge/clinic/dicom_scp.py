"""DICOM in: a C-STORE SCP (pynetdicom) that hands each stored instance to the gateway's intake.

A camera's C-STORE gets its success status only after the intake has committed the instance
(its Part 10 bytes) to the gateway database, so an acknowledged scan survives a crash. The
scan id is the SOP Instance UID: a resend is acknowledged and not judged twice. Every
association is logged; a refused one says why (calling AE not allowed, called AE not ours,
SOP class or transfer syntax not supported). C-ECHO answers the camera's connection test.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from edge.clinic.ports import ConflictError, ScanIntake, SubmissionError
from shared.config.dicom import DicomScpSettings

log = logging.getLogger(__name__)

SOURCE = "dicom"
# The storage SOP classes a fundus camera sends (PS3.4 B.5).
STORAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "Ophthalmic Photography 8 Bit Image",
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "Ophthalmic Photography 16 Bit Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
}
TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 (lossless only)",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}
# C-STORE statuses (PS3.4 B.2.3)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
# Command sets and PDU headers on top of the dataset; the intake checks the exact size after.
PDU_SLACK = 64 * 1024
# A-ASSOCIATE-RJ diagnostics of the service user (PS3.8 9.3.4)
_REJECT_REASONS = {
    0x02: "application context name not supported",
    0x03: "calling AE title not allowed",
    0x07: "called AE title is not this gateway's",
}
_CONTEXT_RESULTS = {
    0x01: "refused by this gateway",
    0x02: "no reason given",
    0x03: "SOP class not supported",
    0x04: "none of its transfer syntaxes supported",
}


def part10(file_meta: Any, dataset_bytes: bytes) -> bytes:
    """The instance as a DICOM file: preamble, DICM, file meta, then the dataset as received
    (still in its negotiated transfer syntax: no decode and re-encode on the hot path)."""
    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, file_meta, enforce_standard=True)
    buf.write(dataset_bytes)
    return buf.getvalue()


class DicomScp:
    """Listens on `settings.host:settings.port`; `start()` binds, `stop()` closes."""

    def __init__(self, intake: ScanIntake, settings: DicomScpSettings) -> None:
        self.intake = intake
        self.settings = settings
        self.port: int | None = None
        self._server: Any = None
        # Bytes received per association since its last C-STORE: a sender above the byte
        # budget is aborted while it sends, not after the whole instance sits in memory.
        self._received: dict[Any, int] = {}
        ae = AE(ae_title=settings.ae_title)
        ae.require_calling_aet = list(settings.allowed_calling_ae_titles)
        ae.require_called_aet = True
        ae.maximum_associations = settings.max_associations
        for uid in STORAGE_CLASSES:
            ae.add_supported_context(uid, list(TRANSFER_SYNTAXES))
        ae.add_supported_context(Verification)
        self.ae = ae

    def start(self) -> DicomScp:
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_ACCEPTED, self._accepted),
            (evt.EVT_REJECTED, self._rejected),
            (evt.EVT_RELEASED, self._released),
            (evt.EVT_ABORTED, self._aborted),
            (evt.EVT_DATA_RECV, self._data),
        ]
        self._server = self.ae.start_server(
            (self.settings.host, self.settings.port), block=False, evt_handlers=handlers
        )
        self.port = int(self._server.server_address[1])
        log.info(
            "DICOM SCP %s listening on %s:%d; cameras allowed: %s",
            self.settings.ae_title,
            self.settings.host,
            self.port,
            ", ".join(self.settings.allowed_calling_ae_titles),
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- association log -------------------------------------------------------------------------

    @staticmethod
    def _peer(event: Any) -> str:
        assoc = event.assoc
        return f"{assoc.requestor.ae_title!r} from {assoc.requestor.address}:{assoc.requestor.port}"

    def _accepted(self, event: Any) -> None:
        assoc = event.assoc
        log.info(
            "DICOM association accepted: %s, %d presentation context(s) accepted",
            self._peer(event),
            len(assoc.accepted_contexts),
        )
        refused = [
            "{} ({}; offered {})".format(
                STORAGE_CLASSES.get(str(cx.abstract_syntax), str(cx.abstract_syntax)),
                _CONTEXT_RESULTS.get(int(cx.result or 0), f"result {cx.result}"),
                ", ".join(str(ts) for ts in cx.transfer_syntax),
            )
            for cx in assoc.rejected_contexts
        ]
        if refused:
            # One line per association: a storescu proposes dozens of classes it will not use.
            log.warning(
                "DICOM presentation contexts refused for %s: %s",
                self._peer(event),
                "; ".join(refused),
            )

    def _rejected(self, event: Any) -> None:
        assoc = event.assoc
        # The reject primitive carries the diagnostic; which one follows from the AE titles.
        called = assoc.acceptor.primitive.called_ae_title if assoc.acceptor.primitive else ""
        calling = assoc.requestor.ae_title
        if calling not in self.settings.allowed_calling_ae_titles:
            allowed = self.settings.allowed_calling_ae_titles
            why = f"{_REJECT_REASONS[0x03]} (allowed: {allowed})"
        elif called and str(called).strip() != self.settings.ae_title:
            why = (
                _REJECT_REASONS[0x07] + f" (called {called!r}, this is {self.settings.ae_title!r})"
            )
        else:
            why = f"too many associations (at most {self.settings.max_associations})"
        log.warning("DICOM association refused: %s: %s", self._peer(event), why)

    def _released(self, event: Any) -> None:
        self._received.pop(event.assoc, None)
        log.info("DICOM association released: %s", self._peer(event))

    def _aborted(self, event: Any) -> None:
        self._received.pop(event.assoc, None)
        log.warning("DICOM association aborted: %s", self._peer(event))

    def _data(self, event: Any) -> None:
        assoc = event.assoc
        before = self._received.get(assoc, 0)
        seen = before + len(event.data)
        self._received[assoc] = seen
        limit = self.intake.max_upload_bytes + PDU_SLACK
        if seen > limit >= before:  # once per association
            log.warning(
                "DICOM association aborted: %s sent %d bytes for one instance, above "
                "limits.max_upload_bytes (%d); send the camera's original images only",
                self._peer(event),
                seen,
                self.intake.max_upload_bytes,
            )
            assoc.abort(block=False)

    # -- services --------------------------------------------------------------------------------

    def _echo(self, event: Any) -> int:
        log.info("DICOM C-ECHO from %s", self._peer(event))
        return SUCCESS

    def _store(self, event: Any) -> int:
        self._received[event.assoc] = 0
        uid = str(event.request.AffectedSOPInstanceUID or "").strip("\0 ")
        sop_class = str(event.request.AffectedSOPClassUID or "").strip("\0 ")
        try:
            data = part10(event.file_meta, event.request.DataSet.getvalue())
            submission = self.intake.submit(
                data,
                SOURCE,
                content_type="application/dicom",
                filename=f"{uid}.dcm",
                metadata={"calling_ae": event.assoc.requestor.ae_title, "sop_class": sop_class},
                scan_id=uid,
            )
        except ConflictError:
            # Same SOP instance, other bytes: a resend in another transfer syntax. A UID names
            # one instance, so it is the scan we hold; acknowledge and do not judge it again.
            log.warning(
                "DICOM C-STORE %s from %s: already held (resent in another encoding); "
                "acknowledged, not judged again",
                uid,
                self._peer(event),
            )
            return SUCCESS
        except SubmissionError as exc:
            log.warning("DICOM C-STORE %s from %s refused: %s", uid, self._peer(event), exc)
            big = "bytes, above" in str(exc)
            return OUT_OF_RESOURCES if big else CANNOT_UNDERSTAND
        log.info(
            "DICOM C-STORE %s (%s) from %s: %s",
            uid,
            STORAGE_CLASSES.get(sop_class, sop_class),
            self._peer(event),
            submission.receipt,
        )
        return SUCCESS
