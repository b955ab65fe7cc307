"""The judging pipeline: scan bytes -> verdict, in order decode, validate, quality, OOD, triage.

This gathers the evidence (checks, model outputs, OOD signals); every rule that turns evidence
into a verdict lives in `edge.clinic.verdict`, pure and table-tested.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.backends import Prediction, ServedModel
from edge.clinic import verdict as rules
from edge.clinic.decode import (
    FORMATS,
    InvalidScanError,
    Problem,
    decode_pixels,
    invalid,
    read_header,
    sniff_format,
)
from edge.clinic.ood import OodReference, guard
from edge.clinic.outcome import ScanOutcome
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
from shared.probabilities import log_odds_gap
from shared.registry import Registry
from shared.scan_decode import reduction_for
from shared.verdicts import Verdict

log = logging.getLogger(__name__)

REJECT_LABEL = "reject"


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
            problem = Problem(rules.INTERNAL_ERROR, rules.failure_reason(exc), Verdict.REVIEW)
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
        q_spec, t_spec = self.quality_net.manifest.preprocess, self.triage_net.manifest.preprocess
        # Nothing here looks finer than the gate's frame or twice a model's input: let the codec
        # skip the rest (a 2048 px JPEG decodes at 1/4 by DCT scaling, ~3x faster).
        min_side = max(ANALYSIS_SIZE, 2 * q_spec.size, 2 * t_spec.size)
        image = decode_pixels(data, header, min_side=min_side)
        timer.lap("decode")
        image = check_pixels(image, header)
        timer.lap("validate")

        # A JPEG decoded at reduced scale has its 8-px codec blocks shrunk by the same factor.
        reduction = reduction_for(header, min_side)
        report = assess(image, block_period=8 // reduction if reduction <= 4 else None)
        q_view = self.model_view(image, report, q_spec)
        quality = self.quality_net.predict(to_tensor(q_view, q_spec)[None])[0]
        timer.lap("quality")
        t_view = q_view if t_spec == q_spec else self.model_view(image, report, t_spec)
        # The view and its mirror image in one batch: an answer that flips is no answer.
        # Preprocessing commutes with the mirror, so the tensor is made once and mirrored.
        view = to_tensor(t_view, t_spec)
        both = np.stack([view, view[:, :, ::-1]])
        triage, mirrored = self.triage_net.predict(both)[:2]
        timer.lap("triage")
        return self._decide(
            report=report,
            quality=quality,
            triage=triage,
            mirrored=mirrored,
            timer=timer,
            ident=ident,
            views=(q_view, t_view),
        )

    @staticmethod
    def model_view(image: np.ndarray, report: QualityReport, spec: PreprocessSpec) -> np.ndarray:
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
        *,
        report: QualityReport,
        quality: Prediction,
        triage: Prediction,
        mirrored: Prediction,
        timer: _Timer,
        ident: ScanIdentity,
        views: tuple[np.ndarray, np.ndarray],
    ) -> ScanOutcome:
        qm = self.quality_net.manifest
        p_reject = quality.prob(REJECT_LABEL, qm.labels)
        measures = dict(report.measures)
        measures["quality_net_p_reject"] = p_reject
        p_view, p_mirrored = self.policy.probability(triage), self.policy.probability(mirrored)
        p = self.policy.referable_probability(triage, mirrored)  # what the verdict reads
        measures["triage_p_referable_view"] = p_view
        measures["triage_p_referable_mirrored"] = p_mirrored
        # how far mirroring moves the answer: a label-free drift feature for `edgeward monitor`
        measures["triage_mirror_log_odds_gap"] = log_odds_gap(p_view, p_mirrored)
        evidence = rules.Evidence(
            rejects=tuple(rules.Note(f.code, f.message) for f in report.rejects),
            warnings=tuple(rules.Note(f.code, f.message) for f in report.warnings),
            p_reject=p_reject,
            reject_threshold=self.reject_threshold,
            ood_codes=(),
            p_referable=p,
            clear=self.policy.clear,
            refer=self.policy.refer,
            p_referable_mirrored=p_mirrored,
            p_referable_view=p_view,
            mirror_gap_limit=self.policy.mirror_gap,
        )
        if not (report.rejects or rules.quality_fails(p_reject, self.reject_threshold)):
            # Past the gate only: a scan that gets a retake needs no OOD opinion.
            ood = guard(
                {
                    "quality": (self.ood_refs["quality"], quality),
                    "triage": (self.ood_refs["triage"], triage),
                }
            )
            measures.update(ood.scores)
            evidence = dataclasses.replace(evidence, ood_codes=tuple(s.code for s in ood.signals))
        timer.lap("ood")
        judgement = rules.judge(evidence)  # the cloud's copy is made after it is recorded
        # Image statistics on each model's view, as the reference kept at training time.
        monitoring = {
            "quality": {
                "confidence": float(quality.probabilities.max()),
                "score": p_reject,
                "prediction": int(rules.quality_fails(p_reject, self.reject_threshold)),
                "features": feature_summary(views[0], quality.features, measures),
            }
        }
        if judgement.triaged:  # triage only shapes verdicts past the gate
            monitoring["triage"] = {
                "confidence": max(p, 1.0 - p),  # of the score read, as the build's reference
                "score": p,
                "prediction": int(rules.refers(p, self.policy.refer)),
                "features": feature_summary(views[1], triage.features, measures),
            }
        return ScanOutcome(
            verdict=judgement.verdict,
            reasons=list(judgement.reasons),
            codes=list(judgement.codes),
            confidence=judgement.confidence,
            timings_ms=timer.done(),
            model_versions=dict(self.model_versions),
            gradable=judgement.gradable,
            flags=ident.flags,
            laterality=ident.laterality,
            patient_id=ident.patient_id,
            referable_probability=p if judgement.triaged else None,
            measures={k: round(float(v), 5) for k, v in measures.items()},
            monitoring=monitoring,
        )

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
