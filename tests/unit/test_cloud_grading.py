"""The grader core in-process: ONNX forward, closed-form CAM equal to pytorch-grad-cam, fallback."""

from __future__ import annotations

import shutil
import tempfile

import cv2
import numpy as np
import pytest
import torch

from cloud.explain import (
    ViewGeometry,
    hot_regions,
    mass_on_mask,
    model_view,
    to_model_view,
    view_geometry,
)
from cloud.grader import load_core
from cloud.grading import GraderCore
from models.architectures import ResNetGrader
from shared.errors import ModelRefusedError
from shared.preprocess import PreprocessSpec
from shared.registry import Manifest, Registry
from sim.fundus.generator import generate_sample


@pytest.fixture(scope="module")
def core(quick_registry):
    c = load_core(quick_registry, "", "fundus-grader")
    yield c
    c.close()


@pytest.fixture(scope="module")
def grade4_scans():
    return [generate_sample(123, i, size=384, grade=4, defect_rate=0.0) for i in range(4)]


def test_explained_batch_runs_no_pytorch_pass_and_matches_plain_inference(core, grade4_scans):
    assert core.runtime == "onnx-cpu"
    assert core.explainer == "closed-form"
    calls = []
    handle = core.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        images = [s.image_bgr for s in grade4_scans]
        explained = core.grade(images, explain=True)
        plain = core.grade(images, explain=False)
    finally:
        handle.remove()
    assert calls == []  # logits and the CAM both came from the ONNX Runtime pass
    for e, p in zip(explained, plain, strict=True):
        assert np.allclose(e.probabilities, p.probabilities, atol=1e-5)
        assert abs(sum(e.probabilities) - 1) < 1e-5
        assert e.referable_probability == pytest.approx(sum(e.probabilities[2:]))
        assert e.heatmap_png and not p.heatmap_png
        side = core.spec.size
        overlay = cv2.imdecode(np.frombuffer(e.heatmap_png, np.uint8), 1)
        assert overlay is not None and overlay.shape[:2] == (side, side)


