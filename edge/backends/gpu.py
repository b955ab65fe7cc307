"""Cheap host probes: is there an NVIDIA GPU, and which ONNX Runtime providers are built in."""

from __future__ import annotations

import functools
import glob
import importlib.util
import os


@functools.cache
def nvidia_gpu_reason() -> str | None:
    """None if an NVIDIA GPU device node exists (desktop driver or Jetson), else why not."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "CUDA_VISIBLE_DEVICES hides every GPU"
    # /dev/nvidia0.. on discrete GPUs; /dev/nvhost-* (nvgpu / nvmap) on Jetson modules.
    if (
        glob.glob("/dev/nvidia[0-9]*")
        or glob.glob("/dev/nvhost-ctrl-gpu")
        or glob.glob("/dev/nvgpu/igpu0")
    ):
        return None
    return "no NVIDIA GPU device (/dev/nvidia0 or Jetson /dev/nvhost-ctrl-gpu) on this host"


def ort_providers() -> list[str]:
    """Execution providers compiled into the installed onnxruntime ([] when it is missing)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime as ort

    return list(ort.get_available_providers())


def ort_provider_reason(provider: str) -> str | None:
    """None if `provider` can run here: compiled into onnxruntime and, for GPU ones, a GPU."""
    providers = ort_providers()
    if not providers:
        return "onnxruntime is not installed (pip install onnxruntime, or the Jetson wheel)"
    if provider not in providers:
        return (
            f"onnxruntime {_ort_version()} has no {provider} (it has {', '.join(providers)}); "
            "install onnxruntime-gpu"
        )
    if provider != "CPUExecutionProvider":
        return nvidia_gpu_reason()
    return None


def _ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)
