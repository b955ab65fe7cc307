"""The clinic judging pipeline end to end on real ONNX models (quick build) and generated scans.

Quick models are barely trained: the quality net rejects nearly everything and the triage net is
near chance. So the tests check what must hold for any model — bad input never passes, non-fundus
input is never cleared, the verdict follows the manifest's thresholds — and a second pipeline
with the quality net's gate opened (threshold raised in a copied manifest) exercises the
classical checks and triage on their own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.uid import MPEG2MPML

from edge.backends import Prediction
from edge.clinic.outcome import ScanOutcome
from edge.clinic.pipeline import ClinicPipeline
from edge.clinic.upload import upload_copy
from shared.config import ClinicGatewayConfig
from shared.probabilities import log_odds_gap
from shared.verdicts import Verdict
from sim.fundus.defects import QUALITY_RULES
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import DEFECTS, generate_sample
from sim.fundus.nonfundus import nonfundus_images
from tests.unit.test_clinic_pipeline_decode import dicom_bytes

REPO = Path(__file__).resolve().parents[2]
SIZE = 768
META = {"laterality": "R", "patient_id": "PAT-9"}
# The classical check (machine code) each generator defect must trip at reject severity.
EXPECTED_CODES = {
    "defocus": {"blur"},
    "motion_blur": {"blur"},
    "underexposure": {"underexposed"},
    "overexposure": {"overexposed"},
    "uneven_illumination": {"uneven_illumination", "occlusion"},
    "off_centre": {"fov_off_centre"},
    "eyelash_occlusion": {"occlusion"},
    "haze_flare": {"low_contrast"},
    "low_resolution": {"blur"},
    "jpeg_compression": {"compression"},
}


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def _config(registry: Path, tmp: Path) -> ClinicGatewayConfig:
    return ClinicGatewayConfig(
        site_id="test-site", registry_dir=registry, data_dir=tmp, backend="onnx-cpu"
    )


@pytest.fixture(scope="module")
def pipeline(
    quick_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClinicPipeline]:
    p = ClinicPipeline(_config(quick_registry, tmp_path_factory.mktemp("gw")))
    yield p
    p.close()


def _with_thresholds(
    quick_registry: Path,
    tmp: Path,
    quality: dict[str, float],
    triage: dict[str, float],
    *,
    open_ood: bool = False,
) -> Path:
    """A copy of the registry whose champions carry other thresholds (artifacts untouched).

    `open_ood` lifts the OOD guard's thresholds, for tests of what follows the guard: a quick
    model (200 training scans) may find a healthy twin scan unfamiliar, and that is its luck.
    """
    copy = tmp / "registry"
    shutil.copytree(quick_registry, copy)
    for name, changes in (("fundus-quality", quality), ("fundus-triage", triage)):
        for manifest_path in (copy / name).glob("*/manifest.json"):
            manifest = json.loads(manifest_path.read_text())
            manifest["thresholds"].update(changes)
            if open_ood:
                ood = manifest["extra"]["ood"]
                ood["mahalanobis_threshold"] = ood["energy_threshold"] = 1e9
            manifest_path.write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="module")
def open_gate(
    quick_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClinicPipeline]:
    """Neither the quality net nor the OOD guard can stop a scan: classical checks and triage
    decide."""
    tmp = tmp_path_factory.mktemp("open")
    registry = _with_thresholds(quick_registry, tmp, {"reject": 2.0}, {}, open_ood=True)
    p = ClinicPipeline(_config(registry, tmp))
    yield p
    p.close()


def judge(p: ClinicPipeline, data: bytes, name: str = "scan.png") -> ScanOutcome:
    return p.process(data, filename=name, metadata=dict(META))


def healthy(index: int = 0, grade: int = 0) -> np.ndarray:
    return generate_sample(11, index, size=SIZE, grade=grade, defect_rate=0.0).image_bgr


# ---- validation failures: structured, actionable, and the next scan is still judged ----


def test_truncated_jpeg_is_rejected_and_the_next_scan_is_still_judged(
    pipeline: ClinicPipeline,
) -> None:
    data = jpeg(healthy())
    bad = judge(pipeline, data[: len(data) // 3], "cut.jpg")
    assert bad.verdict == Verdict.REJECTED and bad.codes == ["truncated"]
    assert bad.reasons[0].startswith("scan cut.jpg: ") and "cut short" in bad.reasons[0]
    assert not bad.gradable
    good = judge(pipeline, data, "whole.jpg")
    assert good.verdict != Verdict.REJECTED and "truncated" not in good.codes


def test_bytes_that_are_no_image_are_rejected_naming_the_formats(pipeline: ClinicPipeline) -> None:
    out = judge(pipeline, b"%PDF-1.7\n this is a referral letter", "letter.pdf")
    assert out.verdict == Verdict.REJECTED and out.codes == ["not_an_image"]
    assert "DICOM, JPEG, PNG, TIFF" in out.reasons[0]


def test_dicom_with_ct_modality_gets_retake_asking_for_a_fundus_image(
    pipeline: ClinicPipeline,
) -> None:
    out = judge(pipeline, dicom_bytes(healthy(), modality="CT"), "ct.dcm")
    assert out.verdict == Verdict.RETAKE and out.codes == ["modality"]
    assert "DICOM Modality is 'CT', expected 'OP'" in out.reasons[0]


def test_dicom_in_unsupported_compressed_syntax_is_rejected(pipeline: ClinicPipeline) -> None:
    out = judge(pipeline, dicom_bytes(healthy(), syntax=MPEG2MPML), "mpeg2.dcm")
    assert out.verdict == Verdict.REJECTED and out.codes == ["transfer_syntax"]
    assert "uncompressed" in out.reasons[0]


def test_dicom_without_laterality_or_patient_is_judged_and_flagged(
    open_gate: ClinicPipeline,
) -> None:
    sample = generate_sample(11, 3, size=SIZE, grade=0, defect_rate=0.0)
    data = to_dicom_bytes(sample, omit=("ImageLaterality", "Laterality", "PatientID"))
    out = open_gate.process(data, filename="anon.dcm")
    assert out.verdict not in (Verdict.REJECTED, Verdict.RETAKE), out.reasons
    assert {"missing_laterality", "missing_patient_id"} <= set(out.flags)
    assert out.gradable
    # DICOM headers name the patient: only re-encoded pixels may go to the cloud.
    body, content_type = upload_copy(data, "anon.dcm")
    assert content_type == "image/png" and b"DICM" not in body[:200]
    decoded = np.asarray(cv2.imdecode(np.frombuffer(body, np.uint8), 1))
    assert decoded.shape == (SIZE, SIZE, 3)


def test_dicom_with_tags_carries_laterality_and_patient(open_gate: ClinicPipeline) -> None:
    sample = generate_sample(11, 4, size=SIZE, grade=0, defect_rate=0.0)
    out = open_gate.process(to_dicom_bytes(sample, patient_id="PAT-77"), filename="ok.dcm")
    assert out.patient_id == "PAT-77" and out.laterality == sample.labels.laterality
    assert "missing_laterality" not in out.flags


def test_too_small_image_gets_retake_with_the_minimum(pipeline: ClinicPipeline) -> None:
    small = cv2.resize(healthy(), (200, 200), interpolation=cv2.INTER_AREA)
    out = judge(pipeline, png(small))
    assert out.verdict == Verdict.RETAKE and out.codes == ["too_small"]
    assert "200x200" in out.reasons[0]


def test_decompression_bomb_header_is_refused_before_decoding(pipeline: ClinicPipeline) -> None:
    data = bytearray(jpeg(healthy()))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (50_000).to_bytes(2, "big") * 2
    out = judge(pipeline, bytes(data), "bomb.jpg")
    assert out.verdict == Verdict.REJECTED and out.codes == ["too_many_pixels"]
    assert "decode" not in out.timings_ms  # refused before any pixel was decoded


def test_greyscale_image_gets_retake(pipeline: ClinicPipeline) -> None:
    grey = cv2.cvtColor(healthy(), cv2.COLOR_BGR2GRAY)
    out = judge(pipeline, png(grey))
    assert out.verdict == Verdict.RETAKE and out.codes == ["channels"]


# ---- the quality gate ----


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_at_reject_severity_gets_retake_with_a_plain_reason(
    open_gate: ClinicPipeline, defect: str
) -> None:
    reject_at = QUALITY_RULES[defect].reject_at
    severity = reject_at + 0.6 * (1.0 - reject_at)
    sample = generate_sample(12, 7, size=SIZE, defects={defect: severity}, defect_rate=0.0)
    assert sample.labels.quality == "reject"
    out = judge(open_gate, png(sample.image_bgr))
    assert out.verdict == Verdict.RETAKE, (defect, out.codes, out.measures)
    assert EXPECTED_CODES[defect] & set(out.codes), (defect, out.codes)
    assert all(" — " in r and ("retake" in r or "resend" in r) for r in out.reasons), out.reasons
    assert not out.gradable


def test_quality_net_objection_is_reported_in_plain_words(pipeline: ClinicPipeline) -> None:
    # The quick quality net flags nearly everything; whatever it flags carries its reason. On
    # its own (no classical check names a defect) it asks for a person, not a retake.
    outs = [judge(pipeline, png(healthy(i))) for i in range(3)]
    for out in outs:
        if "quality_net" in out.codes:
            alone = out.codes[0] == "quality_net"
            assert out.verdict == (Verdict.REVIEW if alone else Verdict.RETAKE), out.codes
            assert any("quality model" in r for r in out.reasons)
            assert out.gradable == alone  # a review goes up to the desk; a retake does not
    assert all(o.model_versions["quality"].startswith("fundus-quality:") for o in outs)


def test_clean_scans_pass_the_classical_checks_and_are_gradable(open_gate: ClinicPipeline) -> None:
    for index, grade in ((0, 0), (1, 3)):
        data = jpeg(healthy(index, grade))
        out = judge(open_gate, data, "scan.jpg")
        assert out.verdict in (Verdict.REFER, Verdict.REVIEW, Verdict.NO_IMMEDIATE_CONCERN)
        assert out.gradable and out.referable_probability is not None
        body, content_type = upload_copy(data, "scan.jpg")  # made after the verdict is recorded
        assert content_type == "image/jpeg" and len(body) <= len(data)
        decoded = np.asarray(cv2.imdecode(np.frombuffer(body, np.uint8), 1))
        assert decoded.shape == (SIZE, SIZE, 3)
        assert set(out.timings_ms) >= {"decode", "validate", "quality", "triage", "total"}
        assert out.timings_ms["total"] >= out.timings_ms["quality"] > 0


# ---- triage follows the manifest's operating point ----
# The verdict rules themselves are table-tested in tests/unit/test_clinic_verdict.py. Here only
# what holds for any model: a quick model may see a twin scan as out of distribution, or its
# quality net may be in doubt, so a verdict other than the band's is allowed only as `review`
# that names its doubt.

OOD_PREFIX = "ood_"


def _doubts(out: ScanOutcome) -> set[str]:
    """The codes that may turn a band's verdict into review: OOD signals, warnings, doubt."""
    return {c for c in out.codes if not c.startswith("triage_")}


