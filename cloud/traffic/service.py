"""The coordinator's service logic without Ray: what the Serve deployment calls."""

from __future__ import annotations

from cloud.traffic.coordinator import Coordinator, CoordinatorSettings
from cloud.traffic.topology import NetworkTopology
from shared import topics

Outgoing = list[tuple[str, bytes, bool]]


class CoordinatorCore:
    """Ray-free logic of the deployment: plans once per interval, retained, per junction."""

    def __init__(self, topology: NetworkTopology, settings: CoordinatorSettings | None = None):
        self.coordinator = Coordinator(topology, settings=settings)
        self.settings = self.coordinator.settings
        self._last_round: float | None = None

    def ingest(self, topic: str, payload: bytes) -> Outgoing:
        if not topic.endswith("/aggregate"):
            return []
        self.coordinator.ingest(payload)
        return []

    def tick(self, now: float) -> Outgoing:
        if self._last_round is not None and now - self._last_round < self.settings.interval_s:
            return []
        self._last_round = now
        return [
            (topics.traffic_plan(p.junction_id), p.encode(), True)
            for p in self.coordinator.plans(now)
        ]
