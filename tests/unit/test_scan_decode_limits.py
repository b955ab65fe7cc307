"""Size limits are checked from headers before anything is inflated or decoded, on both tiers."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit

from cloud.decode import BadScanError, decode_scan
from edge.clinic.decode import InvalidScanError, decode_pixels, read_header
from edge.clinic.validate import check_header
from shared.config.clinic import ClinicLimits
from shared.scan_decode import DecodeLimits, ScanDecodeError, decode
from tests.scan_corpus import dicom

REPO = Path(__file__).resolve().parents[2]
BOMB_INFLATED_MB = 420  # what the 0.41 MB file of issue #14 inflated to
MEMORY_CAP_MB = 300


def _image_dataset(rows: int, cols: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "OP"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    return ds


def deflate_bomb(inflated_mb: int = BOMB_INFLATED_MB) -> bytes:
    """A deflated DICOM whose Pixel Data is `inflated_mb` MB of zeros, built in 1 MB steps."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.77.1.5.1")
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_implicit_VR, body.is_little_endian = False, True
    write_dataset(body, _image_dataset(4096, 4096))
    pixel_bytes = inflated_mb * 2**20
    body.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixel_bytes))
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [head.getvalue(), packer.compress(body.getvalue())]
    chunk = bytes(2**20)
    out += [packer.compress(chunk) for _ in range(inflated_mb)]
    out.append(packer.flush())
    return b"".join(out)


_CHILD = """
import json, resource, sys
from pathlib import Path

from edge.clinic.decode import InvalidScanError, read_header

def peak_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

data = Path(sys.argv[1]).read_bytes()
before = peak_mb()
cap = int(sys.argv[2]) * 2**20
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
vm = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + cap, hard))  # hard cap: more would be MemoryError
try:
    read_header(data, "dicom")
    result = {"refused": False}
except InvalidScanError as exc:
    result = {"refused": True, "code": exc.problem.code, "message": exc.problem.message}
result.update(before_mb=before, peak_mb=peak_mb())
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return deflate_bomb()


def test_gateway_refuses_a_deflate_bomb_within_a_300_mb_memory_cap(
    bomb: bytes, tmp_path: Path
) -> None:
    assert len(bomb) < 0.6 * 2**20  # the size of issue #14's file
    path = tmp_path / "bomb.dcm"
    path.write_bytes(bomb)
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(MEMORY_CAP_MB)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["refused"] and result["code"] == "inflated_too_large", result
    assert "max_inflated_bytes" in result["message"] and "decompression bomb" in result["message"]
    assert result["peak_mb"] < MEMORY_CAP_MB, result


def test_cloud_refuses_the_same_bomb_naming_the_limit(bomb: bytes) -> None:
    with pytest.raises(BadScanError, match=r"scan b1: .*max_inflated_bytes") as err:
        decode_scan(bomb, "application/dicom", "b1")
    assert "export the scan uncompressed" in str(err.value)


def test_deflated_file_within_the_budget_is_read_and_a_smaller_budget_refuses_it() -> None:
    data = deflate_bomb(1)  # inflates to just over 1 MiB
    header = read_header(data, "dicom", DecodeLimits(max_inflated_bytes=2 * 2**20))
    assert (header.width, header.height) == (4096, 4096)
    small = DecodeLimits(max_inflated_bytes=2**19)
    with pytest.raises(InvalidScanError) as err:
        read_header(data, "dicom", small)
    assert err.value.problem.code == "inflated_too_large" and "524288 bytes" in str(err.value)


def _huge_header_dicom() -> bytes:
    """Header says 100,000 x 100,000 RGB; the pixel data is a few bytes."""
    data = dicom(np.zeros((8, 8, 3), np.uint8))
    ds_bytes = bytearray(data)
    rows = ds_bytes.find(struct.pack("<HH", 0x0028, 0x0010))
    cols = ds_bytes.find(struct.pack("<HH", 0x0028, 0x0011))
    for at in (rows, cols):  # explicit VR US: tag(4) VR(2) len(2) value(2); 100000 > 65535
        ds_bytes[at + 8 : at + 10] = struct.pack("<H", 60_000)
    return bytes(ds_bytes)


def test_dicom_pixel_limit_is_checked_from_the_header_at_the_edge() -> None:
    header = read_header(_huge_header_dicom(), "dicom")
    with pytest.raises(InvalidScanError) as err:
        check_header(header, ClinicLimits())
    assert err.value.problem.code == "too_many_pixels"
    assert "60000x60000" in str(err.value) and "max_pixels" in str(err.value)
    with pytest.raises(InvalidScanError):  # the decoder refuses too, if a caller skipped it
        decode_pixels(_huge_header_dicom(), header)


def test_dicom_pixel_limit_is_checked_in_the_cloud() -> None:
    with pytest.raises(BadScanError, match=r"60000x60000 px .* over the 60 MP limit"):
        decode_scan(_huge_header_dicom(), "application/dicom", "big")


def test_decoded_bytes_limit_counts_samples_bits_and_frames() -> None:
    data = dicom(np.zeros((4, 300, 300, 3), np.uint16), multiframe=True)
    with pytest.raises(ScanDecodeError) as err:
        decode(data, limits=DecodeLimits(max_decoded_bytes=2 * 2**20))
    assert err.value.code == "too_many_bytes"
    assert "300x300 px x 3 samples x 16 bits x 4 frames = 2 MiB" in str(err.value)


def test_embedded_jpeg_larger_than_the_header_is_refused_before_decoding() -> None:
    data = dicom(np.zeros((64, 64, 3), np.uint8))
    ds_header = read_header(data, "dicom").dataset
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000)).save(big, format="JPEG")
    ds_header.PixelData = encapsulate([big.getvalue()])
    ds_header["PixelData"].VR = "OB"
    ds_header.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds_header.PhotometricInterpretation = "YBR_FULL_422"
    buf = io.BytesIO()
    ds_header.save_as(buf, enforce_file_format=True)
    with pytest.raises(
        BadScanError, match="header says 64x64 px but its embedded image is 3000x2000"
    ):
        decode_scan(buf.getvalue(), "application/dicom", "s")


def test_png_bomb_is_refused_in_the_cloud_before_cv2_decodes_it() -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(bytes(2**20))
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + b"\0\0\0\0"
    data = b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk
    with pytest.raises(BadScanError, match=r"100000x100000 px .* decompression bomb"):
        decode_scan(data, "image/png", "p")


def test_jpeg_within_limits_still_decodes_in_both_tiers() -> None:
    image = np.full((128, 96, 3), 120, np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    assert decode_scan(data, "image/jpeg").shape == (128, 96, 3)
