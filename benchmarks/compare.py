"""Compare a run with an older one: per-metric ratios, regressions beyond a threshold flagged.

Each result's latency and throughput, and the headline figures that say which way is better (the
ratios a suite measures against a baseline in the same run: Serve vs the in-process ceiling, the
bridge vs a plain subscriber, DICOM vs JPEG...). Those ratios hold across hosts far better than
the milliseconds, so they are what a regression check on another machine can trust.
"""

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


# latencies both under this are never a regression: on a 2-core host a 0.07 ms stage doubles
# whenever a thread is preempted once
NOISE_FLOOR_MS = 0.5

# headline figures compared, by a phrase in their name -> True when higher is better (the first
# phrase that matches decides; a headline that matches none is not compared). Not a p99 ratio:
# in a quick run of a few requests the p99 is the one slowest request.
HEADLINES: tuple[tuple[str, bool], ...] = (
    ("overhead", False),
    ("Grad-CAM cost", False),
    ("lost messages", False),
    ("/jpeg p99 ratio", False),  # a DICOM scan's p99 over a JPEG's
    ("vs in-process ceiling", True),
    ("vs naive peer throughput", True),
    ("batching gain", True),
    ("bridge / ", True),
    ("speedup", True),
)


def headline_direction(key: str) -> bool | None:
    """True when a higher value of headline `key` is better, False if lower, None: not compared."""
    for phrase, higher_better in HEADLINES:
        if phrase in key:
            return higher_better
    return None


def headline_value(value: Any) -> float | None:
    """A headline's number: 0.95, or "0.95x" (a ratio as the suites print it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.split()[0].rstrip("x"))
        except (ValueError, IndexError):
            return None
    return None


@dataclass(frozen=True)
class Change:
    name: str
    metric: str
    old: float
    new: float
    higher_better: bool

    @property
    def ratio(self) -> float:
        if self.old == 0:
            return 1.0 if self.new == 0 else float("inf")
        return self.new / self.old

    def worse_by(self) -> float:
        """How much worse the new value is, as a fraction (negative = better)."""
        if self.metric.startswith("latency_ms.") and max(self.old, self.new) < NOISE_FLOOR_MS:
            return 0.0  # a stage of microseconds: the scheduler's jitter, not the code's
        if self.old == 0:
            # a count that must stay 0 (lost messages) regresses by any amount
            return float("inf") if self.new > 0 and not self.higher_better else 0.0
        change = (self.new - self.old) / self.old
        return -change if self.higher_better else change


def _get(result: dict[str, Any], path: str) -> float | None:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


TAIL_METRICS = frozenset({"latency_ms.p95", "latency_ms.p99"})


def _samples(result: dict[str, Any]) -> int:
    """How many timed samples a result's percentiles come from (unknown: assume enough)."""
    n = result.get("latency_ms", {}).get("n", result.get("iterations"))
    return int(n) if isinstance(n, int | float) else 1_000_000


def compare(
    old: dict[str, Any], new: dict[str, Any], *, headline_only: bool = False
) -> tuple[list[Change], list[str]]:
    """Changes for every metric of every result present in both runs (none with
    `headline_only`) and for the headline figures with a direction; the names in only one run."""
    old_by = {r["name"]: r for r in old["results"]}
    new_by = {r["name"]: r for r in new["results"]}
    if headline_only:
        old_by, new_by = {}, {}
    changes = []
    for name, result in new_by.items():
        if name not in old_by:
            continue
        for metric, higher_better in METRICS.items():
            if metric in TAIL_METRICS and min(_samples(old_by[name]), _samples(result)) < 100:
                continue  # the p99 of fewer than 100 samples is the slowest one: noise
            a, b = _get(old_by[name], metric), _get(result, metric)
            if a is not None and b is not None:
                changes.append(Change(name, metric, a, b, higher_better))
    old_lines, new_lines = old.get("headline", {}), new.get("headline", {})
    for key, value in new_lines.items():
        direction = headline_direction(key)
        a, b = headline_value(old_lines.get(key)), headline_value(value)
        if direction is not None and a is not None and b is not None:
            changes.append(Change(key, "headline", a, b, direction))
    unmatched = sorted(set(old_by) ^ set(new_by))
    return changes, unmatched


def render(changes: list[Change], unmatched: list[str], threshold: float) -> tuple[str, int]:
    """A text table of ratios (new/old) and the number of regressions beyond `threshold`."""
    width = max([44, *(len(c.name) for c in changes)])
    lines = [f"{'measurement':<{width}} {'metric':<17} {'old':>10} {'new':>10} {'new/old':>8}"]
    regressions = 0
    for c in changes:
        flag = ""
        if c.worse_by() > threshold:
            regressions += 1
            flag = f"  REGRESSION (worse by {100 * c.worse_by():.1f}%)"
        lines.append(
            f"{c.name:<{width}} {c.metric:<17} {c.old:>10.4g} {c.new:>10.4g} {c.ratio:>8.3f}{flag}"
        )
    if unmatched:
        lines.append(f"in only one of the runs (not compared): {', '.join(unmatched)}")
    lines.append(
        f"{regressions} regression(s) beyond {100 * threshold:.0f}% "
        f"across {len(changes)} compared metric(s)"
    )
    return "\n".join(lines), regressions
