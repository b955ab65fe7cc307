"""Start and stop a local Ray + Serve running the cloud application (CLI, tests, benchmarks)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from shared.config import CloudConfig
from shared.errors import EdgewardError

log = logging.getLogger(__name__)


@dataclass
class LocalCloud:
    """An embedded Ray with the cloud app deployed; `with LocalCloud(cfg) as cloud:` cleans up."""

    config: CloudConfig
    num_cpus: int | None = None
    with_bridge: bool = True
    host: str = "127.0.0.1"
    namespace: str = "edgeward"
    ray_dir: Path | None = None
    log_to_driver: bool = True  # replica logs on this process's stderr (off for benchmarks)

    def __post_init__(self) -> None:
        self._own_dir = self.ray_dir is None
        # Unix socket paths must stay short, so not under the project directory.
        self.ray_dir = self.ray_dir or Path(tempfile.mkdtemp(prefix="edgeward-ray-", dir="/tmp"))
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

        if ray.is_initialized():
            raise EdgewardError("Ray is already running in this process; stop it first")
        started = time.monotonic()
        self._init_ray()
        try:
            serve.start(
                http_options=http_options(self.config, self.host),
                grpc_options=grpc_options(self.config),
            )
            self.handle = serve.run(
                build_app(self.config, with_bridge=self.with_bridge),
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

    def _init_ray(self, attempts: int = 3) -> None:
        """Start a private Ray node; retry when its raylet misses Ray's fixed 30 s registration.

        On a loaded host the raylet occasionally fails to register with the GCS in time (Ray gives
        up after a hard-coded 30 s); a fresh node in a fresh session dir then starts normally.
        """
        import ray

        for attempt in range(1, attempts + 1):
            try:
                ray.init(
                    address="local",  # never attach to another engineer's or another test's Ray
                    num_cpus=self.num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    namespace=self.namespace,
                    _temp_dir=str(self.ray_dir),
                    logging_level=logging.WARNING,
                    log_to_driver=self.log_to_driver,
                )
                return
            except Exception as exc:
                diagnosis = _ray_startup_logs(Path(str(self.ray_dir)))
                ray.shutdown()
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
                if self._own_dir:
                    shutil.rmtree(str(self.ray_dir), ignore_errors=True)
                    self.ray_dir = Path(tempfile.mkdtemp(prefix="edgeward-ray-", dir="/tmp"))
                time.sleep(2.0 * attempt)

    def stop(self) -> None:
        import ray
        from ray import serve

        if ray.is_initialized():
            try:
                serve.shutdown()
            finally:
                ray.shutdown()
        if self._own_dir and self.ray_dir is not None:
            shutil.rmtree(self.ray_dir, ignore_errors=True)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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
