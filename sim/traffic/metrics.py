"""Trip metrics from SUMO's tripinfo, with vehicles that never got in counted to the end."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Trip:
    vehicle_id: str
    depart_s: float  # intended departure (actual depart minus depart delay)
    arrival_s: float  # -1 while still running at the end
    delay_s: float  # time loss + depart delay
    waiting_s: float
    stops: int
    inserted: bool = True


def read_tripinfo(path: Path) -> list[Trip]:
    """Finished and unfinished trips (`--tripinfo-output.write-unfinished`)."""
    trips = []
    for _, el in ET.iterparse(path):
        if el.tag != "tripinfo":
            continue
        depart = float(el.get("depart", "0"))
        depart_delay = float(el.get("departDelay", "0"))
        if depart < 0:  # not inserted: SUMO writes it with depart -1 when asked for unfinished
            el.clear()
            continue
        trips.append(
            Trip(
                vehicle_id=el.get("id", ""),
                depart_s=depart - depart_delay,
                arrival_s=float(el.get("arrival", "-1")),
                delay_s=float(el.get("timeLoss", "0")) + depart_delay,
                waiting_s=float(el.get("waitingTime", "0")),
                stops=int(float(el.get("waitingCount", "0"))),
            )
        )
        el.clear()
    return trips


def summarise(trips: list[Trip], horizon_s: float) -> dict[str, float | int]:
    """The headline numbers over every vehicle that wanted to travel in the run."""
    n = len(trips)
    finished = [t for t in trips if t.arrival_s >= 0]
    inserted = [t for t in trips if t.inserted]
    minutes = horizon_s / 60.0
    return {
        "vehicles": n,
        "mean_delay_s": round(sum(t.delay_s for t in trips) / n, 2) if n else 0.0,
        "mean_waiting_s": (
            round(sum(t.waiting_s for t in inserted) / len(inserted), 2) if inserted else 0.0
        ),
        "throughput": len(finished),
        "throughput_per_h": round(len(finished) / minutes * 60.0, 1) if minutes else 0.0,
        "stops": round(sum(t.stops for t in inserted) / len(inserted), 3) if inserted else 0.0,
        "stops_total": sum(t.stops for t in inserted),
        "unfinished": sum(1 for t in inserted if t.arrival_s < 0),
        "never_inserted": n - len(inserted),
    }


def delay_series(trips: list[Trip], horizon_s: float, bin_s: float = 60.0) -> list[float | None]:
    """Mean delay of the trips that ended in each bin (unfinished ones in the last bin)."""
    nbins = max(1, round(horizon_s / bin_s))
    sums = [0.0] * nbins
    counts = [0] * nbins
    for t in trips:
        end = t.arrival_s if t.arrival_s >= 0 else horizon_s
        b = min(nbins - 1, max(0, int(end // bin_s)))
        sums[b] += t.delay_s
        counts[b] += 1
    return [round(s / c, 2) if c else None for s, c in zip(sums, counts, strict=True)]
