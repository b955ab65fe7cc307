"""Fuzz targets: each parser fed arbitrary bytes may only raise the project's own error types.

A target's `check` lets the allowed errors pass, fails with AssertionError when a property
breaks (edge and cloud disagree on pixels, metadata survives stripping), and lets anything
else propagate: that is a crash the fuzzer reports.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from cloud.decode import BadScanError, decode_scan
from edge.clinic.decode import (
    InvalidScanError,
    decode_pixels,
    read_header,
    sniff_format,
    strip_metadata,
)
from edge.clinic.validate import check_dicom
from shared.errors import SchemaError
from shared.messages import (
    ApproachCount,
    DriftAlert,
    GatewayStatus,
    ModeChange,
    ModelUpdate,
    ModelUpdateAck,
    PhaseGreen,
    ScanVerdictEvent,
    SignalPlan,
    TrafficAggregate,
    decode,
)
from shared.messages.base import Message
from shared.proto import edgeward_pb2 as pb
from shared.proto.parse import parse
from shared.verdicts import Verdict


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes], None]


# ---- scans ----

_CONTENT_TYPE = {"dicom": "application/dicom", "png": "image/png", "jpeg": "image/jpeg"}


def _edge(data: bytes, filename: str) -> np.ndarray | None:
    try:
        fmt = sniff_format(data, filename, None)
        if fmt is None:
            return None
        header = read_header(data, fmt)
        if header.dataset is not None:
            check_dicom(header.dataset)
        return decode_pixels(data, header)
    except InvalidScanError:
        return None


def _cloud(data: bytes, content_type: str) -> np.ndarray | None:
    try:
        return decode_scan(data, content_type, "fuzz")
    except BadScanError:
        return None


def _scan_check(fmt: str) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        edge = _edge(data, f"scan.{'dcm' if fmt == 'dicom' else fmt}")
        cloud = _cloud(data, _CONTENT_TYPE[fmt])
        for image in (edge, cloud):
            if image is not None:
                assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        if edge is not None and cloud is not None:
            assert np.array_equal(edge, cloud), "edge and cloud decoded different pixels"
        if edge is not None and fmt in ("jpeg", "png"):
            _check_strip(data, fmt)

    return check


def _check_strip(data: bytes, fmt: str) -> None:
    try:
        stripped = strip_metadata(data, fmt)
    except InvalidScanError:
        return
    assert stripped is not None
    if fmt == "jpeg":
        assert stripped.startswith(b"\xff\xd8") and stripped.endswith(b"\xff\xd9")
        assert set(_jpeg_markers(stripped)) <= _DECODING_MARKERS, "APPn/COM survived"
    else:
        assert not any(k in stripped for k in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"))


_DECODING_MARKERS = {0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xEE, *range(0xC0, 0xD0)} - {0xC8}


def _jpeg_markers(data: bytes) -> list[int]:
    """Markers outside entropy-coded data, as the stripper wrote them."""
    found, pos = [], 2
    while pos < len(data) - 3:
        marker = data[pos + 1]
        found.append(marker)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
        if marker == 0xDA:
            while pos < len(data) - 1 and not (
                data[pos] == 0xFF and data[pos + 1] not in (0, *range(0xD0, 0xD8))
            ):
                pos += 1
    return found


def _scan_seeds(fmt: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        from tests.scan_corpus import corpus

        cases = [c.data for c in corpus(64) if c.content_type == _CONTENT_TYPE[fmt]]
        if fmt == "jpeg":  # progressive and restart-marker variants walk other code paths
            image = np.zeros((72, 80, 3), np.uint8)
            image[10:40, 20:60] = (30, 120, 200)
            for params in ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]):
                cases.append(cv2.imencode(".jpg", image, params)[1].tobytes())
        return cases

    return seeds


# ---- MQTT payloads (JSON envelopes) ----

MESSAGE_TYPES: tuple[type[Message], ...] = (
    ScanVerdictEvent,
    GatewayStatus,
    TrafficAggregate,
    SignalPlan,
    ModeChange,
    DriftAlert,
    ModelUpdate,
    ModelUpdateAck,
)


def _mqtt_seeds() -> list[bytes]:
    messages: list[Message] = [
        ScanVerdictEvent(
            sender="gw-1",
            scan_id="s1",
            site_id="north",
            verdict=Verdict.RETAKE,
            reasons=["out of focus"],
            confidence=0.9,
        ),
        GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="online"),
        TrafficAggregate(
            sender="tl-C2",
            junction_id="C2",
            interval_start=10.0,
            interval_s=5.0,
            approaches=[ApproachCount(approach_id="north", queue=3, approaching=2)],
            mode="coordinated",
        ),
        SignalPlan(
            sender="coordinator",
            junction_id="C2",
            plan_id="p1",
            issued_at=100.0,
            expires_at=130.0,
            cycle_s=60.0,
            greens=[PhaseGreen(phase_index=0, green_s=25), PhaseGreen(phase_index=2, green_s=25)],
        ),
    ]
    return [m.encode() for m in messages] + [b"{}", b"[]", b'{"schema_version": 1}']


def _mqtt_check(data: bytes) -> None:
    for cls in MESSAGE_TYPES:
        try:
            message = decode(data, cls)
        except SchemaError:
            continue
        assert decode(message.encode(), cls) == message  # what is accepted round-trips


# ---- protobuf payloads (gRPC and the stored outbox/result records) ----

PROTO_TYPES = (
    pb.ScanUpload,
    pb.ScanStatus,
    pb.GradeRequest,
    pb.GradeResult,
    pb.EdgeVerdict,
    pb.ResultQuery,
)


def _proto_seeds() -> list[bytes]:
    request = pb.GradeRequest(scan_id="s1", image=b"\xff\xd8\xff", content_type="image/jpeg")
    request.edge.verdict = "refer"
    request.edge.model_versions["triage"] = "t-1"
    upload = pb.ScanUpload(scan_id="u1", image=b"\x89PNG", filename="a.png")
    upload.metadata["laterality"] = "L"
    status = pb.ScanStatus(scan_id="s1", verdict="review", reasons=["a", "b"], confidence=0.5)
    return [m.SerializeToString() for m in (request, upload, status)] + [b""]


def _proto_check(data: bytes) -> None:
    for cls in PROTO_TYPES:
        try:
            message = parse(data, cls)
        except SchemaError:
            continue
        assert parse(message.SerializeToString(), cls) == message  # what parses re-parses


TARGETS = {
    t.name: t
    for t in (
        Target("dicom", _scan_seeds("dicom"), _scan_check("dicom")),
        Target("png", _scan_seeds("png"), _scan_check("png")),
        Target("jpeg", _scan_seeds("jpeg"), _scan_check("jpeg")),
        Target("mqtt", _mqtt_seeds, _mqtt_check),
        Target("proto", _proto_seeds, _proto_check),
    )
}
