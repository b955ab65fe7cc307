"""Calibration: what the factory fits lowers ECE, and every serving path applies the same record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cloud.grading import GraderCore
from edge.backends import ServedModel
from models.architectures import WithFeatures, build_architecture
from models.calibrate import fit_calibration, fit_temperature
from models.export import export_onnx
from models.metrics import ece, ece_noise_floor
from models.register import register_model
from shared.errors import ModelRefusedError
from shared.preprocess import PreprocessSpec, preprocess
from shared.probabilities import softmax
from shared.registry import Manifest, Registry
from shared.registry.calibration import calibrated_probabilities
from sim.fundus.generator import generate_sample

torch.set_num_threads(2)

SCALE, BIAS = [0.5, 2.0, 1.0], [0.3, -0.4, 0.1]
VECTOR: dict[str, object] = {"kind": "vector_scaling", "scale": SCALE, "bias": BIAS}


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true probabilities need a different scale and bias per class."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 2.0, (n, 5))
    p = softmax(true_logits)
    labels = np.array([rng.choice(5, p=row) for row in p])
    # what a net might output: grades 0/1 overconfident, 3/4 underconfident, shifted
    scale, bias = np.array([3.0, 3.0, 1.0, 0.4, 0.4]), np.array([0.5, -0.5, 0.0, 1.0, -1.0])
    return (true_logits - bias) / scale, labels


def test_calibrated_ece_is_lower_than_raw_and_than_one_temperature_on_held_out_data() -> None:
    logits, labels = _miscalibrated(4000, seed=1)
    val, test = slice(0, 2000), slice(2000, None)
    temperature, record = fit_calibration(logits[val], labels[val])
    assert record["kind"] == "vector_scaling"  # per-class miscalibration: one T cannot fix it
    assert record["cv_ece"]["vector_scaling"] < record["cv_ece"]["temperature"]
    calibrated = calibrated_probabilities(logits[test], temperature, record)
    raw = ece(softmax(logits[test]), labels[test])
    one_t = ece(softmax(logits[test], fit_temperature(logits[val], labels[val])), labels[test])
    assert ece(calibrated, labels[test]) < min(raw, one_t)
    assert ece(calibrated, labels[test]) < 2 * ece_noise_floor(calibrated)


def test_one_temperature_is_kept_when_it_is_all_the_logits_need() -> None:
    rng = np.random.default_rng(2)
    true_logits = rng.normal(0, 2.0, (3000, 3))
    labels = np.array([rng.choice(3, p=row) for row in softmax(true_logits)])
    temperature, record = fit_calibration(true_logits * 2.5, labels)
    assert record["kind"] == "temperature"
    assert temperature == pytest.approx(2.5, rel=0.1)


def test_vector_scaling_is_softmax_of_scaled_and_shifted_logits() -> None:
    logits = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 3.0]])
    expected = softmax(logits * np.array(SCALE) + np.array(BIAS))
    got = calibrated_probabilities(logits, 1.0, VECTOR)
    assert np.allclose(got, expected)
    assert np.allclose(calibrated_probabilities(logits, 2.0, {}), softmax(logits, 2.0))


def test_an_unknown_calibration_kind_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelRefusedError, match="calibration kind 'isotonic' is unknown"):
        calibrated_probabilities(np.zeros((1, 3)), 1.0, {"kind": "isotonic"})
    reg, _ = _registered_edge_net(tmp_path, {"kind": "isotonic"})
    with pytest.raises(ModelRefusedError, match=r"kind 'isotonic' is unknown.*rebuild the model"):
        reg.load("tiny", "1")
    bad = {**VECTOR, "bias": [0.0, 1.0]}
    with pytest.raises(ModelRefusedError, match="'bias' as 3 numbers"):
        calibrated_probabilities(np.zeros((1, 3)), 1.0, bad)


def _registered_edge_net(
    tmp_path: Path, calibration: dict[str, object]
) -> tuple[Registry, torch.nn.Module]:
    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "widths": [8, 16, 32]}
    net = build_architecture("edge_net", kwargs).eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    parity = export_onnx(
        WithFeatures(net),
        torch.randn(8, 3, 64, 64),
        tmp_path / "model.onnx",
        ["logits", "features"],
    )
    reg = Registry(tmp_path / "reg")
    m = register_model(
        reg,
        "tiny",
        "quality",
        {"onnx": tmp_path / "model.onnx", "pytorch": tmp_path / "model.pt"},
        {
            "preprocess": PreprocessSpec(size=64),
            "input_shape": ["batch", 3, 64, 64],
            "labels": ["good", "usable", "reject"],
            "calibration": calibration,
            "thresholds": {"reject": 0.5},
            "operating_point": {"criterion": "test"},
            "metrics": {"accuracy": 0.5},
            "data_snapshot": {"id": "abc"},
            "parity": parity,
            "extra": {"architecture": {"name": "edge_net", "kwargs": kwargs}},
        },
    )
    if calibration.get("kind") != "isotonic":
        reg.set_stage("tiny", m.version, "champion", reason="test")
    return reg, net


def test_edge_serving_applies_the_manifests_vector_scaling(tmp_path: Path) -> None:
    reg, net = _registered_edge_net(tmp_path, VECTOR)
    served = ServedModel(reg, "tiny", backend="onnx-cpu")
    try:
        x = np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype(np.float32)
        preds = served.predict(x)
    finally:
        served.close()
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
    expected = softmax(logits * np.array(SCALE) + np.array(BIAS))
    got = np.stack([p.probabilities for p in preds])
    assert np.allclose(got, expected, atol=1e-4)
    assert not np.allclose(got, softmax(logits), atol=1e-2)  # the record changed something


def test_cloud_grader_applies_the_manifests_vector_scaling() -> None:
    torch.manual_seed(0)
    kwargs = {"num_classes": 5, "widths": [8, 16, 24, 32]}
    net = build_architecture("resnet_grader", kwargs).eval()
    scale, bias = [2.0, 0.5, 1.0, 3.0, 1.5], [1.0, 0.0, -1.0, 0.0, 0.0]
    record = {"kind": "vector_scaling", "scale": scale, "bias": bias}
    spec = PreprocessSpec(size=64)
    manifest = Manifest(
        name="g",
        version="1",
        task="grader",
        created_at="2026-01-01T00:00:00+00:00",
        preprocess=spec,
        preprocess_hash=spec.content_hash(),
        input_shape=["batch", 3, 64, 64],
        labels=[f"grade{i}" for i in range(5)],
        calibration=record,
    )
    core = GraderCore(net, manifest, torch_threads=2)
    try:
        image = generate_sample(7, 0, size=256, grade=3, defect_rate=0.0).image_bgr
        graded = core.grade([image], explain=False)[0]
    finally:
        core.close()
    with torch.no_grad():
        logits = net(torch.from_numpy(preprocess(image, spec)[None])).numpy()
    expected = softmax(logits * np.array(scale) + np.array(bias))[0]
    assert np.allclose(graded.probabilities, expected, atol=1e-5)
    with pytest.raises(ModelRefusedError, match="kind 'platt' is unknown"):
        GraderCore(net, manifest.model_copy(update={"calibration": {"kind": "platt"}}))
