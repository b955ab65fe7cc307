"""The twin's network as the edge and cloud tiers see it: gateway layouts and the coordinator's
topology, read from SUMO (through TraCI) and the network file."""

from __future__ import annotations

from typing import Any

from cloud.traffic.topology import ApproachTopo, JunctionTopo, LinkTopo, NetworkTopology, PhaseTopo
from edge.traffic.layout import ApproachLayout, JunctionLayout
from sim.traffic.controllers import SimContext
from sim.traffic.network import Junction

STOP_LINE = 0.0


def layout_of(junction: Junction) -> JunctionLayout:
    return JunctionLayout(
        junction.junction_id,
        tuple(
            ApproachLayout(
                a.approach_id,
                a.link_indices,
                max(1, sum(1 for ln in a.lanes if ln.offset_m == STOP_LINE)),
            )
            for a in junction.approaches
        ),
    )


def topology_of(conn: Any, ctx: SimContext) -> NetworkTopology:
    """The network as plain data, read through TraCI (links, out-edges, lengths, programs)."""
    junctions: dict[str, JunctionTopo] = {}
    lengths: dict[str, float] = {}
    speeds: dict[str, float] = {}
    for j in ctx.junctions:
        approach_of = {i: a.approach_id for a in j.approaches for i in a.link_indices}
        links = []
        for index, group in enumerate(conn.trafficlight.getControlledLinks(j.junction_id)):
            if not group or index not in approach_of:
                continue
            out_lane = group[0][1]
            out_edge = conn.lane.getEdgeID(out_lane)
            lengths.setdefault(out_edge, float(conn.lane.getLength(out_lane)))
            speeds.setdefault(out_edge, float(conn.lane.getMaxSpeed(out_lane)))
            links.append(LinkTopo(index, approach_of[index], out_edge))
        for a in j.approaches:  # the approach's own edge (netconvert splits long ones)
            for ln in a.lanes:
                edge = ln.lane_id.rsplit("_", 1)[0]
                lengths.setdefault(edge, float(conn.lane.getLength(ln.lane_id)))
                speeds.setdefault(edge, float(conn.lane.getMaxSpeed(ln.lane_id)))
        phases = tuple(
            PhaseTopo(p.state, p.duration_s, p.kind) for p in ctx.port(j.junction_id).phases()
        )
        layout = layout_of(j)
        junctions[j.junction_id] = JunctionTopo(
            j.junction_id,
            tuple(
                ApproachTopo(
                    a.approach_id,
                    a.edge_id,
                    la.lanes,
                    tuple(
                        sorted(
                            {
                                ln.lane_id.rsplit("_", 1)[0]
                                for ln in a.lanes
                                if ln.lane_id.rsplit("_", 1)[0] != a.edge_id
                            }
                        )
                    ),
                )
                for a, la in zip(j.approaches, layout.approaches, strict=True)
            ),
            tuple(links),
            phases,
        )
    return NetworkTopology(junctions, lengths, speeds)
