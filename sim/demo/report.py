"""The demo's report: one HTML file with PNG charts beside it."""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sim.demo.facts import Check, ScanRecord

VERDICT_COLOURS = {
    "no_immediate_concern": "#4caf50",
    "refer": "#e53935",
    "review": "#fb8c00",
    "retake": "#1e88e5",
    "rejected": "#757575",
}


@dataclass
class TrafficRun:
    controller: str
    summary: dict[str, Any]
    delay_series: list[tuple[float, float]]  # (simulated s, mean delay of trips ending then)
    fault_windows: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class DemoData:
    scans: list[ScanRecord]
    checks: list[Check]
    outage: tuple[float, float] | None
    backlog: list[tuple[float, str, int]]  # (s since start, clinic, outbox depth)
    review_cases: list[dict[str, Any]]
    traffic: list[TrafficRun]
    cloud_stage_seconds: dict[str, list[float]]
    duration_s: float
    notes: list[str] = field(default_factory=list)


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def chart_verdicts(scans: list[ScanRecord], path: Path) -> str:
    clinics = sorted({s.clinic for s in scans})
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bottom = [0] * len(clinics)
    for verdict, colour in VERDICT_COLOURS.items():
        counts = [sum(s.clinic == c and s.edge_verdict == verdict for s in scans) for c in clinics]
        ax.bar(clinics, counts, bottom=bottom, color=colour, label=verdict)
        bottom = [b + n for b, n in zip(bottom, counts, strict=True)]
    ax.set_ylabel("scans")
    ax.set_title("Edge verdicts per clinic")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return _save(fig, path)


def chart_stage_latency(scans: list[ScanRecord], cloud: dict[str, list[float]], path: Path) -> str:
    stages = ["decode", "validate", "quality", "triage", "total"]
    edge = [[s.timings_ms[k] for s in scans if k in s.timings_ms] for k in stages]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    kept = [(k, v) for k, v in zip(stages, edge, strict=True) if v]
    if kept:
        axes[0].boxplot([v for _, v in kept], tick_labels=[k for k, _ in kept], showfliers=False)
    axes[0].set_ylabel("ms")
    axes[0].set_title("Edge latency per stage")
    order = ["queue", "preprocess", "infer", "explain"]
    names = [k for k in order if cloud.get(k)] + [k for k in cloud if k not in order and cloud[k]]
    cloud_kept = [(k, [x * 1000 for x in cloud[k]]) for k in names]
    if cloud_kept:
        axes[1].boxplot(
            [v for _, v in cloud_kept], tick_labels=[k for k, _ in cloud_kept], showfliers=False
        )
    axes[1].set_ylabel("ms")
    axes[1].set_title("Cloud latency per stage")
    return _save(fig, path)


def _shade(ax: Any, windows: list[tuple[float, float]], label: str) -> None:
    for i, (start, end) in enumerate(windows):
        ax.axvspan(start, end, color="#ffcdd2", alpha=0.6, label=label if i == 0 else None)


