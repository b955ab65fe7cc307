"""ONNX Runtime with the TensorRT execution provider; built engines are cached on disk.

The first session on a new GPU/TensorRT version builds engines (minutes on a Jetson); later
starts load them from `trt_engine_cache_path`. Nodes TensorRT cannot take fall to CUDA, then CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.backends.onnx_runtime import OrtBackend

DEFAULT_CACHE = Path("var/trt-cache")
MAX_BATCH = 16


class OnnxTensorrtBackend(OrtBackend):
    kind = "onnx-tensorrt"
    provider = "TensorrtExecutionProvider"
    device_id = 0
    fp16 = True
    max_batch = MAX_BATCH

    def engine_cache_dir(self) -> Path:
        """One folder per model version: a new version never picks up a stale engine."""
        base = self.cache_dir or DEFAULT_CACHE
        manifest = self.model.manifest
        path = base / f"{manifest.name}-{manifest.version}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def provider_list(self) -> list[Any]:
        cache = self.engine_cache_dir()
        shape = "x".join(str(int(d)) for d in self.model.manifest.input_shape[1:])
        name = self.input_name
        trt_options = {
            "device_id": self.device_id,
            "trt_fp16_enable": self.fp16,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
            "trt_max_workspace_size": 1 << 30,
            # One profile covering every batch size we send, so a new size never rebuilds.
            "trt_profile_min_shapes": f"{name}:1x{shape}",
            "trt_profile_opt_shapes": f"{name}:1x{shape}",
            "trt_profile_max_shapes": f"{name}:{MAX_BATCH}x{shape}",
        }
        cuda_options = {"device_id": self.device_id}
        return [
            ("TensorrtExecutionProvider", trt_options),
            ("CUDAExecutionProvider", cuda_options),
            "CPUExecutionProvider",
        ]
