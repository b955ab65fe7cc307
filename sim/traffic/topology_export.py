"""Write a scenario's network topology for the cloud coordinator (`--write-topology PATH`)."""

from __future__ import annotations

from pathlib import Path

from sim.traffic.controllers import SimContext


class TopologyWritten(Exception):  # noqa: N818 (a signal, not an error)
    """Raised once the file is saved: nothing needs to be simulated after that."""


class TopologyWriter:
    """A controller that only reads the network through TraCI at start and saves it."""

    name = "fixed"  # the signals keep the network's own programs meanwhile

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, ctx: SimContext) -> None:
        from sim.traffic.twin_topology import topology_of

        self.path.parent.mkdir(parents=True, exist_ok=True)
        topology_of(ctx.conn, ctx).save(self.path)
        raise TopologyWritten(str(self.path))

    def step(self, sim_time: float) -> None:
        return None

    def stop(self) -> None:
        return None
