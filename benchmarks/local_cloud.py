"""The local Serve cloud a cloud benchmark measures: free ports, no MQTT bridge, no API keys,
Ray's worker logs kept out of the report. Imported lazily: it starts Ray."""

from __future__ import annotations

from pathlib import Path

from cloud.runtime import LocalCloud
from shared.broker import free_port
from shared.config import CloudConfig
from shared.config.cloud import GraderSettings


def bench_cloud(workdir: Path, registry: Path, replicas: int | None = None) -> LocalCloud:
    """`with bench_cloud(tmp, registry) as cloud:`; `replicas` fixes the grading replicas."""
    grader = (
        GraderSettings()
        if replicas is None
        else GraderSettings(min_replicas=replicas, max_replicas=replicas)
    )
    config = CloudConfig(
        data_dir=workdir / "data",
        registry_dir=registry.resolve(),
        http_port=free_port(),
        grpc_port=free_port(),
        grader=grader,
    )
    return LocalCloud(config, num_cpus=2, with_bridge=False, log_to_driver=False, insecure_dev=True)
