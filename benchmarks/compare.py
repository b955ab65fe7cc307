"""Compare a run with an older one: per-metric ratios, regressions beyond a threshold flagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# metric path -> True when higher is better
METRICS: dict[str, bool] = {
    "latency_ms.p50": False,
    "latency_ms.p95": False,
    "latency_ms.p99": False,
    "throughput.value": True,
}


@dataclass(frozen=True)
class Change:
    name: str
    metric: str
    old: float
    new: float

    @property
    def ratio(self) -> float:
        return self.new / self.old if self.old else float("inf")

    def worse_by(self) -> float:
        """How much worse the new value is, as a fraction (negative = better)."""
        higher_better = METRICS[self.metric]
        if self.old == 0:
            return 0.0
        change = (self.new - self.old) / self.old
        return -change if higher_better else change


def _get(result: dict[str, Any], path: str) -> float | None:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def compare(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[str]]:
    """Changes for every metric of every result present in both runs, and the names in only one."""
    old_by = {r["name"]: r for r in old["results"]}
    new_by = {r["name"]: r for r in new["results"]}
    changes = []
    for name, result in new_by.items():
        if name not in old_by:
            continue
        for metric in METRICS:
            a, b = _get(old_by[name], metric), _get(result, metric)
            if a is not None and b is not None:
                changes.append(Change(name, metric, a, b))
    unmatched = sorted(set(old_by) ^ set(new_by))
    return changes, unmatched


def render(changes: list[Change], unmatched: list[str], threshold: float) -> tuple[str, int]:
    """A text table of ratios (new/old) and the number of regressions beyond `threshold`."""
    lines = [f"{'measurement':<44} {'metric':<17} {'old':>10} {'new':>10} {'new/old':>8}"]
    regressions = 0
    for c in changes:
        flag = ""
        if c.worse_by() > threshold:
            regressions += 1
            flag = f"  REGRESSION (worse by {100 * c.worse_by():.1f}%)"
        lines.append(
            f"{c.name:<44} {c.metric:<17} {c.old:>10.4g} {c.new:>10.4g} {c.ratio:>8.3f}{flag}"
        )
    if unmatched:
        lines.append(f"in only one of the runs (not compared): {', '.join(unmatched)}")
    lines.append(
        f"{regressions} regression(s) beyond {100 * threshold:.0f}% "
        f"across {len(changes)} compared metric(s)"
    )
    return "\n".join(lines), regressions
