"""The HTML report and its PNG charts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

_MAX_PER_CHART = 14


def slug(text: str) -> str:
    """A file-name-safe form of a chart label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_charts(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """Box plots of the per-iteration latency samples, a chart per group of results."""
    plt = _plt()
    with_samples = [r for r in results if r.get("samples_ms")]
    paths = []
    for i in range(0, len(with_samples), _MAX_PER_CHART):
        chunk = with_samples[i : i + _MAX_PER_CHART]
        fig, ax = plt.subplots(figsize=(10, 0.45 * len(chunk) + 1.6))
        ax.boxplot(
            [r["samples_ms"] for r in chunk],
            orientation="horizontal",
            whis=(1, 99),
            showfliers=False,
            tick_labels=[r["name"] for r in chunk],
        )
        for y, r in enumerate(chunk, start=1):
            lat = r["latency_ms"]
            ax.plot([lat["p95"], lat["p99"]], [y, y], "v", color="tab:red", markersize=4)
        ax.invert_yaxis()  # first result on top, like the table
        ax.set_xscale("log")
        ax.set_xlabel("latency per call, ms (box: p25-p75, whiskers p1-p99, ▼ p95 and p99)")
        ax.set_title(f"Latency distributions ({i // _MAX_PER_CHART + 1})")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = out / f"latency_{i // _MAX_PER_CHART + 1}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def curve_charts(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """Throughput and p50/p99 latency against the curve's x axis (concurrency, batch, size)."""
    plt = _plt()
    by_axis: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if "curve" in r:
            by_axis[r["curve"]["x_label"]][r["curve"]["series"]].append(r)
    paths = []
    for x_label, series in by_axis.items():
        fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.5))
        for name, unsorted in sorted(series.items()):
            rows = sorted(unsorted, key=lambda r: r["curve"]["x"])
            xs = [r["curve"]["x"] for r in rows]
            ax_t.plot(xs, [r["throughput"]["value"] for r in rows], "o-", label=name)
            line = ax_l.plot(xs, [r["latency_ms"]["p50"] for r in rows], "o-", label=f"{name} p50")
            ax_l.plot(xs, [r["latency_ms"]["p99"] for r in rows], "--", color=line[0].get_color())
        unit = next(iter(series.values()))[0]["throughput"]["unit"]
        ax_t.set_xlabel(x_label)
        ax_t.set_ylabel(unit)
        ax_t.set_title(f"Throughput vs {x_label}")
        ax_l.set_xlabel(x_label)
        ax_l.set_ylabel("latency ms (solid p50, dashed p99)")
        ax_l.set_yscale("log")
        ax_l.set_title(f"Latency vs {x_label}")
        for ax in (ax_t, ax_l):
            ax.grid(alpha=0.3)
            if len(series) > 1:
                ax.set_xscale("log", base=2) if x_label != "intersections" else ax.set_xscale("log")
        ax_t.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"curve_{slug(x_label)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def peak_chart(results: list[dict[str, Any]], out: Path) -> Path | None:
    """Share of the host's measured peak FLOP/s each model reaches on each backend."""
    rows = [r for r in results if r["metrics"].get("fraction_of_peak") is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.6))
    names = [r["name"] for r in rows]
    values = [100 * r["metrics"]["fraction_of_peak"] for r in rows]
    ax.barh(names, values, color="tab:green")
    ax.invert_yaxis()
    ax.set_xlabel("% of measured peak FLOP/s of the same backend class (dense float32 matmul)")
    ax.set_title("Share of peak")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = out / "share_of_peak.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _results_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        lat, m = r["latency_ms"], r["metrics"]
        rows.append(
            [
                r["name"],
                lat["min"],
                lat["p50"],
                lat["p95"],
                lat["p99"],
                f"{r['throughput']['value']:.4g} {r['throughput']['unit']}",
                r.get("warmup", {}).get("first_ms", "-"),
                r.get("memory", {}).get("peak_rss_mb", "-"),
                m.get("gflops", "-"),
                f"{100 * m['fraction_of_peak']:.2f}%" if "fraction_of_peak" in m else "-",
                f"{r.get('iterations', '-')} ({r.get('stop_reason', '-')})",
                _other_metrics(m),
            ]
        )
    return _table(
        [
            "measurement",
            "min ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "throughput",
            "first warm-up call ms",
            "peak RSS MB",
            "GFLOPs/call",
            "share of peak",
            "iterations (why stopped)",
            "other metrics",
        ],
        rows,
    )


