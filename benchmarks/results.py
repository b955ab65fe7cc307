"""One bench run: its results, what could not be measured and why, written as JSON + HTML."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.host import busy_warning, host_facts, load_average
from benchmarks.report import write_report

SCHEMA_VERSION = 1


def default_out_dir(suite: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("out") / "bench" / f"{stamp}-{suite}"


class BenchRun:
    """Collects results for one `edgeward bench SUITE` run and writes them out at the end."""

    def __init__(self, suite: str, out_dir: Path, quick: bool, config: dict[str, Any]) -> None:
        self.suite = suite
        self.out_dir = out_dir
        self.quick = quick
        self.config = config
        self.results: list[dict[str, Any]] = []
        self.unavailable: list[dict[str, str]] = []
        self.sections: dict[str, Any] = {}
        self.headline: dict[str, Any] = {}
        self.started = time.time()
        self.host = host_facts()
        if busy_warning(self.host):
            print(f"warning: {busy_warning(self.host)}", flush=True)

    def add(
        self,
        name: str,
        record: dict[str, Any],
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        curve: tuple[str, str, float] | None = None,
    ) -> dict[str, Any]:
        """Add one measurement; `curve` = (x label, series, x) also puts it on a curve chart."""
        if any(r["name"] == name for r in self.results):
            raise ValueError(f"result {name!r} was added twice; give each measurement its own name")
        entry = {
            "suite": self.suite,
            "name": name,
            "params": params or {},
            **record,
            "metrics": {**record.get("metrics", {}), **(metrics or {})},
        }
        if curve is not None:
            entry["curve"] = {"x_label": curve[0], "series": curve[1], "x": curve[2]}
        self.results.append(entry)
        return entry

    def skip(self, what: str, reason: str) -> None:
        """Record (and print) a part that cannot be measured here: never a made-up figure."""
        self.unavailable.append({"what": what, "reason": reason})
        print(f"{what} not available: {reason}", flush=True)

    def warnings(self) -> list[str]:
        """Why figures may mislead: a busy host at the start or at the end of the run."""
        found = []
        start = busy_warning(self.host)
        end = busy_warning({**self.host, "load_average": load_average()})
        for label, warning in (("at the start", start), ("at the end", end)):
            if warning:
                found.append(f"{label}: {warning}")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "edgeward bench",
            "suite": self.suite,
            "quick": self.quick,
            "started_at": datetime.fromtimestamp(self.started, timezone.utc).isoformat(
                timespec="seconds"
            ),
            "duration_s": round(time.time() - self.started, 2),
            "config": self.config,
            "host": self.host,
            "load_average_at_end": load_average(),
            "warnings": self.warnings(),
            "headline": self.headline,
            "sections": self.sections,
            "unavailable": self.unavailable,
            "results": self.results,
        }

    def finish(self) -> Path:
        """Write results.json, the charts and report.html; return the JSON path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        path = self.out_dir / "results.json"
        path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
        write_report(data, self.out_dir)
        return path


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalar
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def load_results(path: Path) -> dict[str, Any]:
    """A results.json written by `edgeward bench`, with a clear error for anything else."""
    from shared.errors import EdgewardError

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgewardError(f"--compare {path}: file not found; give a results.json") from None
    except ValueError as exc:
        raise EdgewardError(f"--compare {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("tool") != "edgeward bench":
        raise EdgewardError(f"--compare {path}: not a results.json written by `edgeward bench`")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise EdgewardError(
            f"--compare {path}: schema_version {data.get('schema_version')!r}, "
            f"this edgeward writes {SCHEMA_VERSION}; re-run the old benchmark"
        )
    return data
