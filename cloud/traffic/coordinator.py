"""The network coordinator: all junctions' counts in, one timing plan per junction out.

Cyclic max-pressure: each green phase gets the minimum green plus the time to clear its
critical lane, where a movement's demand is its queue per lane minus (a share of) the queue
on the approach it feeds downstream — the queue only the neighbouring gateway sees. Feeding a
congested link earns less green, so queues do not spill back across junctions.

The work per tick is vectorised over all junctions with numpy (1,000 junctions in a few ms).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import numpy as np

from cloud.traffic.platoons import Feeds, Platoons, travel_times
from cloud.traffic.topology import NetworkTopology
from shared.config.traffic import SignalSafety
from shared.errors import SchemaError
from shared.messages.base import decode
from shared.messages.traffic import PhaseGreen, SignalPlan, TrafficAggregate
from shared.traffic.demand import (
    APPROACHING_WEIGHT,
    GAP_OUT_LOAD,
    GAP_OUT_PENALTY,
    green_share,
)

log = logging.getLogger(__name__)

YELLOW_MAX_S = 6.0


CYCLE_SCALE = 1.0
SPARE_S = 1.0  # lets a phase programmed at its minimum still grow when its demand is high
BASELINE_LOAD = 1.0  # vehicles per lane added to every phase's demand, so none is zeroed


def split_greens(
    need: np.ndarray,
    fixed: np.ndarray,
    junction: np.ndarray,
    n_junctions: int,
    safety: SignalSafety,
) -> np.ndarray:
    """Share each junction's programmed green time among its phases by demand.

    The cycle keeps the program's total green (its designers sized it for the junction's
    capacity); what moves is the split: the program's own proportions (which encode the
    expected demand per phase, e.g. short left-turn phases), scaled by each phase's demand.
    """
    lo, hi = safety.min_green_s, safety.max_green_s
    fixed = np.clip(fixed, lo, hi)
    budget = np.zeros(n_junctions)
    np.add.at(budget, junction, fixed - lo)
    budget *= CYCLE_SCALE
    # the share above the minimum follows the program's own time above the minimum
    weight = (fixed - lo + SPARE_S) * (need + BASELINE_LOAD)
    total = np.zeros(n_junctions)
    np.add.at(total, junction, weight)
    share = weight / np.maximum(total[junction], 1e-9)
    return np.clip(lo + budget[junction] * share, lo, hi)


@dataclass(frozen=True)
class CoordinatorSettings:
    interval_s: float = 5.0
    plan_ttl_s: float = 15.0  # a plan is valid for three intervals: one lost plan is no outage
    stale_after_s: float = 12.0  # aggregates older than this say nothing about now
    downstream_weight: float = 0.5  # how much a downstream queue holds back the green feeding it
    smoothing: float = 0.15  # weight of the newest interval in each approach's demand average
    # Plans carry per-phase pressures and gateways run acyclic: after a short minimum green the
    # junction goes to whichever green has the most pressure, skipping the rest. In the twin's
    # 4x4 rush hour (30 min, seed 1, truth counts) 86 s mean delay against 118 for the splits.
    max_pressure: bool = True
    # The downstream camera sees only the last 60 m of the next link: its queue is a weak,
    # late spillback signal (one for one lost 2-3 s in the twin). With green extension, any
    # weight cost delay: corpus five_leg/crossings/shared_light, seeds 1-2, 10 min: 0.5 ->
    # 53/44/90 s, 0 -> 53/44/85, and grid 4x4 rush seed 1 68 -> 67 s; the downstream queue
    # still holds back the cyclic splits (`downstream_weight`).
    pressure_down_weight: float = 0.0
    gap_out_load: float = GAP_OUT_LOAD  # see shared.traffic.demand
    # Arrivals from upstream (what a junction cannot see: its camera covers the last
    # `camera_range_m`): an approach counts this times the vehicles per lane that upstream
    # greens released towards it, still out of its camera's sight, due at its stop line within
    # `arrival_horizon_s` (`cloud.traffic.platoons`), so a green is kept for, or given to, a
    # platoon on its way (a green wave without fixed offsets). 0 turns it off. Tuning seeds
    # 1-3, 10 min, truth counts, arterial_offsets (0: 26.5-26.8 s between runs): 1.0 -> 27.1,
    # 0.5 -> 26.3, 2.0 (with a relative margin) -> 27.3, horizon 10 s -> 27.2, hold-only 27.2;
    # irregular_grid 36.2 -> 38.4 (1.0), grid:4x4:rush 63.0 -> 63.8 (hold-only): no gain beyond
    # run-to-run noise on the arterial, a loss on the grids, so off.
    upstream_weight: float = 0.0
    arrival_horizon_s: float = 20.0
    # only the green being shown counts them: a green is held for a platoon about to arrive,
    # but no switch is made towards one
    arrivals_hold_only: bool = False
    camera_range_m: float = 60.0
    # Plans tell each gateway, per green, the vehicles released upstream that are due at its
    # stop lines within `hold_horizon_s` and still out of its cameras' sight, so the gateway's
    # fast gap-out (`TrafficGatewayConfig.gap_check_s`) does not end a green just before a
    # platoon arrives. Tuning seeds 1-3, 10 min, truth counts, arterial_offsets / crossings /
    # grid:4x4:rush: no fast look 26.8 / 36.2 / 63.8 s; a look every second 24.8 / 34.0 / 66.9
    # (the grid's greens ended between platoons); with the hold over 20 s 26.0 / 35.2 / 66.3,
    # 12 s 25.6 / 35.1 / 66.3, 8 s 25.2 / 34.0 / 65.0, 5 s 25.4 / 34.0 / 65.0; two empty
    # looks in a row instead of one (8 s) 26.2 / 35.4 / 63.9; the platoon's count as the
    # emptied green's priority instead of a veto (8 s) 25.2 / 34.0 / 64.3. Off with the look.
    hold_for_arrivals: bool = False
    hold_horizon_s: float = 8.0
    gap_out_penalty: float = GAP_OUT_PENALTY
    sender: str = "coordinator"


@dataclass(frozen=True)
class PlanDraft:
    """A plan before it becomes a message (the benchmark times the drafting)."""

    junction_id: str
    greens: dict[int, float]
    cycle_s: float
    pressures: dict[int, float] | None = None
    arriving: dict[int, float] | None = None  # per phase, when platoons are tracked


class Coordinator:
    """Pure Python + numpy; the Ray Serve deployment and the MQTT runner both wrap it."""

    def __init__(
        self,
        topology: NetworkTopology,
        safety: SignalSafety | None = None,
        settings: CoordinatorSettings | None = None,
    ) -> None:
        self.topology = topology
        self.safety = safety or SignalSafety()
        self.settings = settings or CoordinatorSettings()
        self._latest: dict[str, TrafficAggregate] = {}
        self._plan_seq = 0
        self._incarnation = uuid.uuid4().hex[:6]  # plan ids stay unique across restarts
        self._compile()

    # -- structure, built once ----------------------------------------------------------------

    def _compile(self) -> None:
        topo = self.topology
        feeds = topo.feeds()
        self.junction_ids = sorted(topo.junctions)
        self._junction_pos_of = {jid: n for n, jid in enumerate(self.junction_ids)}
        self._approach_index: dict[tuple[str, str], int] = {}
        lanes: list[int] = []
        owner: list[int] = []
        for jn, jid in enumerate(self.junction_ids):
            for a in topo.junctions[jid].approaches:
                self._approach_index[(jid, a.approach_id)] = len(lanes)
                lanes.append(max(1, a.lanes))
                owner.append(jn)
        self._lanes = np.asarray(lanes, dtype=np.float64)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._raw = np.full(len(lanes), np.nan)  # smoothed queue + approaching per approach
        self._snap = np.full(len(lanes), np.nan)  # the latest interval's, for the pressures
        self._reported_at = np.full(len(self.junction_ids), -np.inf)
        self._junction_pos = {jid: n for n, jid in enumerate(self.junction_ids)}
        self._junction_span = {
            jid: (
                int(np.searchsorted(self._owner, n, "left")),
                int(np.searchsorted(self._owner, n, "right")),
            )
            for n, jid in enumerate(self.junction_ids)
        }
        rows: list[tuple[str, int]] = []
        e_row: list[int] = []
        e_app: list[int] = []
        e_share: list[float] = []
        p_entry: list[int] = []
        p_down: list[int] = []
        p_weight: list[float] = []
        p_travel: list[tuple[float, float]] = []
        lost: dict[str, float] = {}
        for jid in self.junction_ids:
            j = topo.junctions[jid]
            links_of: dict[str, list[int]] = {}
            out_of = {ln.index: ln.out_edge for ln in j.links}
            for ln in j.links:
                links_of.setdefault(ln.approach_id, []).append(ln.index)
            lost[jid] = sum(
                self._fixed_duration(p.kind, p.duration_s) for p in j.phases if p.kind != "green"
            )
            for pi, phase in enumerate(j.phases):
                if phase.kind != "green":
                    continue
                r = len(rows)
                rows.append((jid, pi))
                for a in j.approaches:
                    idx = [i for i in links_of.get(a.approach_id, []) if i < len(phase.state)]
                    moving = [i for i in idx if phase.state[i] in "Gg"]
                    if not moving:
                        continue
                    share = green_share(phase.state, idx)
                    e = len(e_row)
                    e_row.append(r)
                    e_app.append(self._approach_index[(jid, a.approach_id)])
                    e_share.append(share)
                    for i in moving:
                        target = feeds.get(out_of.get(i, ""))
                        if target is not None and target in self._approach_index:
                            p_entry.append(e)
                            p_down.append(self._approach_index[target])
                            p_weight.append(1.0 / len(moving))
                            p_travel.append(self._travel(out_of[i], target))
        self._rows = rows
        self._row_phase = np.asarray([p for _, p in rows], dtype=np.int64)
        self._row_junction = np.asarray(
            [self._junction_pos_of[jid] for jid, _ in rows], dtype=np.int64
        )
        self._fixed = np.asarray(
            [topo.junctions[jid].phases[p].duration_s for jid, p in rows], dtype=np.float64
        )
        self._lost = lost
        self._e_row = np.asarray(e_row, dtype=np.int64)
        self._e_app = np.asarray(e_app, dtype=np.int64)
        self._e_share = np.asarray(e_share, dtype=np.float64)
        self._p_entry = np.asarray(p_entry, dtype=np.int64)
        self._p_down = np.asarray(p_down, dtype=np.int64)
        self._p_weight = np.asarray(p_weight, dtype=np.float64)
        # the green phase each entry belongs to, to tell whether it is discharging now
        self._p_phase = np.asarray([rows[e_row[e]][1] for e in p_entry], dtype=np.int64)
        self._p_junction = self._row_junction[self._e_row[self._p_entry]]
        links = Feeds(
            junction=self._p_junction,
            phase=self._p_phase,
            source=self._e_app[self._p_entry],
            down=self._p_down,
            weight=self._p_weight,
            hidden_s=np.asarray([h for h, _ in p_travel], dtype=np.float64).reshape(-1),
            travel_s=np.asarray([t for _, t in p_travel], dtype=np.float64).reshape(-1),
        )
        self._platoons = Platoons(links, len(lanes), self._lanes)

    def _travel(self, out_edge: str, target: tuple[str, str]) -> tuple[float, float]:
        """Seconds from a link's stop line out of sight, and to the next stop line."""
        topo = self.topology
        approach = next(
            a for a in topo.junctions[target[0]].approaches if a.approach_id == target[1]
        )
        edges = [out_edge] + ([approach.edge_id] if approach.edge_id != out_edge else [])
        lengths = [topo.edge_lengths_m.get(e) for e in edges]
        speed = topo.edge_speeds_ms.get(out_edge)
        if any(x is None for x in lengths):
            return travel_times(None, speed, self.settings.camera_range_m)
        return travel_times(sum(x or 0.0 for x in lengths), speed, self.settings.camera_range_m)

    def _fixed_duration(self, kind: str, programmed: float) -> float:
        if kind == "yellow":
            return min(YELLOW_MAX_S, max(self.safety.yellow_s, programmed))
        return max(self.safety.all_red_s, programmed)

    # -- inputs -------------------------------------------------------------------------------

    def ingest(self, payload: bytes) -> TrafficAggregate | None:
        """Take one aggregate; malformed or unknown ones are logged and dropped, never fatal."""
        try:
            agg = decode(payload, TrafficAggregate)
        except SchemaError as exc:
            log.warning("coordinator: dropping aggregate: %s", exc)
            return None
        if agg.junction_id not in self.topology.junctions:
            log.warning("coordinator: aggregate from unknown junction %r", agg.junction_id)
            return None
        held = self._latest.get(agg.junction_id)
        if held is None or agg.interval_start >= held.interval_start:
            self.add(agg)
        return agg

    def add(self, aggregate: TrafficAggregate) -> None:
        """Hold the junction's counts; the per-lane loads go straight into the network arrays."""
        jid = aggregate.junction_id
        self._latest[jid] = aggregate
        self._reported_at[self._junction_pos[jid]] = aggregate.interval_start + aggregate.interval_s
        first, last = self._junction_span[jid]
        seen = np.full(last - first, np.nan)
        held_before = self._snap[first:last].copy()  # what each held when the interval began
        for c in aggregate.approaches:
            k = self._approach_index.get((jid, c.approach_id))
            if k is not None and c.camera_healthy:
                seen[k - first] = c.queue + APPROACHING_WEIGHT * c.approaching
        # A snapshot depends on which phase is showing (the green approach has just emptied),
        # so demand is a moving average over about a cycle; a blind approach resets to unknown.
        if self._track_platoons:
            waiting = np.where(np.isnan(held_before), seen, held_before)
            pos = self._junction_pos[jid]
            start, seconds = aggregate.interval_start, aggregate.interval_s
            self._platoons.release(pos, aggregate.phase_index, start, seconds, waiting, first=first)
        self._snap[first:last] = seen
        held = self._raw[first:last]
        alpha = self.settings.smoothing
        self._raw[first:last] = np.where(np.isnan(held), seen, held + alpha * (seen - held))

    # -- the plan -----------------------------------------------------------------------------

    def _loads(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Vehicles per lane per approach (NaN = unknown) and which junctions are fresh."""
        fresh = (now - self._reported_at) <= self.settings.stale_after_s
        load = np.where(fresh[self._owner], self._raw, np.nan) / self._lanes
        return load, fresh

    def draft(self, now: float) -> list[PlanDraft]:
        """Greens for every junction with fresh counts."""
        load, fresh = self._loads(now)
        # A blind approach (camera down) is assumed as loaded as the junction's busiest one,
        # so the plan never starves what it cannot see.
        known = np.where(np.isnan(load), -np.inf, load)
        busiest = np.full(len(self.junction_ids), -np.inf)
        np.maximum.at(busiest, self._owner, known)
        busiest[np.isinf(busiest)] = 0.0
        up = np.where(np.isnan(load), busiest[self._owner], load)
        down_known = np.nan_to_num(load, nan=0.0)
        down = np.zeros(len(self._e_row))
        np.add.at(down, self._p_entry, self._p_weight * down_known[self._p_down])
        value = self._e_share * np.maximum(
            0.0, up[self._e_app] - self.settings.downstream_weight * down
        )
        need = np.zeros(len(self._rows))
        np.maximum.at(need, self._e_row, value)
        if self.settings.max_pressure:
            # acyclic: the plan's green is only the shortest turn a phase gets once chosen
            greens = np.full(len(self._rows), self.safety.min_green_s)
        else:
            greens = split_greens(
                need, self._fixed, self._row_junction, len(self.junction_ids), self.safety
            )
        pressure = self._pressures(fresh, now)
        drafts: dict[str, dict[int, float]] = {}
        pressures: dict[str, dict[int, float]] = {}
        fresh_ids = {jid for jn, jid in enumerate(self.junction_ids) if fresh[jn]}
        for (jid, phase), g, pr in zip(self._rows, greens.tolist(), pressure.tolist(), strict=True):
            if jid in fresh_ids:
                drafts.setdefault(jid, {})[phase] = round(g, 1)
                pressures.setdefault(jid, {})[phase] = round(pr, 2)
        # platoons due, for the gateways' gap-out: only where they are tracked and run acyclic
        arriving: dict[str, dict[int, float]] | None = None
        if self.settings.max_pressure and self.settings.hold_for_arrivals:
            due = self._arrivals(now, self.settings.hold_horizon_s).tolist()
            arriving = {}
            for (jid, phase), ar in zip(self._rows, due, strict=True):
                if jid in fresh_ids:
                    arriving.setdefault(jid, {})[phase] = round(ar, 2)
        return [
            PlanDraft(
                jid,
                gs,
                sum(gs.values()) + self._lost[jid],
                pressures[jid] if self.settings.max_pressure else None,
                None if arriving is None else arriving[jid],
            )
            for jid, gs in drafts.items()
        ]

    def _pressures(self, fresh: np.ndarray, now: float) -> np.ndarray:
        """Max-pressure per green phase from the latest counts (not the smoothed demand).

        Sum over the phase's movements of (vehicles per lane waiting upstream minus those on the
        approach it feeds downstream): serving a movement into a jammed link earns nothing.
        A blind approach counts as the junction's busiest, so it is never starved.
        """
        load = np.where(fresh[self._owner], self._snap, np.nan) / self._lanes
        known = np.where(np.isnan(load), -np.inf, load)
        busiest = np.full(len(self.junction_ids), -np.inf)
        np.maximum.at(busiest, self._owner, known)
        busiest[np.isinf(busiest)] = 0.0
        up = np.where(np.isnan(load), busiest[self._owner], load)
        down = np.zeros(len(self._e_row))
        np.add.at(down, self._p_entry, self._p_weight * np.nan_to_num(load, nan=0.0)[self._p_down])
        value = self._e_share * (up[self._e_app] - self.settings.pressure_down_weight * down)
        out = np.zeros(len(self._rows))
        np.add.at(out, self._e_row, value)
        served = np.zeros(len(self._rows))
        np.add.at(served, self._e_row, self._e_share * up[self._e_app])
        if self.settings.upstream_weight:
            arriving = self._arriving(now)
            out += arriving
            served += arriving
        # gap-out: a green with (nearly) nobody to serve yields to any phase with demand
        gap = self.settings.gap_out_penalty
        return np.where(served < self.settings.gap_out_load, out - gap, out)

    @property
    def _track_platoons(self) -> bool:
        return bool(self.settings.upstream_weight or self.settings.hold_for_arrivals)

    def _arrivals(self, now: float, horizon_s: float) -> np.ndarray:
        """Per green phase: vehicles per lane due from upstream (`platoons`), unweighted."""
        per_approach = self._platoons.expected(now, horizon_s)
        gain = np.zeros(len(self._rows))
        np.add.at(gain, self._e_row, self._e_share * per_approach[self._e_app])
        return gain

    def _arriving(self, now: float) -> np.ndarray:
        """Per green phase: weighted vehicles per lane due from upstream (`platoons`)."""
        gain = self._arrivals(now, self.settings.arrival_horizon_s)
        if self.settings.arrivals_hold_only:
            showing = np.asarray(
                [a.phase_index if (a := self._latest.get(j)) else -1 for j in self.junction_ids]
            )
            gain = np.where(showing[self._row_junction] == self._row_phase, gain, 0.0)
        return self.settings.upstream_weight * gain

    def plans(self, now: float) -> list[SignalPlan]:
        """Signed-off plans with an expiry, one per junction with fresh counts."""
        self._plan_seq += 1
        sent_at = time.time()
        out = []
        for d in self.draft(now):
            # Built by this code from validated numbers: skip re-validation (1,000 plans < 50 ms).
            out.append(
                SignalPlan.model_construct(
                    schema_version=SignalPlan.SCHEMA_VERSION,
                    message_id=uuid.uuid4().hex,
                    sent_at=sent_at,
                    sender=self.settings.sender,
                    junction_id=d.junction_id,
                    plan_id=f"{d.junction_id}-{self._incarnation}-{self._plan_seq}",
                    issued_at=now,
                    expires_at=now + self.settings.plan_ttl_s,
                    cycle_s=d.cycle_s,
                    offset_s=0.0,
                    control="cyclic" if d.pressures is None else "acyclic",
                    greens=[
                        PhaseGreen.model_construct(
                            phase_index=p,
                            green_s=g,
                            pressure=None if d.pressures is None else d.pressures.get(p),
                            arriving=None if d.arriving is None else d.arriving.get(p),
                        )
                        for p, g in sorted(d.greens.items())
                    ],
                )
            )
        return out

    def latest_time(self) -> float | None:
        """The newest control time any gateway reported (the network's clock)."""
        if not self._latest:
            return None
        return max(a.interval_start + a.interval_s for a in self._latest.values())