def chart_backlog(data: DemoData, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for clinic in sorted({c for _, c, _ in data.backlog}):
        pts = [(t, d) for t, c, d in data.backlog if c == clinic]
        ax.step([t for t, _ in pts], [d for _, d in pts], where="post", label=clinic)
    if data.outage:
        _shade(ax, [data.outage], "cloud down")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("uploads waiting")
    ax.set_title("Upload backlog during the cloud outage, and its drain")
    ax.legend(fontsize=8)
    return _save(fig, path)


def chart_delay(runs: list[TrafficRun], path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for run in runs:
        if run.delay_series:
            ax.plot(*zip(*run.delay_series, strict=True), label=run.controller)
    windows = next((r.fault_windows for r in runs if r.fault_windows), [])
    _shade(ax, windows, "cloud down")
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel("mean delay per trip (s)")
    ax.set_title("Traffic delay over time: coordinated vs fixed-time")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _img(name: str) -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(name)}">'


def _inline_png(data: bytes) -> str:
    return f'<img class="cam" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def render(data: DemoData, out: Path) -> Path:
    """Write report.html (and its PNGs) into `out`; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!doctype html><meta charset='utf-8'><title>edgeward demo report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        ".ok{color:#2e7d32}.bad{color:#c62828;font-weight:bold}img{max-width:100%}"
        ".cam{width:220px;margin:4px}</style>",
        "<h1>edgeward demo report</h1>",
        f"<p>{len(data.scans)} scans from {len({s.clinic for s in data.scans})} clinics, "
        f"{len(data.traffic)} traffic runs, {data.duration_s:.0f} s wall time.</p>",
        "<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>detail</th></tr>",
    ]
    for c in data.checks:
        cls, word = ("ok", "pass") if c.ok else ("bad", "FAIL")
        parts.append(
            f"<tr><td>{html.escape(c.name)}</td><td class='{cls}'>{word}</td>"
            f"<td>{html.escape(c.detail)}</td></tr>"
        )
    parts.append("</table>")
    for note in data.notes:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")

    parts += ["<h2>Clinics</h2>", _img(chart_verdicts(data.scans, out / "verdicts.png"))]
    counts = Counter((s.kind, s.edge_verdict) for s in data.scans)
    parts.append("<table><tr><th>input kind</th><th>edge verdict</th><th>count</th></tr>")
    for (kind, verdict), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        parts.append(f"<tr><td>{kind}</td><td>{verdict}</td><td>{n}</td></tr>")
    parts.append("</table>")

    parts.append("<h3>Grad-CAM explanations from the cloud grader</h3><div>")
    shown = 0
    for s in data.scans:
        png = (s.cloud or {}).get("heatmap_png_b64")
        if png and shown < 8:
            grade = (s.cloud or {}).get("verdict", "?")
            parts.append(
                f"<figure style='display:inline-block'>{_inline_png(base64.b64decode(png))}"
                f"<figcaption>{html.escape('…' + s.scan_id[-10:])}: truth grade {s.truth_grade}, "
                f"cloud {html.escape(str(grade))}</figcaption></figure>"
            )
            shown += 1
    parts.append("</div>" if shown else "<p>No cloud explanations arrived.</p></div>")

    retakes = [s for s in data.scans if s.edge_verdict in {"retake", "rejected"}][:25]
    parts.append("<h3>Retakes and rejections, with reasons</h3><table>")
    parts.append("<tr><th>scan</th><th>input</th><th>verdict</th><th>reasons</th></tr>")
    for s in retakes:
        what = ", ".join(s.defects) or s.kind
        parts.append(
            f"<tr><td>{html.escape(s.scan_id[:10])}</td><td>{html.escape(what)}</td>"
            f"<td>{s.edge_verdict}</td><td>{html.escape('; '.join(s.reasons))}</td></tr>"
        )
    parts.append("</table>")

    parts.append(f"<h3>Human review queue ({len(data.review_cases)} cases)</h3><table>")
    parts.append("<tr><th>case</th><th>reason</th><th>edge</th><th>cloud</th></tr>")
    for case in data.review_cases[:25]:
        parts.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(case.get(k, '')))}</td>"
                for k in ("case_id", "reason", "edge_verdict", "cloud_verdict")
            )
            + "</tr>"
        )
    parts.append("</table>")
    if not data.review_cases:
        parts.append(f"<p>{html.escape(_empty_queue_reason(data.scans))}</p>")

    parts += [
        "<h2>Latency</h2>",
        _img(chart_stage_latency(data.scans, data.cloud_stage_seconds, out / "latency.png")),
    ]
    parts += ["<h2>The outage</h2>", _img(chart_backlog(data, out / "backlog.png"))]

    parts.append("<h2>Traffic</h2>")
    if data.traffic:
        parts.append(_img(chart_delay(data.traffic, out / "delay.png")))
        keys = [
            "mean_delay_s",
            "mean_waiting_s",
            "throughput",
            "stops",
            "safety_violations",
            "mode_changes",
        ]
        parts.append("<table><tr><th>controller</th>" + "".join(f"<th>{k}</th>" for k in keys))
        for run in data.traffic:
            cells = "".join(f"<td>{run.summary.get(k, '')}</td>" for k in keys)
            parts.append(f"<tr><td>{run.controller}</td>{cells}</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No traffic runs.</p>")

    path = out / "report.html"
    path.write_text("\n".join(parts))
    (out / "facts.json").write_text(
        json.dumps(
            {
                "checks": [c.__dict__ for c in data.checks],
                "scans": len(data.scans),
                "outage": list(data.outage) if data.outage else None,
                "backlog_peak": max((d for _, _, d in data.backlog), default=0),
                "traffic": {r.controller: r.summary for r in data.traffic},
                "review_cases": len(data.review_cases),
                "notes": list(data.notes),
            },
            indent=2,
        )
    )
    return path


def _empty_queue_reason(scans: list[ScanRecord]) -> str:
    """Why no case reached a person, from the verdicts themselves (or what contradicts that)."""
    graded = [s for s in scans if s.cloud]
    uncertain = sum(1 for s in graded if s.cloud and s.cloud.get("verdict") == "review")
    opposite = {("refer", "no_immediate_concern"), ("no_immediate_concern", "refer")}
    disputed = sum(
        1 for s in graded if s.cloud and (s.edge_verdict, s.cloud.get("verdict")) in opposite
    )
    if uncertain or disputed:
        return (
            f"The queue is empty although {uncertain} cloud grades were uncertain and "
            f"{disputed} contradicted the edge: check the cloud's review logging."
        )
    return (
        f"No case needed a person: none of the {len(graded)} cloud grades fell in the uncertain "
        "band, and none contradicted the edge verdict."
    )


def traffic_checks(runs: list[TrafficRun], failures: list[str], enabled: bool) -> list[Check]:
    """Zero safety violations per controller, and every run completed (when traffic ran)."""
    checks = []
    for run in runs:
        violations = int(run.summary.get("safety_violations", -1))
        checks.append(
            Check(
                f"zero signal safety violations ({run.controller})",
                violations == 0,
                f"{violations} violations",
            )
        )
    if enabled:
        checks.append(
            Check(
                "every traffic run completed",
                not failures,
                "; ".join(failures) or f"{len(runs)} runs completed",
            )
        )
    return checks


def cloud_stage_seconds(scans: list[ScanRecord]) -> dict[str, list[float]]:
    """Seconds per cloud stage (queue, preprocess, infer, explain) over every graded scan."""
    stages: dict[str, list[float]] = {}
    for s in scans:
        for stage, secs in ((s.cloud or {}).get("timings_s") or {}).items():
            stages.setdefault(stage, []).append(float(secs))
    return stages
