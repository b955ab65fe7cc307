"""Inference backends: selection by type string, the ONNX contract, and clear refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edge.backends import (
    AUTO_ORDER,
    BACKEND_TYPES,
    BackendUnavailableError,
    ServedModel,
    available_backends,
    create_backend,
    unavailable_reason,
)
from edge.backends.onnx_cpu import OnnxCpuBackend
from shared.preprocess import preprocess
from shared.registry import Registry, VerifiedModel
from sim.fundus.generator import generate_sample


@pytest.fixture(scope="module")
def triage(quick_registry: Path) -> VerifiedModel:
    return Registry(quick_registry).load_serving("fundus-triage")


def batch_for(model: VerifiedModel, n: int) -> np.ndarray:
    images = [generate_sample(21, i, size=256, defect_rate=0.0).image_bgr for i in range(n)]
    return np.stack([preprocess(im, model.manifest.preprocess) for im in images])


def test_unknown_backend_key_is_a_value_error_listing_the_known_ones(
    triage: VerifiedModel,
) -> None:
    with pytest.raises(ValueError, match=r"unknown inference backend 'onnx-gpu'.*onnx-cuda"):
        create_backend("onnx-gpu", triage)


def test_auto_picks_onnx_cpu_on_this_host_and_logs_why(
    triage: VerifiedModel, caplog: pytest.LogCaptureFixture
) -> None:
    expected = available_backends()[0]
    with caplog.at_level(logging.INFO, logger="edge.backends.registry"):
        backend = create_backend("auto", triage)
    assert backend.name == expected
    assert f"backend auto chose {expected}" in caplog.text
    if unavailable_reason("onnx-cuda") is not None:  # a CPU-only host, like CI
        assert backend.name == "onnx-cpu" and backend.providers == ["CPUExecutionProvider"]
        assert "skipped: tensorrt" in caplog.text


def test_available_backends_lists_cpu_and_explains_every_missing_one() -> None:
    found = available_backends()
    assert "onnx-cpu" in found
    assert found == [k for k in AUTO_ORDER if k in found]  # fastest first
    assert set(BACKEND_TYPES) == {"auto", *AUTO_ORDER}
    for kind in AUTO_ORDER:
        reason = unavailable_reason(kind)
        assert (reason is None) == (kind in found)
        if reason is not None:
            assert len(reason) > 20  # says what is missing, not just "unavailable"


def test_gpu_backends_refuse_clearly_where_they_cannot_run(triage: VerifiedModel) -> None:
    for kind in ("onnx-cuda", "onnx-tensorrt", "tensorrt"):
        reason = unavailable_reason(kind)
        if reason is None:
            continue
        with pytest.raises(BackendUnavailableError, match=kind):
            create_backend(kind, triage)


def test_onnx_cpu_follows_the_onnx_contract(triage: VerifiedModel) -> None:
    backend = create_backend("onnx-cpu", triage)
    out = backend.run(batch_for(triage, 3))
    assert set(out) >= {"logits", "features"}
    assert out["logits"].shape == (3, len(triage.manifest.labels))
    assert out["features"].shape[0] == 3 and 1 <= out["features"].shape[1] <= 64
    assert np.isfinite(out["logits"]).all()


def test_wrong_input_shape_names_expected_and_got(triage: VerifiedModel) -> None:
    backend = create_backend("onnx-cpu", triage)
    expected = r"expected a batch of shape \(N, 3, .*got \(2, 3, 10, 10\)"
    with pytest.raises(ValueError, match=expected):
        backend.run(np.zeros((2, 3, 10, 10), np.float32))


def test_large_batches_are_split_without_changing_the_outputs(triage: VerifiedModel) -> None:
    class TwoAtATime(OnnxCpuBackend):
        max_batch = 2

    batch = batch_for(triage, 5)
    whole = create_backend("onnx-cpu", triage).run(batch)
    split = TwoAtATime(triage).run(batch)
    for name in whole:
        np.testing.assert_allclose(split[name], whole[name], rtol=1e-5, atol=1e-5)


def test_served_model_gives_calibrated_probabilities(quick_registry: Path) -> None:
    served = ServedModel(Registry(quick_registry), "fundus-triage", "onnx-cpu")
    preds = served.predict(batch_for(served.backend.model, 2))
    assert len(preds) == 2
    m = served.manifest
    for p in preds:
        assert p.probabilities.sum() == pytest.approx(1.0)
        if m.calibration.get("kind") == "vector_scaling":
            z = p.logits * np.array(m.calibration["scale"]) + np.array(m.calibration["bias"])
        else:
            z = p.logits / m.temperature
        expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        np.testing.assert_allclose(p.probabilities, expected, rtol=1e-9)
    assert served.model_id == served.manifest.model_id


def test_a_tampered_model_is_never_served(quick_registry: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "registry"
    shutil.copytree(quick_registry, copy)
    for onnx in (copy / "fundus-triage").glob("*/*.onnx"):  # every version, so none is left
        onnx.write_bytes(onnx.read_bytes()[:-16] + b"\x00" * 16)
    with pytest.raises(Exception, match="fails its checksum"):
        ServedModel(Registry(copy), "fundus-triage", "onnx-cpu")