@pytest.mark.parametrize(
    ("thresholds", "band"),
    [
        ({"clear": 0.0, "refer": 0.0}, Verdict.REFER),
        ({"clear": 1.0, "refer": 1.0}, Verdict.NO_IMMEDIATE_CONCERN),
        ({"clear": 0.0, "refer": 1.0}, Verdict.REVIEW),
    ],
)
def test_triage_verdict_follows_the_manifest_thresholds(
    quick_registry: Path,
    tmp_path: Path,
    thresholds: dict[str, float],
    band: Verdict,
) -> None:
    registry = _with_thresholds(quick_registry, tmp_path, {"reject": 2.0}, thresholds)
    p = ClinicPipeline(_config(registry, tmp_path))
    try:
        outs = [judge(p, png(healthy(i, grade))) for i, grade in ((0, 0), (1, 4))]
    finally:
        p.close()
    for out in outs:
        assert 0.0 <= (out.referable_probability or -1) <= 1.0
        assert out.model_versions["triage"].startswith("fundus-triage:")
        ood = any(c.startswith(OOD_PREFIX) for c in out.codes)
        if not ood:  # past the OOD guard the triage band is always reported
            assert out.codes[0] == f"triage_{band.value}", out.codes
        if out.verdict != band:
            assert out.verdict == Verdict.REVIEW and _doubts(out), (out.verdict, out.codes)
        if out.verdict == Verdict.NO_IMMEDIATE_CONCERN:
            assert out.codes == ["triage_no_immediate_concern"]  # no doubt of any kind


