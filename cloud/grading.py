"""One replica's grader: a batch of decoded scans -> grade probabilities and a Grad-CAM each.

Plain Python + torch, no Ray, so it is tested and benchmarked in-process; the Serve deployment in
`cloud/grader.py` wraps it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cloud.decision import REFERABLE_FROM_GRADE
from cloud.explain import HotRegion, hot_regions, overlay_png, view_geometry
from shared.preprocess import resize_for_model, to_tensor
from shared.registry import Manifest

if TYPE_CHECKING:
    import torch


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
    """A loaded grader with its one GradCAM object (it keeps per-call state: one call at a time).

    The CAM's hooks are registered for each explained call and released after it.
    """

    def __init__(self, model: torch.nn.Module, manifest: Manifest, torch_threads: int = 2) -> None:
        import torch
        from pytorch_grad_cam import GradCAM

        torch.set_num_threads(max(1, torch_threads))
        self.model = model.eval()
        self.manifest = manifest
        self.spec = manifest.preprocess
        # refuse a calibration this code cannot apply at load, not at the first scan
        manifest.probabilities(np.zeros((1, len(manifest.labels))))
        self._target_layers = [self.model.cam_target_layer()]  # type: ignore[operator]
        self.cam = GradCAM(model=self.model, target_layers=self._target_layers)
        # Hooks live only while an explanation runs (see grade), so plain forwards pay nothing.
        self.cam.activations_and_grads.release()
        self._clock = _ForwardClock(self.model)
        self._lock = threading.Lock()

    @property
    def model_version(self) -> str:
        return self.manifest.model_id

    def close(self) -> None:
        """Remove every hook this grader put on the model (idempotent)."""
        self.cam.activations_and_grads.release()
        self._clock.release()

    def __del__(self) -> None:
        # Serve's multiplexer calls this when it evicts the model from the replica.
        if hasattr(self, "cam"):
            self.close()

    def grade(
        self, images_bgr: list[np.ndarray], explain: bool = True, keep_cam: bool = False
    ) -> list[Grading]:
        import torch
        from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

        t0 = time.perf_counter()
        views = [resize_for_model(im, self.spec) for im in images_bgr]
        batch = torch.from_numpy(np.stack([to_tensor(v, self.spec) for v in views]))
        preprocess_s = time.perf_counter() - t0
        with self._lock:
            t1 = time.perf_counter()
            try:
                if explain:
                    self.cam.activations_and_grads = ActivationsAndGradients(
                        self.model, self._target_layers, None
                    )
                    # targets=None: the library takes argmax of THIS forward pass's logits and
                    # builds one ClassifierOutputTarget per image, then backpropagates once; we
                    # read the logits from cam.outputs, so there is no second forward pass.
                    cams = self.cam(input_tensor=batch, targets=None)
                    logits = self.cam.outputs.detach()
                else:
                    cams = None
                    with torch.inference_mode():
                        logits = self.model(batch)
                infer_s = self._clock.seconds
            finally:
                # Remove the hooks, drop activations/gradients and the graph: nothing is left
                # on the model or kept between calls.
                self.cam.activations_and_grads.release()
                self.cam.outputs = None
            total_s = time.perf_counter() - t1
        probs = self.manifest.probabilities(logits.float().numpy())
        explain_s = max(0.0, total_s - infer_s) if explain else 0.0
        t2 = time.perf_counter()
        results = []
        for i, (image, view) in enumerate(zip(images_bgr, views, strict=True)):
            p = [float(v) for v in probs[i]]
            png, regions, cam = b"", [], None
            if cams is not None:
                cam = cams[i]
                png = overlay_png(view, cam)
                regions = hot_regions(cam, view_geometry(image, self.spec))
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