_SHOWN = {"gflops", "fraction_of_peak", "error_samples", "providers"}


def _other_metrics(metrics: dict[str, Any]) -> str:
    """Scalar metrics not in their own column (loss, speed-up, parity...), compactly."""
    parts = []
    for key, value in metrics.items():
        if key in _SHOWN or value is None:
            continue
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, int | str | dict):
            parts.append(f"{key}={value}")
    return "; ".join(parts)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.warn{color:#a00}"""


def write_report(data: dict[str, Any], out: Path) -> Path:
    """report.html beside results.json, with the charts as PNG files next to it."""
    results = data["results"]
    charts = latency_charts(results, out) + curve_charts(results, out)
    peak = peak_chart(results, out)
    if peak is not None:
        charts.append(peak)
    host = data["host"]
    gpu = ", ".join(f"{g['name']} (driver {g['driver']})" for g in host["gpus"]) or "none"
    host_rows = [
        ["CPU", f"{host['cpu_model']} × {host['cpu_cores']} cores"],
        ["memory", f"{host['memory_gb']} GB"],
        ["GPU", gpu],
        ["Jetson", host.get("jetson") or "no"],
        ["OS / Python", f"{host['os']} / {host['python']}"],
        [
            "load average (1/5/15 min)",
            f"{host.get('load_average')} at start, {data.get('load_average_at_end')} at end",
        ],
        ["git", f"{host['git']['commit'][:12]}{' (dirty)' if host['git']['dirty'] else ''}"],
        ["time", host["time"]],
        ["packages", ", ".join(f"{k} {v}" for k, v in host["packages"].items())],
    ]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>edgeward bench "
        f"{html.escape(data['suite'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>edgeward bench {html.escape(data['suite'])}"
        f"{' (quick)' if data['quick'] else ''}</h1>",
        f"<p>started {data['started_at']}, took {data['duration_s']} s. Latencies are per "
        "call (a call is one batch where a batch size is given); warm-up calls are excluded and "
        "shown apart; the runner iterates until p50/p95 (and p99 from 200 samples) move less "
        "than the tolerance, or the time budget ends.</p>",
        "<h2>Host</h2>",
        _table(["fact", "value"], host_rows),
    ]
    parts += [f"<p class='warn'>⚠ {html.escape(w)}</p>" for w in data.get("warnings", [])]
    if data["headline"]:
        parts += [
            "<h2>Headline</h2>",
            _table(["figure", "value"], [[k, v] for k, v in data["headline"].items()]),
        ]
    if data["unavailable"]:
        parts.append("<h2>Not measured on this host</h2><ul>")
        parts += [
            f"<li class='warn'><b>{html.escape(u['what'])}</b>: {html.escape(u['reason'])}</li>"
            for u in data["unavailable"]
        ]
        parts.append("</ul>")
    parts += ["<h2>Results</h2>", _results_table(results), "<h2>Charts</h2>"]
    parts += [f"<img src='{html.escape(p.name)}' alt='{html.escape(p.stem)}'>" for p in charts]
    for key, value in data["sections"].items():
        parts.append(f"<h2>{html.escape(key)}</h2><pre>{html.escape(_pretty(value))}</pre>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


def _pretty(value: object) -> str:
    import json

    return json.dumps(value, indent=2, default=str)