def _gradcam_oracle(model: torch.nn.Module, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pytorch-grad-cam itself, through its public lifecycle: (logits, CAMs)."""
    from pytorch_grad_cam import GradCAM

    with GradCAM(model=model, target_layers=[model.cam_target_layer()]) as cam:  # type: ignore[operator]
        cams = cam(input_tensor=torch.from_numpy(batch), targets=None)
        logits = cam.outputs.detach().numpy()
    return logits, cams


def test_closed_form_cam_equals_pytorch_grad_cam_on_the_built_grader(core, grade4_scans):
    from shared.preprocess import preprocess

    images = [s.image_bgr for s in grade4_scans] + [
        generate_sample(5, i, size=384, grade=i % 5, defect_rate=0.0).image_bgr for i in range(4)
    ]
    batch = np.stack([preprocess(im, core.spec) for im in images]).astype(np.float32)
    logits, want = _gradcam_oracle(core.model, batch)
    got = core.grade(images, explain=True, keep_cam=True)
    assert [g.grade for g in got] == list(np.argmax(core.manifest.probabilities(logits), 1))
    for g, w in zip(got, want, strict=True):
        assert g.cam is not None and g.cam.shape == w.shape
        assert np.abs(g.cam - w).max() < 1e-3


class _SquaredPoolGrader(ResNetGrader):
    """A head the closed form does not cover: squared pooled features before the linear layer."""

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1)
        return self.head(features**2), features


def _manifest(size: int) -> Manifest:
    spec = PreprocessSpec(size=size)
    return Manifest(
        name="g",
        version="1",
        task="grader",
        created_at="2026-01-01T00:00:00+00:00",
        preprocess=spec,
        preprocess_hash=spec.content_hash(),
        input_shape=["batch", 3, size, size],
        labels=[f"grade{i}" for i in range(5)],
    )


def test_head_outside_the_closed_form_falls_back_to_pytorch_grad_cam(grade4_scans):
    from shared.preprocess import preprocess

    torch.manual_seed(0)
    net = _SquaredPoolGrader(num_classes=5, widths=(8, 8, 8, 8)).eval()
    core = GraderCore(net, _manifest(64))
    try:
        assert core.runtime == "onnx-cpu"  # plain grades still run on ONNX Runtime
        assert core.explainer == "pytorch-grad-cam"
        images = [s.image_bgr for s in grade4_scans[:2]]
        got = core.grade(images, explain=True, keep_cam=True)
        target = net.cam_target_layer()
        assert not target._forward_hooks  # the library's hooks left with its `with` block
    finally:
        core.close()
    batch = np.stack([preprocess(im, core.spec) for im in images]).astype(np.float32)
    _, want = _gradcam_oracle(net, batch)
    for g, w in zip(got, want, strict=True):
        assert g.cam is not None and np.abs(g.cam - w).max() < 1e-4


def test_torch_runtime_is_the_pytorch_grad_cam_path_with_hooks_only_while_it_runs(
    quick_registry, grade4_scans
):
    c = load_core(quick_registry, "", "fundus-grader", runtime="torch")
    assert (c.runtime, c.explainer) == ("torch", "pytorch-grad-cam")
    target = c.model.cam_target_layer()  # type: ignore[operator]
    seen: list[int] = []
    probe = c.model.register_forward_hook(lambda *_: seen.append(len(target._forward_hooks)))
    c.grade([grade4_scans[0].image_bgr], explain=True)
    probe.remove()
    assert seen == [2]  # activation + gradient hooks during the explained forward pass
    assert not target._forward_hooks  # released right after
    c.close()
    assert not c.model._forward_hooks and not c.model._forward_pre_hooks


def test_unknown_runtime_is_refused_with_the_choices(quick_registry):
    with pytest.raises(ValueError, match=r"grader runtime 'tflite' is unknown; choose one of auto"):
        load_core(quick_registry, "", "fundus-grader", runtime="tflite")


def test_cam_mass_concentrates_on_the_lesions_the_generator_drew(core, grade4_scans):
    ratios = []
    for s in grade4_scans:
        g = core.grade([s.image_bgr], explain=True, keep_cam=True)[0]
        geo = view_geometry(s.image_bgr, core.spec)
        lesions = cv2.dilate(s.lesion_mask.astype(np.uint8), np.ones((11, 11), np.uint8))
        on_view = to_model_view(lesions.astype(np.float32), geo, core.spec.size) > 0.5
        fov = s.image_bgr.max(axis=2) > core.spec.fov_threshold
        fov_view = to_model_view(fov.astype(np.float32), geo, core.spec.size) > 0.5
        ratios.append(mass_on_mask(g.cam, on_view, fov_view))
    print(f"CAM mass on dilated lesions / lesion area share (1.0 = chance): {ratios}")
    assert float(np.mean(ratios)) > 1.0


def test_hot_regions_are_boxes_in_original_scan_pixels():
    cam = np.zeros((224, 224), np.float32)
    cam[100:120, 50:70] = 1.0  # a hot square in the model's view
    geo = ViewGeometry(x0=200, y0=100, sx=4.0, sy=4.0, width=1200, height=1100)
    (region,) = hot_regions(cam, geo)
    assert (region.x, region.y, region.width, region.height) == (400, 500, 80, 80)
    assert region.score == pytest.approx(1.0)


def test_model_view_is_the_shared_preprocessing_with_its_geometry(core, grade4_scans):
    from shared.preprocess import resize_for_model

    for image in (
        cv2.copyMakeBorder(grade4_scans[0].image_bgr, 40, 0, 120, 0, cv2.BORDER_CONSTANT),
        cv2.cvtColor(grade4_scans[1].image_bgr, cv2.COLOR_BGR2GRAY),
        np.zeros((300, 400, 3), np.uint8),  # no field of view: the whole frame, resized
    ):
        view, geometry = model_view(image, core.spec)
        assert np.array_equal(view, resize_for_model(image, core.spec))
        assert geometry == view_geometry(image, core.spec)


def test_view_geometry_matches_the_shared_preprocessing(core, grade4_scans):
    image = cv2.copyMakeBorder(grade4_scans[0].image_bgr, 40, 0, 120, 0, cv2.BORDER_CONSTANT)
    geo = view_geometry(image, core.spec)
    from shared.preprocess import resize_for_model

    expected = resize_for_model(image, core.spec).astype(np.float32)
    mapped = to_model_view(image.astype(np.float32), geo, core.spec.size)
    assert np.abs(mapped - expected).mean() < 6  # same crop; interpolation differs slightly


def test_corrupt_champion_is_refused_and_the_previous_champion_serves(quick_registry, tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(quick_registry, root)
    reg = Registry(root)
    v1 = reg.champion("fundus-grader")
    assert v1 is not None
    new = reg.next_version("fundus-grader")
    shutil.copytree(reg.version_dir("fundus-grader", v1.version), root / "fundus-grader" / new)
    reg.save(v1.model_copy(update={"version": new, "stage": "candidate", "history": []}))
    reg.set_stage("fundus-grader", new, "champion", "test")
    weights = root / "fundus-grader" / new / v1.artifacts["pytorch"].path
    state = torch.load(weights, weights_only=True)
    next(iter(state.values())).add_(1.0)  # a silently corrupted weight file
    torch.save(state, weights)
    with pytest.raises(ModelRefusedError, match="fails its checksum"):
        load_core(root, f"fundus-grader:{new}", "fundus-grader")
    served = load_core(root, "", "fundus-grader")
    assert served.model_version == f"fundus-grader:{v1.version}"
    served.close()


def test_the_exported_graph_leaves_no_file_behind_once_the_runtime_holds_it(
    quick_registry, grade4_scans, tmp_path, monkeypatch
):
    # a replica Serve kills is never closed: nothing it exported may stay in the temp dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fresh = load_core(quick_registry, "", "fundus-grader")
    try:
        assert fresh.runtime == "onnx-cpu"
        assert list(tmp_path.iterdir()) == []
        (graded,) = fresh.grade([grade4_scans[0].image_bgr], explain=True)
        assert graded.probabilities and graded.heatmap_png  # it still grades and explains
    finally:
        fresh.close()
