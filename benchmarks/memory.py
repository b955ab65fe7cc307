"""Peak memory of a measured section: the process RSS high-water mark, reset before it starts.

Linux resets VmHWM when "5" is written to /proc/self/clear_refs, so each measurement gets its own
peak instead of the whole process's. Where that is refused, a sampling thread stands in.
"""

from __future__ import annotations

import resource
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    # No /proc (macOS): ru_maxrss is the best available figure (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _reset_hwm() -> bool:
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


class PeakRss:
    """Tracks the RSS high-water mark of this process while active (`peak_mb`, `baseline_mb`)."""

    def __init__(self, sample_interval_s: float = 0.01) -> None:
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self.method = ""
        self._interval = sample_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self.baseline_mb = rss_mb()
        self.peak_mb = self.baseline_mb
        if _reset_hwm():
            self.method = "VmHWM"
        else:
            self.method = "sampled"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            hwm = _status_kb("VmHWM")
            self.peak_mb = max(self.peak_mb, (hwm or 0) / 1024)
        self.peak_mb = max(self.peak_mb, rss_mb())

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": round(self.peak_mb, 2),
            "baseline_rss_mb": round(self.baseline_mb, 2),
            "peak_over_baseline_mb": round(max(0.0, self.peak_mb - self.baseline_mb), 2),
            "method": self.method,
        }


def python_peak_mb(fn: Callable[[], object]) -> float:
    """Peak Python-heap allocation of one call, by tracemalloc (slow: run it outside timing)."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    return round(peak / (1024 * 1024), 3)
