"""The signalised network as plain data: what the coordinator knows without SUMO at runtime.

Built offline from the network file (see `sim.traffic.edgeward_controller.topology_of`) and
shipped as JSON. Approaches are named per junction; an out-edge that is another junction's
approach links the two, which is how a movement's downstream queue is found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import ConfigError


@dataclass(frozen=True)
class ApproachTopo:
    approach_id: str
    edge_id: str
    lanes: int = 1
    upstream_edges: tuple[str, ...] = ()  # edges feeding a short approach edge (lane splits)


@dataclass(frozen=True)
class LinkTopo:
    """One signal link (movement): from an approach, through the junction, onto `out_edge`."""

    index: int
    approach_id: str
    out_edge: str


@dataclass(frozen=True)
class PhaseTopo:
    state: str
    duration_s: float
    kind: str  # green | yellow | red


@dataclass(frozen=True)
class JunctionTopo:
    junction_id: str
    approaches: tuple[ApproachTopo, ...]
    links: tuple[LinkTopo, ...]
    phases: tuple[PhaseTopo, ...]


@dataclass
class NetworkTopology:
    junctions: dict[str, JunctionTopo]
    edge_lengths_m: dict[str, float] = field(default_factory=dict)
    edge_speeds_ms: dict[str, float] = field(default_factory=dict)

    def feeds(self) -> dict[str, tuple[str, str]]:
        """edge id -> (junction, approach) that the edge is an approach of."""
        out = {}
        for j in self.junctions.values():
            for a in j.approaches:
                for edge in (a.edge_id, *a.upstream_edges):
                    out[edge] = (j.junction_id, a.approach_id)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "junctions": [
                {
                    "junction_id": j.junction_id,
                    "approaches": [a.__dict__ for a in j.approaches],
                    "links": [ln.__dict__ for ln in j.links],
                    "phases": [p.__dict__ for p in j.phases],
                }
                for j in self.junctions.values()
            ],
            "edge_lengths_m": self.edge_lengths_m,
            "edge_speeds_ms": self.edge_speeds_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkTopology:
        try:
            junctions = {
                j["junction_id"]: JunctionTopo(
                    junction_id=j["junction_id"],
                    approaches=tuple(
                        ApproachTopo(**{**a, "upstream_edges": tuple(a.get("upstream_edges", ()))})
                        for a in j["approaches"]
                    ),
                    links=tuple(LinkTopo(**ln) for ln in j["links"]),
                    phases=tuple(PhaseTopo(**p) for p in j["phases"]),
                )
                for j in data["junctions"]
            }
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"network topology is malformed ({type(exc).__name__}: {exc}); "
                "regenerate it from the network file"
            ) from None
        return cls(
            junctions,
            dict(data.get("edge_lengths_m", {})),
            dict(data.get("edge_speeds_ms", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> NetworkTopology:
        if not path.is_file():
            raise ConfigError(f"network topology {path} does not exist")
        return cls.from_dict(json.loads(path.read_text()))
