"""Backend plugins keyed by their config type string; heavy runtimes load only when chosen."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from edge.backends.api import Backend, BackendUnavailableError
from shared.registry import VerifiedModel

log = logging.getLogger(__name__)

# type string -> "module:Class"; importing a plugin module pulls in its runtime, so only on use.
PLUGINS: dict[str, str] = {
    "onnx-cpu": "edge.backends.onnx_cpu:OnnxCpuBackend",
    "onnx-cuda": "edge.backends.onnx_cuda:OnnxCudaBackend",
    "onnx-tensorrt": "edge.backends.onnx_tensorrt:OnnxTensorrtBackend",
    "tensorrt": "edge.backends.tensorrt_native:TensorrtBackend",
}
# What `auto` tries, fastest first; onnx-cpu always exists where onnxruntime does.
AUTO_ORDER = ("tensorrt", "onnx-tensorrt", "onnx-cuda", "onnx-cpu")
BACKEND_TYPES = ("auto", *PLUGINS)


def backend_class(kind: str) -> type[Backend]:
    """The plugin class for `kind`; ValueError names the known keys for an unknown one."""
    if kind not in PLUGINS:
        raise ValueError(
            f"unknown inference backend {kind!r}; expected one of {', '.join(BACKEND_TYPES)}"
        )
    module_name, class_name = PLUGINS[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # e.g. onnxruntime missing: same answer as any unavailability
        raise BackendUnavailableError(f"{kind}: cannot import its runtime: {exc}") from exc
    cls: type[Backend] = getattr(module, class_name)
    return cls


def unavailable_reason(kind: str) -> str | None:
    """None if `kind` can run on this host, else why not."""
    try:
        return backend_class(kind).unavailable_reason()
    except BackendUnavailableError as exc:
        return str(exc)


def available_backends() -> list[str]:
    """Backends this host can run, fastest first (what `edgeward bench` iterates over)."""
    return [kind for kind in AUTO_ORDER if unavailable_reason(kind) is None]


def create_backend(
    kind: str, model: VerifiedModel, cache_dir: Path | None = None, **options: Any
) -> Backend:
    """A backend of type `kind` (or the best available for `auto`) serving `model`."""
    if kind != "auto":
        return backend_class(kind)(model, cache_dir, **options)
    skipped: list[str] = []
    for candidate in AUTO_ORDER:
        reason = unavailable_reason(candidate)
        if reason is None:
            try:
                backend = backend_class(candidate)(model, cache_dir, **options)
            except BackendUnavailableError as exc:
                reason = str(exc)
            except TypeError as exc:  # an option this runtime does not take, e.g. threads
                reason = f"{candidate}: {exc}"
            else:
                log.info(
                    "backend auto chose %s for %s (providers %s)%s",
                    candidate,
                    model.manifest.model_id,
                    backend.providers,
                    f"; skipped: {'; '.join(skipped)}" if skipped else "",
                )
                return backend
        skipped.append(f"{candidate} ({reason})")
    raise BackendUnavailableError(
        f"no inference backend can serve {model.manifest.model_id}: " + "; ".join(skipped)
    )
