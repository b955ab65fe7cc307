"""ONNX Runtime on the CPU: runs everywhere; the reference for the other backends."""

from __future__ import annotations

from typing import Any

from edge.backends.onnx_runtime import OrtBackend


class OnnxCpuBackend(OrtBackend):
    kind = "onnx-cpu"
    provider = "CPUExecutionProvider"

    def provider_list(self) -> list[Any]:
        return ["CPUExecutionProvider"]
