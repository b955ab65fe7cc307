"""The cloud application: the Ingress (grader inside), the MQTT bridge, the traffic coordinator."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.config import gRPCOptions

from cloud.bridge import MqttBridge
from cloud.ingress import Ingress
from shared.config import CloudConfig, load_config
from shared.security.apikeys import required_keys

log = logging.getLogger(__name__)
APP_NAME = "edgeward-cloud"
GRPC_SERVICERS = ["shared.proto.edgeward_pb2_grpc.add_CloudGraderServicer_to_server"]
COORDINATOR_MODULE = "cloud.traffic.deployment"


def absolute(config: CloudConfig, base: Path | None = None) -> CloudConfig:
    """Paths made absolute here, where the user's working directory is known (replicas differ)."""
    root = base or Path.cwd()
    return config.model_copy(
        update={
            "data_dir": (root / config.data_dir).resolve(),
            "registry_dir": (root / config.registry_dir).resolve(),
        }
    )


def grpc_options(config: CloudConfig) -> gRPCOptions:
    return gRPCOptions(port=config.grpc_port, grpc_servicer_functions=GRPC_SERVICERS)


def http_options(config: CloudConfig, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"host": host, "port": config.http_port}


def grader_args(config: CloudConfig) -> dict[str, Any]:
    """`cloud.grader.Grader`'s arguments, built in each ingress replica."""
    g = config.grader
    return {
        "registry_dir": str(config.registry_dir),
        "default_model": g.model,
        "max_batch_size": g.max_batch_size,
        "batch_wait_timeout_s": g.batch_wait_timeout_s,
        "explain": g.explain,
        "canary": None if g.canary is None else g.canary.model_dump(),
        "prediction_log": str(config.data_dir / g.prediction_log) if g.prediction_log else "",
    }


def grader_deployment(
    config: CloudConfig, bridge: Any | None = None, insecure_dev: bool = False
) -> Any:
    """The grading deployment bound: the Ingress, with the grader in each of its replicas.

    Its replicas are the grader's: `grader.min_replicas`..`max_replicas`, one CPU each,
    autoscaled on requests in flight.
    """
    g = config.grader
    scaling: dict[str, Any]
    if g.min_replicas == g.max_replicas:
        scaling = {"num_replicas": g.min_replicas}
    else:
        scaling = {
            "num_replicas": "auto",
            "autoscaling_config": {
                "min_replicas": g.min_replicas,
                "max_replicas": g.max_replicas,
                # a full batch per replica in flight is the point to add one
                "target_ongoing_requests": g.max_batch_size,
            },
        }
    return Ingress.options(  # type: ignore[attr-defined]
        # four batches in flight per replica; more wait in the proxy, not in the replica
        max_ongoing_requests=max(32, 4 * g.max_batch_size),
        ray_actor_options={"num_cpus": 1},
        **scaling,
    ).bind(grader_args(config), config.model_dump(mode="json"), bridge, insecure_dev)


def coordinator_deployment(config: CloudConfig) -> Any | None:
    """The traffic coordinator (cloud/traffic/deployment.py) bound, if that module exists.

    It may offer `build_deployment(config)` returning a bound deployment, or a module-level Serve
    deployment object (bound without arguments).
    """
    try:
        module = importlib.import_module(COORDINATOR_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and COORDINATOR_MODULE.startswith(exc.name):
            log.info(
                "no traffic coordinator (%s not found): bridge runs clinic routes only", exc.name
            )
            return None
        raise
    builder = getattr(module, "build_deployment", None)
    if callable(builder):
        return builder(config)
    for value in vars(module).values():
        if isinstance(value, serve.Deployment):
            return value.bind()
    log.warning("%s defines no Serve deployment; traffic aggregates are not forwarded", module)
    return None


def build_app(
    config: CloudConfig, with_bridge: bool = True, insecure_dev: bool = False
) -> Application:
    """One application, the same on a laptop and on KubeRay; `serve.run` it.

    Without API keys it refuses to build (NoApiKeysError says what to set) unless
    `insecure_dev`: checked here, before anything deploys, and again in each ingress replica.
    """
    required_keys(insecure_dev)
    config = absolute(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    bridge = None
    if with_bridge:
        coordinator = coordinator_deployment(config)
        bridge = MqttBridge.bind(  # type: ignore[attr-defined]
            config.model_dump(mode="json"), coordinator
        )
    return grader_deployment(config, bridge, insecure_dev)


def app_builder(args: dict[str, str]) -> Application:
    """Entry point for `serve run` / `serve deploy` (deploy/ray/serve.yaml); args.config: a file."""
    path = args.get("config")
    config = load_config(path, CloudConfig) if path else CloudConfig()
    bridge = str(args.get("bridge", "true")).lower() not in ("0", "false", "no")
    insecure_dev = str(args.get("insecure_dev", "false")).lower() in ("1", "true", "yes")
    return build_app(config, with_bridge=bridge, insecure_dev=insecure_dev)
