"""`bench cloud`: closed-loop load on the Serve grader (engineer D's benchmark functions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.results import BenchRun


@dataclass(frozen=True)
class CloudPlan:
    registry: Path
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    requests_per_level: int = 64

    @classmethod
    def quick(cls, registry: Path) -> CloudPlan:
        return cls(registry, concurrency=(1, 4), requests_per_level=8)


def run_cloud(run: BenchRun, plan: CloudPlan) -> None:
    try:
        import benchmarks.cloud_serve  # noqa: F401
    except ImportError as exc:
        run.skip("cloud tier", f"benchmarks.cloud_serve cannot be imported ({exc})")
        return
    run.skip("cloud tier", "benchmarks.cloud_serve has no function this bench knows yet")