def test_each_scan_gets_exactly_its_band_unless_a_named_doubt_sends_it_to_review(
    open_gate: ClinicPipeline,
) -> None:
    policy = open_gate.policy
    for index, grade in ((2, 0), (3, 0), (4, 3), (5, 4)):
        out = judge(open_gate, png(healthy(index, grade)))
        p = out.referable_probability
        assert p is not None
        if any(c.startswith(OOD_PREFIX) for c in out.codes):
            assert out.verdict == Verdict.REVIEW and out.gradable, out.codes  # to the desk
            continue

        def band_of(q: float) -> Verdict:
            return (
                Verdict.REFER
                if q >= policy.refer
                else Verdict.NO_IMMEDIATE_CONCERN
                if q < policy.clear
                else Verdict.REVIEW
            )

        band = band_of(p)
        assert out.codes[0] == f"triage_{band.value}", (p, out.codes)
        doubts = out.codes[1:]
        # the view and its mirror image were both read: the verdict's probability is their
        # average, and readings further apart than the manifest's mirror_gap are a doubt
        view = out.measures["triage_p_referable_view"]
        mirrored = out.measures["triage_p_referable_mirrored"]
        assert policy.mirror_gap is not None  # built by this code: averaged, with a limit
        # how far mirroring moved it is kept as a measure (monitored for drift)
        gap = out.measures["triage_mirror_log_odds_gap"]
        # (from the unrounded probabilities; the measures keep 5 decimals, which near 0 or 1
        # moves a log-odds by up to 0.5e-5 / p)
        slack = sum(0.5e-5 / max(min(q, 1 - q), 1e-5) for q in (view, mirrored))
        expected = log_odds_gap(view, mirrored)
        assert gap == pytest.approx(expected, rel=0.05, abs=0.05 + slack), out.measures
        # the average lies between the two readings (in log-odds)
        assert min(view, mirrored) - 1e-5 <= p <= max(view, mirrored) + 1e-5, out.measures
        flips = gap > policy.mirror_gap
        assert ("mirror_disagrees" in doubts) == flips, (p, out.measures, out.codes)
        if flips or (band is Verdict.NO_IMMEDIATE_CONCERN and doubts):
            assert out.verdict == Verdict.REVIEW, (p, out.codes)  # doubt demotes an all-clear
        else:
            assert out.verdict == band, (p, out.verdict, out.codes)  # a referral stays one
        assert out.gradable


