"""One replica's grader: a batch of decoded scans -> grade probabilities and a Grad-CAM each.

The forward pass runs on an edge backend (ONNX Runtime by default, `cloud/forward.py`) and, for a
GAP + linear head, Grad-CAM comes in closed form from that same pass (`cloud/cam.py`): no
PyTorch pass at all. Other heads, or `runtime="torch"`, use PyTorch and pytorch-grad-cam.
Plain Python, no Ray, so it is tested and benchmarked in-process; `cloud/grader.py` wraps it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cloud.cam import LinearHead, TorchGradCam, cam_from_activations, linear_head
from cloud.explain import HotRegion, hot_regions, model_view, overlay_png
from shared.decision import REFERABLE_FROM_GRADE
from shared.preprocess import to_tensor
from shared.registry import Manifest

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "onnx-cpu", "onnx-cuda", "onnx-tensorrt", "torch")

if TYPE_CHECKING:
    import torch

    from cloud.forward import OnnxGraderForward


@dataclass(frozen=True)
class Grading:
    """What the grader says about one scan."""

    probabilities: list[float]
    referable_probability: float
    grade: int
    model_version: str
    thresholds: dict[str, float] = field(default_factory=dict)
    heatmap_png: bytes = b""
    regions: list[HotRegion] = field(default_factory=list)
    cam: np.ndarray | None = None  # raw CAM on the model's view, only when asked (tests, benches)
    timings_s: dict[str, float] = field(default_factory=dict)


class _ForwardClock:
    """Times the model's forward pass from inside, so explain time excludes it."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.started = 0.0
        self.seconds = 0.0
        self._handles = [
            model.register_forward_pre_hook(self._pre),
            model.register_forward_hook(self._post),
        ]

    def _pre(self, *_: Any) -> None:
        self.started = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.seconds = time.perf_counter() - self.started

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class GraderCore:
    """A loaded grader: one call at a time (a lock), no hooks or graphs kept between calls.

    `runtime`: "auto" (the fastest edge backend here, ONNX Runtime CPU at least), an edge
    backend kind, or "torch" (PyTorch eager, the path before the ONNX one). "auto" falls back to
    torch with a warning when the graph cannot be exported; a named backend refuses instead.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        manifest: Manifest,
        torch_threads: int = 2,
        runtime: str = "auto",
    ) -> None:
        import torch

        if runtime not in RUNTIMES:
            raise ValueError(
                f"grader runtime {runtime!r} is unknown; choose one of {', '.join(RUNTIMES)}"
            )
        torch.set_num_threads(max(1, torch_threads))
        self.model = model.eval()
        self.manifest = manifest
        self.spec = manifest.preprocess
        # refuse a calibration this code cannot apply at load, not at the first scan
        manifest.probabilities(np.zeros((1, len(manifest.labels))))
        self._torch_cam = TorchGradCam(self.model, self.model.cam_target_layer())  # type: ignore[operator]
        self._clock = _ForwardClock(self.model)
        self._lock = threading.Lock()
        self.forward: OnnxGraderForward | None = None
        self.head: LinearHead | None = None
        if runtime != "torch":
            self.forward = self._onnx_forward(runtime, torch_threads)
        if self.forward is not None:
            probe = self.forward(self.forward.example)
            self.head = linear_head(self.model, probe["logits"], probe["cam_activations"])
            if self.head is None:
                log.warning(
                    "grader %s: the head is not GAP + linear on the CAM layer, so Grad-CAM "
                    "needs pytorch-grad-cam's backward pass for explained batches",
                    manifest.model_id,
                )

    def _onnx_forward(self, runtime: str, threads: int) -> OnnxGraderForward | None:
        from cloud.forward import OnnxGraderForward
        from shared.errors import EdgewardError

        try:
            return OnnxGraderForward(self.model, self.manifest, runtime, threads)
        except (EdgewardError, ImportError, RuntimeError) as exc:
            if runtime != "auto":
                raise
            log.warning(
                "grader %s: no ONNX forward pass (%s); serving with PyTorch eager",
                self.manifest.model_id,
                exc,
            )
            return None

    @property
    def model_version(self) -> str:
        return self.manifest.model_id

    @property
    def runtime(self) -> str:
        """The backend the forward pass runs on: an edge backend kind, or "torch"."""
        return self.forward.kind if self.forward is not None else "torch"

    @property
    def explainer(self) -> str:
        """How explained batches get their CAM: "closed-form" or "pytorch-grad-cam"."""
        return "closed-form" if self.head is not None else "pytorch-grad-cam"

    def close(self) -> None:
        """Remove every hook this grader put on the model and free the runtime (idempotent)."""
        self._clock.release()
        if self.forward is not None:
            self.forward.close()

    def __del__(self) -> None:
        # Serve's multiplexer calls this when it evicts the model from the replica.
        if hasattr(self, "_clock"):
            self.close()

    def _run(self, batch: np.ndarray, explain: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
        """(logits, CAMs or None, forward seconds) for a preprocessed batch."""
        import torch

        size = (self.spec.size, self.spec.size)
        if self.forward is not None and (self.head is not None or not explain):
            t0 = time.perf_counter()
            out = self.forward(batch)
            infer_s = time.perf_counter() - t0
            logits = out["logits"]
            if not explain or self.head is None:
                return logits, None, infer_s
            classes = np.argmax(logits, axis=1)  # pytorch-grad-cam's targets=None rule
            return (
                logits,
                cam_from_activations(out["cam_activations"], self.head, classes, size),
                infer_s,
            )
        if explain:
            logits, cams = self._torch_cam(torch.from_numpy(batch))
            return logits, cams, self._clock.seconds
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).float().numpy(), None, self._clock.seconds

    def grade(
        self, images_bgr: list[np.ndarray], explain: bool = True, keep_cam: bool = False
    ) -> list[Grading]:
        t0 = time.perf_counter()
        views, geometries = zip(*(model_view(im, self.spec) for im in images_bgr), strict=True)
        batch = np.stack([to_tensor(v, self.spec) for v in views]).astype(np.float32)
        preprocess_s = time.perf_counter() - t0
        with self._lock:
            t1 = time.perf_counter()
            logits, cams, infer_s = self._run(batch, explain)
            total_s = time.perf_counter() - t1
        probs = self.manifest.probabilities(logits.astype(np.float32))
        explain_s = max(0.0, total_s - infer_s) if explain else 0.0
        t2 = time.perf_counter()
        results = []
        for i, (view, geometry) in enumerate(zip(views, geometries, strict=True)):
            p = [float(v) for v in probs[i]]
            png, regions, cam = b"", [], None
            if cams is not None:
                cam = cams[i]
                png = overlay_png(view, cam)
                regions = hot_regions(cam, geometry)
            results.append(
                Grading(
                    probabilities=p,
                    referable_probability=float(sum(p[REFERABLE_FROM_GRADE:])),
                    grade=int(np.argmax(p)),
                    model_version=self.model_version,
                    thresholds=dict(self.manifest.thresholds),
                    heatmap_png=png,
                    regions=regions,
                    cam=cam if keep_cam else None,
                    timings_s={"preprocess": preprocess_s, "infer": infer_s, "explain": explain_s},
                )
            )
        render_s = time.perf_counter() - t2
        for r in results:
            r.timings_s["explain"] += render_s if explain else 0.0
        return results
