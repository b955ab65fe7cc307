"""`edgeward monitor report`: an HTML drift report with PNG charts for one model's log."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.config.flywheel import FlywheelConfig
from shared.errors import EdgewardError
from shared.monitoring.check import DriftCheck, Reference, build_reference, check_drift
from shared.monitoring.check import drift_timeline as timeline
from shared.monitoring.prediction_log import LoggedPrediction, PredictionStore, feature_matrix
from shared.registry import Manifest, Registry


@dataclass(frozen=True)
class DriftReport:
    html: Path
    charts: list[Path]
    check: DriftCheck


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def histogram_chart(
    check: DriftCheck, ref: Reference, rows: list[LoggedPrediction], out: Path
) -> Path:
    """Reference vs current histograms, one panel per feature, drifted panels in red."""
    plt = _plt()
    results = check.results
    cols = 4
    nrows = (len(results) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, r in zip(axes.ravel(), results, strict=False):
        reference = ref.samples[r.feature]
        current = feature_matrix(rows, r.feature)
        lo = float(min(reference.min(), current.min() if len(current) else reference.min()))
        hi = float(max(reference.max(), current.max() if len(current) else reference.max()))
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 25)
        ax.hist(reference, bins=bins, density=True, alpha=0.5, label="reference", color="tab:blue")
        ax.hist(current, bins=bins, density=True, alpha=0.5, label="current", color="tab:orange")
        stat = f"p={r.p_value:.2g}" if r.p_value is not None else f"PSI={r.psi or 0:.2f}"
        ax.set_title(f"{r.feature}\n{r.method} {stat}", color="red" if r.drifted else "black",
                     fontsize=9)  # fmt: skip
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(results) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"{check.model}: reference vs last {check.n} predictions (red = drift)")
    fig.tight_layout()
    path = out / "histograms.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def timeline_chart(
    rows: list[LoggedPrediction], ref: Reference, config: FlywheelConfig, out: Path, window: int
) -> Path:
    """The drift test's p-value over sliding windows per feature, with the alarm line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    step = max(5, window // 4)
    for feature in sorted(ref.samples):
        points = timeline(rows, ref, feature, window=window, step=step, thresholds=config.drift)
        points = [(s, r) for s, r in points if r.p_value is not None]
        if points:
            ax.plot([s for s, _ in points], [max(r.p_value or 1e-300, 1e-30) for _, r in points],
                    marker=".", label=feature)  # fmt: skip
    ax.axhline(config.drift.ks_p_value, color="red", linestyle="--", label="alarm (KS p)")
    ax.set_yscale("log")
    ax.set_xlabel("prediction number (end of window)")
    ax.set_ylabel(f"KS p-value over the last {window}")
    ax.set_title("drift statistic over time (lower = further from the reference)")
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    fig.tight_layout()
    path = out / "drift_over_time.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def accuracy_chart(rows: list[LoggedPrediction], out: Path, window: int) -> Path | None:
    """Reviewer-confirmed accuracy over a sliding window of labelled predictions."""
    labelled = [r for r in rows if r.label is not None and r.prediction is not None]
    if len(labelled) < 10:
        return None
    plt = _plt()
    correct = np.array([r.prediction == r.label for r in labelled], dtype=float)
    w = min(window, len(correct))
    acc = np.convolve(correct, np.ones(w) / w, mode="valid")
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot([labelled[i + w - 1].seq for i in range(len(acc))], acc)
    ax.set_ylim(0, 1)
    ax.set_xlabel("prediction number")
    ax.set_ylabel(f"accuracy (last {w} labels)")
    ax.set_title("concept drift: reviewer-confirmed accuracy")
    fig.tight_layout()
    path = out / "accuracy.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _serving(registry: Registry, model: str, rows: list[LoggedPrediction]) -> Manifest:
    versions = {m.model_id: m for m in registry.versions(model)}
    for r in reversed(rows):
        if r.model_version in versions:
            return versions[r.model_version]
    champ = registry.champion(model)
    if champ is None:
        raise EdgewardError(f"model {model!r} is not in registry {registry.root}")
    return champ


def render_report(
    log: PredictionStore,
    registry: Registry,
    model: str,
    out: Path,
    *,
    config: FlywheelConfig | None = None,
    window: int | None = None,
) -> DriftReport:
    """Check drift on the last window of `model`'s log and write index.html + PNGs to `out`."""
    cfg = config or FlywheelConfig()
    win = window or cfg.window
    rows = log.rows(model)
    if not rows:
        known = ", ".join(log.models()) or "none"
        raise EdgewardError(
            f"prediction log {log.where} has no predictions of {model!r} (models logged: {known})"
        )
    manifest = _serving(registry, model, rows)
    ref = build_reference(manifest.extra, rows, baseline=win)
    check = check_drift(model, rows, ref, thresholds=cfg.drift, window=win)
    out.mkdir(parents=True, exist_ok=True)
    current = rows[-win:]
    charts = [histogram_chart(check, ref, current, out), timeline_chart(rows, ref, cfg, out, win)]
    acc = accuracy_chart(rows, out, win)
    if acc is not None:
        charts.append(acc)
    table = "\n".join(
        f"<tr class={'drift' if r.drifted else 'ok'}><td>{html.escape(r.feature)}</td>"
        f"<td>{html.escape(ref.sources.get(r.feature, ''))}</td><td>{r.method}</td>"
        f"<td>{'DRIFT' if r.drifted else 'ok'}</td><td>{html.escape(r.detail)}</td></tr>"
        for r in check.results
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in check.notes)
    verdict = "DRIFT DETECTED" if check.alarm else "no drift"
    images = "".join(f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in charts)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>edgeward drift report: {html.escape(model)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;text-align:left}}
tr.drift td{{background:#fdd}} img{{max-width:100%}}</style></head><body>
<h1>Drift report: {html.escape(manifest.model_id)} — {verdict}</h1>
<p>{len(rows)} logged predictions; judged the last {check.n} against the model's reference.</p>
<p>Concept drift: {html.escape(check.concept.detail)}</p>
<ul>{notes}</ul>
<table><tr><th>feature</th><th>reference</th><th>test</th><th>result</th><th>detail</th></tr>
{table}</table>
{images}
</body></html>"""
    index = out / "index.html"
    index.write_text(page)
    return DriftReport(index, charts, check)
