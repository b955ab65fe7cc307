"""What one `edgeward demo` run does: sizes, timings and where it writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoSettings:
    out: Path = Path("out/demo")
    registry: Path = Path("registry")
    clinics: int = 3
    scans_per_clinic: int = 20
    scan_interval_s: float = 8.0
    grid: str = "4x4"
    traffic_minutes: float = 8.0
    outage_at_s: float = 60.0
    outage_s: float = 90.0
    seed: int = 1
    quick_models: bool = False
    traffic: bool = True
    drain_timeout_s: float = 240.0
