"""ONNX Runtime with the CUDA execution provider (discrete GPU or Jetson iGPU)."""

from __future__ import annotations

from typing import Any

from edge.backends.onnx_runtime import OrtBackend


class OnnxCudaBackend(OrtBackend):
    kind = "onnx-cuda"
    provider = "CUDAExecutionProvider"
    device_id = 0

    def provider_list(self) -> list[Any]:
        cuda_options = {
            "device_id": self.device_id,
            # Same-shaped batches every call: the exhaustive search pays off after the first run.
            "cudnn_conv_algo_search": "EXHAUSTIVE",
            "do_copy_in_default_stream": True,
            # Grow the arena only as far as asked, so several gateways can share a small GPU.
            "arena_extend_strategy": "kSameAsRequested",
        }
        return [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]
