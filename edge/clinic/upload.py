"""The copy of a scan the cloud grader gets, made after the verdict is recorded: never on its path.

The copy is the camera's JPEG/PNG minus its metadata, or the pixels as PNG for DICOM and TIFF
(a DICOM header carries the patient's identity, so only its pixels ever leave). It is derived
from the recorded bytes alone, so a gateway that stopped before making it makes it at the next
start: a judged, gradable scan waits in cloud state `preparing` until then.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import cv2

from edge.clinic.database import Database
from edge.clinic.decode import (
    InvalidScanError,
    decode_pixels,
    read_header,
    sniff_format,
    strip_metadata,
)
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.store import ScanRecord, ScanStore
from edge.clinic.validate import check_pixels
from edge.outbox import CLOUD, Outbox
from shared.config.clinic import ClinicGatewayConfig
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import wire_codes

log = logging.getLogger(__name__)

PREPARING = "preparing"  # cloud state of a gradable scan whose copy is not made yet
CopyMaker = Callable[[bytes, str | None, str | None], tuple[bytes, str]]
# Score names the OOD guard writes into the outcome's measures (edge/clinic/ood.py): the rest
# are the quality checks' measures and the quality net's score.
OOD_SUFFIXES = ("_energy", "_mahalanobis")


def split_measures(measures: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(quality measures, OOD scores) of one outcome's measures."""
    quality: dict[str, float] = {}
    ood: dict[str, float] = {}
    for name, value in measures.items():
        (ood if name.endswith(OOD_SUFFIXES) else quality)[name] = float(value)
    return quality, ood


class UploadRefusedError(Exception):
    """The copy cannot be made, or may not leave; the message says why."""


def upload_copy(
    data: bytes, filename: str | None = None, content_type: str | None = None
) -> tuple[bytes, str]:
    """(bytes, content type) for the cloud grader: stripped JPEG/PNG, else lossless PNG pixels."""
    fmt = sniff_format(data, filename, content_type)
    if fmt is None:
        raise UploadRefusedError("not an image format the gateway reads")
    try:
        header = read_header(data, fmt)
        stripped = strip_metadata(data, header.fmt)
        if stripped is not None:
            return stripped, f"image/{header.fmt}"
        image = check_pixels(decode_pixels(data, header), header)
    except InvalidScanError as exc:
        raise UploadRefusedError(str(exc)) from exc
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise UploadRefusedError(f"cannot encode the {header.fmt} scan as PNG for upload")
    return bytes(buf.tobytes()), "image/png"


def is_dicom(data: bytes, content_type: str | None) -> bool:
    return (content_type or "").lower().startswith("application/dicom") or (
        data[128:132] == b"DICM"
    )


class UploadWorker:
    """One thread: `put` a judged, gradable scan id; its copy joins the cloud outbox."""

    def __init__(
        self,
        *,
        config: ClinicGatewayConfig,
        db: Database,
        store: ScanStore,
        pseudonyms: Pseudonymiser,
        cloud_notify: Callable[[], None],
        make_copy: CopyMaker = upload_copy,
    ) -> None:
        self.config = config
        self.db = db
        self.store = store
        self.pseudonyms = pseudonyms
        self.make_copy = make_copy
        self._cloud_notify = cloud_notify
        self._work: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="clinic-upload", daemon=True)

    def put(self, scan_id: str) -> None:
        self._work.put(scan_id)

    def start(self) -> None:
        for scan_id in self.store.with_cloud_state(PREPARING):
            self._work.put(scan_id)
        self._thread.start()

    def stop(self) -> None:
        """Finish the copy in hand; the rest stay `preparing` and resume at the next start."""
        self._work.put(None)
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while (scan_id := self._work.get()) is not None:
            try:
                self.prepare(scan_id)
            except Exception:  # the worker must survive anything one scan does
                log.exception("scan %s: upload copy failed; it stays for a restart", scan_id)

    def prepare(self, scan_id: str) -> None:
        record = self.store.get(scan_id)
        if record is None or record.cloud_state != PREPARING:
            return
        try:
            body, content_type = self.make_copy(
                self.store.image(scan_id), record.filename, record.content_type
            )
            if is_dicom(body, content_type):
                # DICOM headers carry the patient's name and id: only pixels may leave.
                raise UploadRefusedError("refused to upload DICOM (patient identity)")
        except UploadRefusedError as exc:
            with self.db.transaction() as conn:
                ScanStore.set_cloud(conn, scan_id, "not_sent", None, str(exc))
            log.warning("scan %s: not sent to the cloud: %s", scan_id, exc)
            return
        # From the DICOM header when there is one, else from the upload's metadata.
        patient = record.outcome["patient_id"] or record.metadata.get("patient_id")
        request = self._grade_request(record, body, content_type, patient)
        meta = {"scan_id": record.scan_id}
        if patient:
            meta["patient_ref"] = self.pseudonyms.patient(patient)
        with self.db.transaction() as conn:
            ScanStore.set_cloud(conn, scan_id, "queued")
            Outbox.put(conn, CLOUD, record.scan_id, request.SerializeToString(), meta)
        self._cloud_notify()

    def _grade_request(
        self, record: ScanRecord, body: bytes, content_type: str, patient: str | None
    ) -> pb.GradeRequest:
        outcome = record.outcome
        quality, ood = split_measures(dict(outcome.get("measures") or {}))
        p_ref = outcome["referable_probability"]
        # Reasons may name the scan, its file or the patient: what leaves names none of them.
        reasons = [
            self.pseudonyms.redact(
                str(r).replace(record.scan_id, record.cloud_id),
                patient,
                record.metadata.get("patient_id"),
                record.filename,
            )
            for r in outcome.get("reasons") or []
        ]
        return pb.GradeRequest(
            scan_id=record.cloud_id,
            image=body,
            content_type=content_type,
            site_id=self.config.site_id,
            request_id=f"{self.config.gateway_id}:{record.cloud_id}",
            edge=pb.EdgeVerdict(
                verdict=str(outcome["verdict"]),
                referable_probability=float(p_ref or 0.0),
                model_versions=dict(outcome["model_versions"]),
                reasons=reasons,
                codes=wire_codes(str(c) for c in outcome.get("codes") or []),
                quality_scores=quality,
                ood_scores=ood,
                has_referable_probability=p_ref is not None,
            ),
            laterality=outcome["laterality"] or record.metadata.get("laterality", ""),
        )
