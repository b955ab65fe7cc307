"""The coordinator as a Ray Serve deployment; the MQTT bridge calls `ingest` and `tick`.

The topology is read from `<data_dir>/traffic-topology.json` (written from the network file
by the twin or an operator); without it the cloud runs without traffic coordination.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import serve

from cloud.traffic.service import CoordinatorCore, Outgoing
from cloud.traffic.topology import NetworkTopology
from shared.config import CloudConfig

log = logging.getLogger(__name__)

TOPOLOGY_FILE = "traffic-topology.json"


@serve.deployment(name="TrafficCoordinator", num_replicas=1, ray_actor_options={"num_cpus": 0})
class TrafficCoordinator:
    """One replica: the coordinator holds the network's latest counts in memory."""

    def __init__(self, topology: dict[str, Any]) -> None:
        self.core = CoordinatorCore(NetworkTopology.from_dict(topology))

    async def ingest(self, topic: str, payload: bytes) -> Outgoing:
        return self.core.ingest(topic, payload)

    async def tick(self, now: float) -> Outgoing:
        return self.core.tick(now)


def build_deployment(config: CloudConfig) -> Any | None:
    """The bound deployment, or None (logged) when no topology has been provided."""
    path = Path(config.data_dir) / TOPOLOGY_FILE
    if not path.is_file():
        log.info("no traffic topology at %s: traffic coordination is off", path)
        return None
    return TrafficCoordinator.bind(NetworkTopology.load(path).to_dict())  # type: ignore[attr-defined]
