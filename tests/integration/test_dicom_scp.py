"""DICOM in: dcmtk's storescu/echoscu as the camera, the gateway's C-STORE SCP on a free port."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from edge.clinic.app import ClinicGateway
from shared.broker import MosquittoBroker
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    cloud,
    gateway_config,
    rows,
)
from tests.integration.support.dicom_camera import (
    CAMERA,
    DicomStandInPipeline,
    echoscu,
    op_file,
    storescu,
)
from tests.integration.support.grading_server import GradingServer
from tests.waiting import wait_for

pytestmark = [pytest.mark.dicom, pytest.mark.mqtt]
__all__ = ["cloud"]  # fixture, used by name
SCP = "edge.clinic.dicom_scp"


@pytest.fixture
def dicom_gateway(
    tmp_path: Path, broker: MosquittoBroker, cloud: GradingServer
) -> Iterator[Callable[..., ClinicGateway]]:
    started: list[ClinicGateway] = []

    def make(**extra: Any) -> ClinicGateway:
        settings = {"port": 0, "allowed_calling_ae_titles": [CAMERA]}
        config = gateway_config(tmp_path, broker, cloud, dicom={"scp": settings}, **extra)
        service = ClinicGateway(
            config, DicomStandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS
        ).start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


def judged_count(service: ClinicGateway, uid: str) -> int:
    return rows(service, "SELECT attempts FROM scans WHERE scan_id = ?", uid)[0][0]


@pytest.mark.parametrize(
    "syntax", ["explicit", "implicit", "jpeg-baseline", "jpeg2000", "rle", "deflate"]
)
def test_each_transfer_syntax_is_stored_recorded_and_judged(dicom_gateway, tmp_path, syntax):
    service = dicom_gateway()
    path = op_file(tmp_path, 1, syntax)
    sent = pydicom.dcmread(path)
    done = storescu(service.dicom_port, path, syntax=syntax)
    assert done.returncode == 0, done.stderr
    uid = str(sent.SOPInstanceUID)
    # Success came only after the record: another connection sees the row and its bytes now.
    assert rows(service, "SELECT source, content_type FROM scans WHERE scan_id = ?", uid) == [
        ("dicom", "application/dicom")
    ]
    stored = rows(service, "SELECT data FROM scan_images WHERE scan_id = ?", uid)[0][0]
    got = pydicom.dcmread(io.BytesIO(stored))
    assert got.SOPInstanceUID == uid
    assert got.StudyInstanceUID == sent.StudyInstanceUID
    if syntax == "implicit":
        assert got.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    elif syntax != "deflate":  # dcmtk may send a deflate-proposed file uncompressed
        assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert got.pixel_array.shape == sent.pixel_array.shape
    wait_for(lambda: service.store.get(uid).verdict, 15, "edge verdict")
    assert service.store.get(uid).verdict == "refer"
    assert service.store.get(uid).outcome["laterality"] == str(sent.ImageLaterality)


def test_resend_is_acknowledged_and_not_judged_twice(dicom_gateway, tmp_path):
    service = dicom_gateway()
    path = op_file(tmp_path, 2)
    uid = str(pydicom.dcmread(path).SOPInstanceUID)
    assert storescu(service.dicom_port, path).returncode == 0
    wait_for(lambda: service.store.get(uid).verdict, 15, "edge verdict")
    again = storescu(service.dicom_port, path)
    # The same instance in another transfer syntax is still the same instance.
    other = storescu(service.dicom_port, path, syntax="implicit")
    assert (again.returncode, other.returncode) == (0, 0), again.stderr + other.stderr
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(1,)]
    assert judged_count(service, uid) == 1


def test_echo_and_refusals_are_logged_with_the_reason(dicom_gateway, tmp_path, caplog):
    service = dicom_gateway()
    caplog.set_level(logging.INFO, logger=SCP)
    assert echoscu(service.dicom_port).returncode == 0
    ports = json.loads((Path(service.config.data_dir) / "gateway.json").read_text())
    assert ports["dicom_port"] == service.dicom_port  # where a process' caller finds the SCP
    assert "C-ECHO from 'FUNDUSCAM'" in caplog.text

    stranger = echoscu(service.dicom_port, calling="INTRUDER")
    assert stranger.returncode != 0
    assert "Calling AE Title Not Recognized" in stranger.stderr
    assert "'INTRUDER'" in caplog.text and "calling AE title not allowed" in caplog.text

    ct = op_file(tmp_path, 3, SOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    refused = storescu(service.dicom_port, ct)
    assert refused.returncode != 0
    assert "SOP class not supported" in caplog.text

    mpeg = storescu(service.dicom_port, op_file(tmp_path, 4), flag="-xm")
    assert mpeg.returncode != 0
    assert "none of its transfer syntaxes supported" in caplog.text
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(0,)]


def test_too_big_an_instance_is_refused_and_nothing_recorded(dicom_gateway, tmp_path, caplog):
    service = dicom_gateway(limits={"max_upload_bytes": 64 * 1024})  # the scan is 198 kB
    caplog.set_level(logging.INFO, logger=SCP)
    done = storescu(service.dicom_port, op_file(tmp_path, 5))
    assert done.returncode != 0
    assert "bytes for one instance" in caplog.text  # aborted while sending, not after
    assert "above limits.max_upload_bytes (65536)" in caplog.text
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(0,)]


@pytest.mark.parametrize(
    "sop_class",
    [
        "1.2.840.10008.5.1.4.1.1.77.1.5.2",  # Ophthalmic Photography 16 Bit
        "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    ],
)
def test_the_other_photography_classes_are_accepted(dicom_gateway, tmp_path, sop_class):
    service = dicom_gateway()
    path = op_file(tmp_path, 6, SOPClassUID=sop_class)
    uid = str(pydicom.dcmread(path).SOPInstanceUID)
    done = storescu(service.dicom_port, path)
    assert done.returncode == 0, done.stderr
    meta = rows(service, "SELECT metadata FROM scans WHERE scan_id = ?", uid)[0][0]
    assert sop_class in meta
