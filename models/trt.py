"""TensorRT engine builds from a registered ONNX model (TensorRT 8.6-10 Python API).

tensorrt is imported lazily: it exists only on NVIDIA machines (Jetson, GPU servers).
The engine is stored beside the model's ONNX file as another checksummed artifact, carrying
the TensorRT version and GPU name in its meta: an engine only runs on the TensorRT version and
GPU architecture that built it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from models.export import INPUT_NAME
from shared.errors import EdgewardError
from shared.registry import Manifest, Registry, artifact_for


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EdgewardError(
            f"TensorRT is not installed here ({exc}); TensorRT engines are built on the NVIDIA "
            "device that will run them: install the `gpu` extra (pip install '.[gpu]') or use "
            "JetPack's tensorrt, then run `edgeward models trt` again"
        ) from None
    return trt


def gpu_name() -> str:
    """Name of GPU 0 as nvidia-smi reports it (the engine is tied to this architecture)."""
    if shutil.which("nvidia-smi") is None:
        return "unknown (nvidia-smi not found)"
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    image_size: int,
    *,
    fp16: bool,
    max_batch: int = 16,
    workspace_mib: int = 1024,
) -> dict[str, Any]:
    """Parse the ONNX file, build a serialized engine with a dynamic-batch profile, save it."""
    trt = _tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        # required before TensorRT 10, deprecated (always on) from 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgewardError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise EdgewardError(
                f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks "
                "only); export an fp16 ONNX model or build without --fp16"
            )
        config.set_flag(trt.BuilderFlag.FP16)

    profile = builder.create_optimization_profile()
    shape = (3, image_size, image_size)
    opt = max(1, min(max_batch, 8))
    profile.set_shape(INPUT_NAME, (1, *shape), (opt, *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgewardError(
            f"TensorRT failed to build an engine from {onnx_path}; run with -v to see its log"
        )
    engine_path.write_bytes(bytes(serialized))

    # prove the engine loads on this device before registering it
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise EdgewardError(f"TensorRT built {engine_path} but cannot deserialize it")
    return {
        "tensorrt_version": str(trt.__version__),
        "gpu": gpu_name(),
        "precision": "fp16" if fp16 else "fp32",
        "profile": {"min": 1, "opt": opt, "max": max_batch},
        "input": INPUT_NAME,
    }


def build_engine_for(
    registry: Registry,
    name: str,
    version: str | None,
    *,
    fp16: bool,
    max_batch: int = 16,
    workspace_mib: int = 1024,
) -> Manifest:
    """Build an engine for a registered version (default: champion) and add it beside the ONNX.

    The engine becomes artifact `trt_fp16` (or `trt_fp32`) of the same version, checksummed
    like every other artifact; a gateway whose TensorRT or GPU differs from the meta falls back
    to the ONNX file.
    """
    verified = registry.load(name, version)
    manifest = verified.manifest
    size = int(manifest.input_shape[-1])
    kind = "trt_fp16" if fp16 else "trt_fp32"
    engine_path = verified.directory / f"model.{kind}.engine"
    tmp = engine_path.with_suffix(".partial")
    try:
        meta = build_engine(
            verified.path("onnx"),
            tmp,
            size,
            fp16=fp16,
            max_batch=max_batch,
            workspace_mib=workspace_mib,
        )
        tmp.replace(engine_path)
    finally:
        tmp.unlink(missing_ok=True)
    meta["built_from"] = verified.path("onnx").name
    # re-read: the stage may have changed while the engine was building
    current = registry.manifest(manifest.name, manifest.version)
    artifacts = {**current.artifacts, kind: artifact_for(engine_path, verified.directory, **meta)}
    updated = current.model_copy(update={"artifacts": artifacts})
    registry.save(updated)
    return updated
