"""int8 static (QDQ) quantisation of the edge nets with onnxruntime.quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from models.export import INPUT_NAME


class _Batches(CalibrationDataReader):
    def __init__(self, inputs: np.ndarray, batch: int = 16) -> None:
        self._it = iter([inputs[i : i + batch] for i in range(0, len(inputs), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self._it, None)
        return None if chunk is None else {INPUT_NAME: chunk.astype(np.float32)}


def quantize_int8(onnx_path: Path, out_path: Path, calibration: np.ndarray) -> Path:
    """Write an int8 QDQ model calibrated on `calibration` (preprocessed images, N x 3 x S x S).

    Static rather than dynamic quantisation: dynamic quantises weights only of MatMul/Gemm,
    which leaves a CNN's convolutions in float and gains nothing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    return out_path


def run_onnx(onnx_path: Path, inputs: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """All outputs of an ONNX model over `inputs`, by output name (CPU)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i in range(0, len(inputs), batch):
        outs = session.run(names, {INPUT_NAME: inputs[i : i + batch].astype(np.float32)})
        for n, o in zip(names, outs, strict=True):
            parts[n].append(o)
    return {n: np.concatenate(v) for n, v in parts.items()}