# ---- out of distribution ----


@pytest.mark.parametrize("encode", [png, jpeg])
def test_non_fundus_input_is_never_cleared(
    pipeline: ClinicPipeline, open_gate: ClinicPipeline, encode: object
) -> None:
    for kind, image in nonfundus_images(5, 512).items():
        for p in (pipeline, open_gate):
            out = judge(p, encode(image))  # type: ignore[operator]
            assert out.verdict in (Verdict.RETAKE, Verdict.REVIEW, Verdict.REJECTED), kind
            assert out.reasons, kind
            # only a review goes up, so that a person at the desk decides
            assert out.gradable == (out.verdict == Verdict.REVIEW), (kind, out.verdict)


def test_an_internal_failure_gives_review_not_a_crash(open_gate: ClinicPipeline) -> None:
    net = open_gate.triage_net
    original = net.predict

    def broken(batch: np.ndarray) -> list[Prediction]:
        raise RuntimeError("runtime exploded")

    net.predict = broken  # type: ignore[method-assign]
    try:
        out = judge(open_gate, png(healthy()))
    finally:
        net.predict = original  # type: ignore[method-assign]
    assert out.verdict == Verdict.REVIEW and out.codes == ["internal_error"]
    assert out.confidence == 0.0 and "runtime exploded" in out.reasons[0]
    assert judge(open_gate, png(healthy())).codes != ["internal_error"]


# ---- the offline command ----


def test_edge_check_prints_one_json_line_per_file(quick_registry: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    good.write_bytes(png(healthy()))
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    run = subprocess.run(
        [
            str(REPO / ".venv/bin/edgeward"),
            "edge",
            "check",
            str(good),
            str(bad),
            "--registry",
            str(quick_registry),
            "--backend",
            "onnx-cpu",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(bad)]
    for line in lines:
        assert {"file", "verdict", "reasons", "confidence", "timings_ms"} <= set(line)
        assert line["verdict"] in {v.value for v in Verdict}
    assert lines[1]["verdict"] == "rejected" and lines[1]["reasons"]


def test_edge_check_without_models_says_how_to_build_them(tmp_path: Path) -> None:
    scan = tmp_path / "scan.png"
    scan.write_bytes(png(healthy()))
    run = subprocess.run(
        [str(REPO / ".venv/bin/edgeward"), "edge", "check", str(scan), "--registry", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "fundus-quality" in run.stderr
    assert "edgeward models build" in run.stderr
