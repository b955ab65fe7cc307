"""Native TensorRT 10 engines run with pycuda: the fastest path on a Jetson.

Each calling thread gets its own CUDA context with its own engine copy, execution context,
stream and page-locked host buffers (device memory and execution contexts do not cross threads);
inputs and outputs move with async copies on that stream, and the batch size is set per call
with `set_input_shape` inside the engine's optimisation profile.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.api import Backend, BackendUnavailableError
from edge.backends.gpu import nvidia_gpu_reason
from shared.registry import VerifiedModel

ENGINE_ARTIFACTS = ("trt_fp16", "trt_fp32")  # preferred first; built by `edgeward models trt`


@dataclass
class _ThreadState:
    """Everything one thread needs to run the engine without touching another thread's state.

    Device memory belongs to the CUDA context it was allocated in, so each thread deserialises
    its own copy of the engine inside its own context (edge models are a few MB).
    """

    cuda_context: Any
    engine: Any
    exec_context: Any
    stream: Any
    host: dict[str, np.ndarray]  # page-locked, sized for the profile's largest batch
    device: dict[str, Any]


class TensorrtBackend(Backend):
    kind = "tensorrt"

    def __init__(
        self, model: VerifiedModel, cache_dir: Path | None = None, device_id: int = 0
    ) -> None:
        super().__init__(model, cache_dir)
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"{self.kind}: {reason}")
        engines = [k for k in ENGINE_ARTIFACTS if k in model.manifest.artifacts]
        if not engines:
            raise BackendUnavailableError(
                f"{self.kind}: model {model.manifest.model_id} has no TensorRT engine; build "
                f"one on this device with `edgeward models trt {model.manifest.name} --fp16`"
            )
        import pycuda.driver as cuda
        import tensorrt as trt

        self._trt = trt
        self._cuda = cuda
        cuda.init()
        self._device = cuda.Device(device_id)
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._lock = threading.Lock()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._engine_path = model.path(engines[0])
        self._plan = self._engine_path.read_bytes()  # checksum verified by the registry
        # The constructing thread's state doubles as the probe of the engine's tensors.
        state = self._state()
        engine = state.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        self.input_name = self._inputs[0]
        # Profile 0's (min, opt, max) shapes; the max batch sizes the pinned buffers.
        self.max_batch_size = int(engine.get_tensor_profile_shape(self.input_name, 0)[2][0])

    @classmethod
    def unavailable_reason(cls) -> str | None:
        needs = (("tensorrt", "the system TensorRT"), ("pycuda", "pip install pycuda"))
        for package, hint in needs:
            if importlib.util.find_spec(package) is None:
                return f"python package {package} is not installed ({hint})"
        return nvidia_gpu_reason()

    @property
    def providers(self) -> list[str]:
        return [f"TensorRT {self._trt.__version__} on {self._device.name()}"]

    def _state(self) -> _ThreadState:
        state: _ThreadState | None = getattr(self._local, "state", None)
        if state is None:
            state = self._new_state()
            self._local.state = state
            with self._lock:
                self._states.append(state)
        return state

    def _new_state(self) -> _ThreadState:
        cuda, trt = self._cuda, self._trt
        context = self._device.make_context()  # pushed: current on this thread until pop()
        try:
            engine = trt.Runtime(self._logger).deserialize_cuda_engine(self._plan)
            if engine is None:
                raise BackendUnavailableError(
                    f"{self.kind}: {self._engine_path} does not deserialise with TensorRT "
                    f"{trt.__version__} (built for another version or GPU); rebuild it here"
                )
            exec_context = engine.create_execution_context()
            stream = cuda.Stream()
            host: dict[str, np.ndarray] = {}
            device: dict[str, Any] = {}
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            first_input = next(
                n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
            )
            max_input = tuple(engine.get_tensor_profile_shape(first_input, 0)[2])
            exec_context.set_input_shape(first_input, max_input)
            for name in names:
                shape = tuple(exec_context.get_tensor_shape(name))
                dtype = trt.nptype(engine.get_tensor_dtype(name))
                host[name] = cuda.pagelocked_empty(trt.volume(shape), dtype)
                device[name] = cuda.mem_alloc(host[name].nbytes)
                exec_context.set_tensor_address(name, int(device[name]))
        except BaseException:
            context.pop()
            context.detach()
            raise
        context.pop()
        return _ThreadState(context, engine, exec_context, stream, host, device)

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if len(batch) > self.max_batch_size:
            parts = [
                self._infer(batch[i : i + self.max_batch_size])
                for i in range(0, len(batch), self.max_batch_size)
            ]
            return {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
        state = self._state()
        cuda = self._cuda
        state.cuda_context.push()
        try:
            ctx = state.exec_context
            ctx.set_input_shape(self.input_name, tuple(batch.shape))
            staged = state.host[self.input_name][: batch.size]
            staged[:] = batch.ravel().astype(staged.dtype, copy=False)
            cuda.memcpy_htod_async(state.device[self.input_name], staged, state.stream)
            if not ctx.execute_async_v3(stream_handle=state.stream.handle):
                raise RuntimeError(f"TensorRT execute_async_v3 failed for {self.model}")
            shapes = {n: tuple(ctx.get_tensor_shape(n)) for n in self._outputs}
            views = {}
            for name in self._outputs:
                view = state.host[name][: int(np.prod(shapes[name]))]
                cuda.memcpy_dtoh_async(view, state.device[name], state.stream)
                views[name] = view
            state.stream.synchronize()
        finally:
            state.cuda_context.pop()
        # Copy out of the pinned buffers: the next call on this thread overwrites them.
        return {n: views[n].reshape(shapes[n]).astype(np.float32) for n in self._outputs}

    def close(self) -> None:
        with self._lock:
            states, self._states = self._states, []
        for state in states:
            state.cuda_context.push()
            try:
                for buf in state.device.values():
                    buf.free()
                state.exec_context = None
                state.engine = None
            finally:
                state.cuda_context.pop()
                state.cuda_context.detach()
