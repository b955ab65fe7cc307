"""`edgeward models trt`: a TensorRT engine beside the ONNX file (GPU only), clear error without."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from shared.cli import main
from shared.registry import Registry


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here"
)
def test_trt_without_tensorrt_says_how_to_get_it_and_changes_nothing(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(quick_registry, tmp_path / "reg")
    before = Registry(tmp_path / "reg").champion("fundus-triage")
    code = main(["models", "trt", "fundus-triage", "--fp16", "--registry", str(tmp_path / "reg")])
    err = capsys.readouterr().err
    assert code == 2
    assert "TensorRT is not installed" in err and "pip install '.[gpu]'" in err
    after = Registry(tmp_path / "reg").champion("fundus-triage")
    assert after == before


@pytest.mark.gpu
def test_trt_fp16_engine_is_registered_beside_the_onnx_with_version_and_gpu(
    quick_registry: Path, tmp_path: Path
) -> None:
    import tensorrt as trt

    shutil.copytree(quick_registry, tmp_path / "reg")
    reg = Registry(tmp_path / "reg")
    code = main(
        [
            "models",
            "trt",
            "fundus-triage",
            "--fp16",
            "--max-batch",
            "8",
            "--registry",
            str(reg.root),
        ]
    )
    assert code == 0
    verified = reg.load("fundus-triage")  # checksums include the engine now
    art = verified.manifest.artifacts["trt_fp16"]
    assert art.meta["tensorrt_version"] == trt.__version__
    assert art.meta["gpu"] and art.meta["precision"] == "fp16"
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
        verified.path("trt_fp16").read_bytes()
    )
    size = verified.manifest.preprocess.size
    lo, _opt, hi = engine.get_tensor_profile_shape("input", 0)
    assert tuple(lo) == (1, 3, size, size) and tuple(hi) == (8, 3, size, size)
