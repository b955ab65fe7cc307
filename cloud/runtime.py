"""Start and stop a local Ray + Serve running the cloud application (CLI, tests, benchmarks)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cloud.haproxy_ingress import ray_node_env
from shared.config import CloudConfig
from shared.errors import EdgewardError
from shared.security.apikeys import required_keys

log = logging.getLogger(__name__)


@dataclass
class LocalCloud:
    """An embedded Ray with the cloud app deployed; `with LocalCloud(cfg) as cloud:` cleans up."""

    config: CloudConfig
    num_cpus: int | None = None
    with_bridge: bool = True
    host: str = "127.0.0.1"
    namespace: str = "edgeward"
    log_to_driver: bool = True  # replica logs on this process's stderr (off for benchmarks)
    insecure_dev: bool = False  # no API keys, every HTTP route open: development only
    # called right after ray.init, which installs Ray's own signal handlers in this process
    on_ray_started: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.ray_dir: Path | None = None
        self.handle: Any = None

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.config.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.config.grpc_port}"

    def start(self, timeout_s: float = 180.0) -> LocalCloud:
        import ray
        from ray import serve

        from cloud.app import APP_NAME, build_app, grpc_options, http_options

        required_keys(self.insecure_dev)  # refuse an open ingress before Ray starts
        if ray.is_initialized():
            raise EdgewardError("Ray is already running in this process; stop it first")
        started = time.monotonic()
        self.ray_dir = start_private_ray(
            num_cpus=self.num_cpus or os.cpu_count() or 1,
            namespace=self.namespace,
            log_to_driver=self.log_to_driver,
            node_env=lambda ray_dir: ray_node_env(self.config.ingress, ray_dir),
        )
        if self.on_ray_started is not None:
            self.on_ray_started()
        try:
            serve.start(
                http_options=http_options(self.config, self.host),
                grpc_options=grpc_options(self.config),
            )
            self.handle = serve.run(
                build_app(
                    self.config, with_bridge=self.with_bridge, insecure_dev=self.insecure_dev
                ),
                name=APP_NAME,
                route_prefix="/",
            )
        except BaseException:
            self.stop()
            raise
        log.info(
            "cloud tier up in %.1fs: HTTP %s, gRPC %s",
            time.monotonic() - started,
            self.http_url,
            self.grpc_target,
        )
        return self

    def stop(self) -> None:
        import ray
        from ray import serve

        if ray.is_initialized():
            try:
                serve.shutdown()
            finally:
                ray.shutdown()
        if self.ray_dir is not None:
            shutil.rmtree(self.ray_dir, ignore_errors=True)
            self.ray_dir = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_private_ray(
    *,
    num_cpus: int,
    namespace: str,
    log_to_driver: bool = True,
    attempts: int = 3,
    node_env: Callable[[Path], Mapping[str, str]] | None = None,
) -> Path:
    """Start a private Ray node in a fresh temp dir, returned for the caller to remove after use.

    `node_env(ray_dir)`: environment variables the node's processes (Serve's controller among
    them) start with; this process's own environment is left as it was.

    `address="local"` never attaches to another engineer's or another test's Ray. On a loaded host
    the raylet occasionally fails to register with the GCS within Ray's hard-coded 30 s; a fresh
    node in a fresh session dir then starts normally, so that failure is retried.
    """
    import ray

    for attempt in range(1, attempts + 1):
        # Unix socket paths must stay short, so not under the project directory.
        ray_dir = Path(tempfile.mkdtemp(prefix="edgeward-ray-", dir="/tmp"))
        try:
            with _environment(node_env(ray_dir) if node_env else {}):
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    namespace=namespace,
                    _temp_dir=str(ray_dir),
                    logging_level=logging.WARNING,
                    log_to_driver=log_to_driver,
                )
            return ray_dir
        except Exception as exc:
            diagnosis = _ray_startup_logs(ray_dir)
            ray.shutdown()
            shutil.rmtree(ray_dir, ignore_errors=True)
            if attempt == attempts:
                raise EdgewardError(
                    f"Ray did not start after {attempts} attempts ({exc}). Check free memory"
                    " and /dev/shm, and that nothing else loads the CPUs."
                    f" Ray's logs:\n{diagnosis}"
                ) from exc
            log.warning(
                "Ray node start failed (%s), retrying (%d/%d); Ray's logs:\n%s",
                exc,
                attempt,
                attempts,
                diagnosis,
            )
            time.sleep(2.0 * attempt)
    raise AssertionError("unreachable")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ while the block runs (the Ray node's daemons inherit them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _ray_startup_logs(ray_dir: Path, lines: int = 15) -> str:
    """The tails of the raylet and GCS logs of the newest session under `ray_dir`."""
    logs = ray_dir / "session_latest" / "logs"
    parts = []
    for name in ("raylet.err", "raylet.out", "gcs_server.err", "gcs_server.out"):
        path = logs / name
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        if tail:
            parts.append(f"--- {path}\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no raylet/GCS logs under {logs})"
