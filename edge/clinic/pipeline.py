"""The judging pipeline: scan bytes -> verdict, in order decode, validate, quality, OOD, triage.

The worst failure is a confident `no_immediate_concern` on an image the system cannot really
read, so the verdict logic only allows it when every stage agrees: the file validated, no
quality check objected (not even a warning), the quality net is not in doubt, no
out-of-distribution signal fired, and the triage probability is below the `clear` threshold.
Any doubt becomes `review`; anything unreadable `retake` or `rejected`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.backends import Prediction, ServedModel
from edge.clinic.decode import (
    FORMATS,
    ImageHeader,
    InvalidScanError,
    Problem,
    decode_pixels,
    invalid,
    read_header,
    sniff_format,
    strip_metadata,
)
from edge.clinic.ood import OOD_REASON, OodReference, guard
from edge.clinic.quality import ANALYSIS_SIZE, QualityReport, assess
from edge.clinic.triage import TriagePolicy
from edge.clinic.validate import (
    ScanIdentity,
    check_dicom,
    check_header,
    check_pixels,
    check_upload,
    identity,
)
from shared.config.clinic import ClinicGatewayConfig
from shared.errors import EdgewardError, ModelRefusedError
from shared.monitoring.summary import feature_summary
from shared.preprocess import PreprocessSpec, resize_for_model, to_tensor
from shared.registry import Registry
from shared.verdicts import Verdict

log = logging.getLogger(__name__)

REJECT_LABEL = "reject"
# The quality net is "in doubt" from this fraction of its reject threshold up: no all-clear then.
QUALITY_DOUBT_FRACTION = 0.5


@dataclass
class ScanOutcome:
    """What the gateway tells the operator about one scan, and what it may send to the cloud."""

    verdict: Verdict
    reasons: list[str]  # plain words for the operator
    codes: list[str]  # machine codes, e.g. "blur", "modality", "ood_energy"
    confidence: float  # 0..1, the probability behind the verdict (1.0 for rule-based ones)
    timings_ms: dict[str, float]  # decode, validate, quality, ood, triage, total
    model_versions: dict[str, str] = field(default_factory=dict)
    gradable: bool = False  # True -> queue it for the cloud grader
    flags: list[str] = field(default_factory=list)  # accepted but flagged: missing_laterality
    laterality: str | None = None  # raw; the service pseudonymises ids before upload
    patient_id: str | None = None
    referable_probability: float | None = None
    upload_bytes: bytes | None = None  # metadata-free image for the cloud (never DICOM)
    upload_content_type: str | None = None
    measures: dict[str, float] = field(default_factory=dict)  # quality + OOD scores, for audits
    # Per model role ("quality", "triage"): what the prediction log keeps (confidence, score,
    # call, feature summary). Only the models whose answer shaped the verdict are listed.
    monitoring: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Timer:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1000.0
        self.last = now

    def done(self) -> dict[str, float]:
        self.ms["total"] = (time.perf_counter() - self.start) * 1000.0
        return {k: round(v, 3) for k, v in self.ms.items()}


def _load(registry: Registry, name: str, backend: str, cache: Path) -> ServedModel:
    """The serving version of `name`, or an error that says how to get one."""
    try:
        return ServedModel(registry, name, backend, cache)
    except ModelRefusedError as exc:
        raise ModelRefusedError(
            f"clinic pipeline: {exc}; build the models with `edgeward models build --registry "
            f"{registry.root}` or set registry_dir to a registry that has them"
        ) from exc
    except EdgewardError as exc:
        raise EdgewardError(
            f"clinic pipeline: {exc}; build the models with `edgeward models build --registry "
            f"{registry.root}` or set registry_dir to a registry that has them"
        ) from exc


class ClinicPipeline:
    """Loads the quality and triage nets once; `process` judges one scan and never raises on it."""

    def __init__(
        self,
        config: ClinicGatewayConfig,
        backend: str | None = None,
        registry_dir: Path | None = None,
    ) -> None:
        self.config = config
        registry = Registry(registry_dir or config.registry_dir)
        kind = backend or config.backend
        cache = Path(config.data_dir) / "trt-cache"
        self.quality_net = _load(registry, config.quality_model, kind, cache)
        self.triage_net = _load(registry, config.triage_model, kind, cache)
        qm = self.quality_net.manifest
        if REJECT_LABEL not in qm.labels or REJECT_LABEL not in qm.thresholds:
            raise ModelRefusedError(
                f"model {qm.model_id} cannot gate quality: it needs a {REJECT_LABEL!r} label and "
                f"threshold (labels {qm.labels}, thresholds {sorted(qm.thresholds)})"
            )
        self.reject_threshold = float(qm.thresholds[REJECT_LABEL])
        self.policy = TriagePolicy(self.triage_net.manifest)
        self.ood_refs = {
            "quality": OodReference(qm),
            "triage": OodReference(self.triage_net.manifest),
        }
        for short, ref in self.ood_refs.items():
            if not ref.present:
                log.warning(
                    "model %s has no OOD reference: %s signal disabled", ref.model_id, short
                )
        self.model_versions = {
            "quality": qm.model_id,
            "triage": self.triage_net.manifest.model_id,
        }
        log.info(
            "clinic pipeline ready: %s on %s, %s on %s",
            qm.model_id,
            self.quality_net.backend.name,
            self.triage_net.manifest.model_id,
            self.triage_net.backend.name,
        )

    @property
    def backend_name(self) -> str:
        return self.triage_net.backend.name

    def close(self) -> None:
        self.quality_net.close()
        self.triage_net.close()

    # ---- the pipeline ----

    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome:
        """Judge one scan. Bad input gives `rejected`/`retake` with reasons, never an exception."""
        metadata = dict(metadata or {})
        label = metadata.get("scan_id") or filename
        timer = _Timer()
        ident = ScanIdentity()
        try:
            return self._process(
                data,
                filename=filename,
                content_type=content_type,
                metadata=metadata,
                timer=timer,
                ident=ident,
            )
        except InvalidScanError as exc:
            return self._problem(exc.problem, timer, ident, label)
        except Exception as exc:  # a bug must not look like an answer, nor stop the gateway
            log.exception("scan %s: pipeline failed", label)
            problem = Problem(
                "internal_error",
                f"the gateway could not judge this scan ({type(exc).__name__}: {exc}); "
                "a person must look at it",
                Verdict.REVIEW,
            )
            return self._problem(problem, timer, ident, label, confidence=0.0)

    def _process(
        self,
        data: bytes,
        *,
        filename: str | None,
        content_type: str | None,
        metadata: dict[str, str],
        timer: _Timer,
        ident: ScanIdentity,
    ) -> ScanOutcome:
        limits = self.config.limits
        check_upload(data, limits)
        fmt = sniff_format(data, filename, content_type)
        if fmt is None:
            raise invalid(
                "not_an_image",
                f"not an image format the gateway reads ({', '.join(FORMATS).upper()}); "
                f"the file starts with {data[:8]!r} — send the scan as exported by the camera",
            )
        header = read_header(data, fmt)
        if header.dataset is not None:
            check_dicom(header.dataset)
        check_header(header, limits)
        found = identity(header, metadata)
        ident.laterality, ident.patient_id, ident.flags = (
            found.laterality,
            found.patient_id,
            found.flags,
        )
        timer.lap("validate")
        image = decode_pixels(data, header)
        timer.lap("decode")
        image = check_pixels(image, header)
        timer.lap("validate")

        # A JPEG decoded at reduced scale has its 8-px codec blocks shrunk by the same factor.
        reduction = max(1, header.width // max(image.shape[1], 1))
        report = assess(image, block_period=8 // reduction if reduction <= 4 else None)
        q_spec, t_spec = self.quality_net.manifest.preprocess, self.triage_net.manifest.preprocess
        q_view = self._model_view(image, report, q_spec)
        quality = self.quality_net.predict(to_tensor(q_view, q_spec)[None])[0]
        timer.lap("quality")
        t_view = q_view if t_spec == q_spec else self._model_view(image, report, t_spec)
        triage = self.triage_net.predict(to_tensor(t_view, t_spec)[None])[0]
        timer.lap("triage")
        return self._decide(
            data,
            header=header,
            image=image,
            report=report,
            quality=quality,
            triage=triage,
            timer=timer,
            ident=ident,
            views=(q_view, t_view),
        )

    @staticmethod
    def _model_view(image: np.ndarray, report: QualityReport, spec: PreprocessSpec) -> np.ndarray:
        """The model's view (cropped, resized uint8 BGR), made by the shared preprocessing.

        From a copy of the gate's 512 px frame at twice the model's input size when that is
        smaller than the scan: the same crop and area resize without scanning megapixels again,
        and close to the few-hundred-pixel renders the nets were trained on.
        """
        frame = report.frame
        side = 2 * spec.size
        if side > ANALYSIS_SIZE:
            return resize_for_model(image, spec)
        h, w = frame.shape[:2]
        scale = side / max(h, w)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return resize_for_model(frame, spec)

    def _decide(
        self,
        data: bytes,
        *,
        header: ImageHeader,
        image: np.ndarray,
        report: QualityReport,
        quality: Prediction,
        triage: Prediction,
        timer: _Timer,
        ident: ScanIdentity,
        views: tuple[np.ndarray, np.ndarray],
    ) -> ScanOutcome:
        qm = self.quality_net.manifest
        p_reject = quality.prob(REJECT_LABEL, qm.labels)
        measures = dict(report.measures)
        measures["quality_net_p_reject"] = p_reject
        reasons: list[str] = []
        codes: list[str] = []

        def outcome(verdict: Verdict, confidence: float, **extra: object) -> ScanOutcome:
            # Image statistics on each model's view, as the reference kept at training time.
            monitoring = {
                "quality": {
                    "confidence": float(quality.probabilities.max()),
                    "score": p_reject,
                    "prediction": int(not p_reject < self.reject_threshold),
                    "features": feature_summary(views[0], quality.features, measures),
                }
            }
            if verdict is not Verdict.RETAKE:  # triage only shapes verdicts past the gate
                p_ref = self.policy.decide(triage).referable_probability
                monitoring["triage"] = {
                    "confidence": float(triage.probabilities.max()),
                    "score": p_ref,
                    "prediction": int(p_ref >= self.policy.refer),
                    "features": feature_summary(views[1], triage.features, measures),
                }
            return ScanOutcome(
                verdict=verdict,
                reasons=reasons,
                codes=codes,
                confidence=float(np.clip(confidence, 0.0, 1.0)),
                timings_ms=timer.done(),
                model_versions=dict(self.model_versions),
                flags=ident.flags,
                laterality=ident.laterality,
                patient_id=ident.patient_id,
                measures={k: round(float(v), 5) for k, v in measures.items()},
                monitoring=monitoring,
                **extra,  # type: ignore[arg-type]
            )

        # 1. Unreadable scans: retake, with every reason the checks and the quality net found.
        if report.rejects or not p_reject < self.reject_threshold:
            for finding in report.rejects:
                reasons.append(finding.message)
                codes.append(finding.code)
            if not p_reject < self.reject_threshold:
                codes.append("quality_net")
                reasons.append(
                    f"the quality model judges this scan ungradable (p={p_reject:.2f}) — "
                    "check focus, exposure and alignment and retake"
                )
            timer.lap("ood")
            confidence = 1.0 if report.rejects else p_reject
            return outcome(Verdict.RETAKE, confidence)

        # 2. Out of distribution: a person decides; never an automatic answer.
        ood = guard(
            {
                "quality": (self.ood_refs["quality"], quality),
                "triage": (self.ood_refs["triage"], triage),
            }
        )
        measures.update(ood.scores)
        timer.lap("ood")
        triage_result = self.policy.decide(triage)
        p = triage_result.referable_probability
        if ood.out_of_distribution:
            codes.extend(sorted({s.code for s in ood.signals}))
            reasons.append(OOD_REASON)
            return outcome(Verdict.REVIEW, 1.0 - p_reject, referable_probability=p)

        # 3. Triage, with any remaining doubt demoting an all-clear to review.
        body, body_type = upload_body(data, header, image)
        timer.lap("encode")
        gradable = dict(
            gradable=True,
            referable_probability=p,
            upload_bytes=body,
            upload_content_type=body_type,
        )
        doubts: list[tuple[str, str]] = [(f.code, f.message) for f in report.warnings]
        if p_reject >= QUALITY_DOUBT_FRACTION * self.reject_threshold:
            doubts.append(
                (
                    "quality_doubt",
                    f"image quality is borderline (quality model p={p_reject:.2f})",
                )
            )
        codes.append(f"triage_{triage_result.verdict.value}")
        reasons.append(triage_result.reason)
        if triage_result.verdict is Verdict.NO_IMMEDIATE_CONCERN and doubts:
            for code, message in doubts:
                codes.append(code)
                reasons.append(
                    f"{message}; not confident enough to clear it — a person must review"
                )
            return outcome(Verdict.REVIEW, triage_result.confidence, **gradable)
        for code, message in doubts:  # still worth telling the operator
            codes.append(code)
            reasons.append(message)
        return outcome(triage_result.verdict, triage_result.confidence, **gradable)

    def _problem(
        self,
        problem: Problem,
        timer: _Timer,
        ident: ScanIdentity,
        label: str | None,
        confidence: float = 1.0,
    ) -> ScanOutcome:
        prefix = f"scan {label}: " if label else ""
        return ScanOutcome(
            verdict=problem.verdict,
            reasons=[prefix + problem.message],
            codes=[problem.code],
            confidence=confidence,
            timings_ms=timer.done(),
            model_versions=dict(self.model_versions),
            flags=list(ident.flags),
            laterality=ident.laterality,
            patient_id=ident.patient_id,
        )


def upload_body(data: bytes, header: ImageHeader, image: np.ndarray) -> tuple[bytes, str]:
    """What goes to the cloud grader: the camera's JPEG/PNG minus metadata, else a PNG.

    DICOM headers carry the patient's identity, so only its pixels leave (as PNG, lossless).
    """
    stripped = strip_metadata(data, header.fmt)
    if stripped is not None:
        return stripped, f"image/{header.fmt}"
    # DICOM and TIFF are decoded at full size; fast compression as this is on the verdict path.
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"cannot encode the {header.fmt} scan as PNG for upload")
    return bytes(buf.tobytes()), "image/png"
