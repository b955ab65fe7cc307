"""The acceptance test's HTML report: summary, reliability diagram, one row per photograph."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

THUMB_PX = 160


def reliability_png(reliability: dict[str, Any] | None, path: Path) -> Path:
    """Mean predicted P(referable) against the observed referable frequency, per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect calibration")
    bins = (reliability or {}).get("bins", [])
    if bins:
        xs = [b["mean_p"] for b in bins]
        ys = [b["frequency"] for b in bins]
        sizes = [20 + 8 * b["n"] for b in bins]
        ax.scatter(xs, ys, s=sizes, color="tab:blue", zorder=3, label="bins (size = images)")
        ax.plot(xs, ys, color="tab:blue")
        ece = (reliability or {}).get("ece")
        ax.set_title(f"reliability, ECE {ece:.3f}" if ece is not None else "reliability")
    else:
        ax.set_title("reliability: no labelled images")
    ax.set_xlabel("mean predicted P(referable)")
    ax.set_ylabel("observed referable frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _thumb(path: str) -> str:
    data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return ""
    scale = THUMB_PX / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return base64.b64encode(jpg.tobytes()).decode() if ok else ""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def _mirror_note(r: dict[str, Any]) -> str:
    """' (mirror: refer)' where the mirror image got another verdict; nothing where it agreed."""
    other = r.get("edge_verdict_mirrored") or ""
    if not other or other == r["edge_verdict"]:
        return ""
    return f' <span style="color:#b00">(mirror: {html.escape(other)})</span>'


def _final(r: dict[str, Any]) -> str:
    """The clinic's final answer; where the cloud gave it, why (if a person must look)."""
    final = html.escape(r.get("final_verdict") or "–")
    if not r.get("uploaded"):
        return f"{final}<br><small>stays at the edge</small>"
    reason = html.escape(r.get("final_reason") or "")
    return f"<b>{final}</b><br><small>cloud: {reason or 'answered by the grade'}</small>"


def write_html_report(data: dict[str, Any], out: Path) -> Path:
    """out/report.html (thumbnails inline) and out/reliability.png; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    summary = data["summary"]
    reliability_png(summary.get("reliability"), out / "reliability.png")
    keys = (
        "n",
        "n_labelled",
        "n_referable",
        "retake_rate",
        "review_band_share",
        "auc",
        "auc_ci95",
        "sensitivity",
        "specificity",
        "ece",
        "edge_all_clear_on_non_referable",
        "edge_all_clear_on_referable",
        "final_all_clear_on_non_referable",
        "final_all_clear_on_referable",
        "mirror_verdict_agreement",
        "mirror_triage_log_odds_gap_median",
        "mirror_grader_log_odds_gap_median",
    )
    head = "".join(f"<tr><th>{k}</th><td>{_fmt(summary.get(k))}</td></tr>" for k in keys)
    cols = (
        "n",
        "retake_rate",
        "review_band_share",
        "auc",
        "ece",
        "mirror_verdict_agreement",
        "verdicts",
        "final_verdicts",
    )
    by_source = "".join(
        f"<tr><td>{html.escape(s)}</td>"
        + "".join(f"<td>{_fmt(g.get(c))}</td>" for c in cols)
        + "</tr>"
        for s, g in summary.get("by_source", {}).items()
    )
    rows = []
    for r in data["images"]:
        thumb = _thumb(r["file"])
        img = f'<img src="data:image/jpeg;base64,{thumb}">' if thumb else "(not decoded)"
        rows.append(
            "<tr>"
            f"<td>{img}</td><td>{html.escape(Path(r['file']).name)}<br>"
            f"{html.escape(r['source'])}</td><td><b>{html.escape(r['edge_verdict'])}</b>"
            f"{_mirror_note(r)}<br>"
            f"{html.escape('; '.join(r['edge_reasons']))}</td>"
            f"<td>{_final(r)}</td>"
            f"<td>{_fmt(r['referable_probability'])} ({html.escape(r['grader_band'])})</td>"
            f"<td>{_fmt(r['grade'])}</td><td>{_fmt(r['label_referable'])}</td>"
            f"<td><small>{html.escape(json.dumps(r['ood_scores']))}</small></td>"
            f"<td>{html.escape(r['error'])}</td></tr>"
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgeward evaluate</title>
<style>body{{font-family:sans-serif;margin:1em}}td,th{{border:1px solid #ccc;padding:3px;
vertical-align:top;font-size:13px}}table{{border-collapse:collapse}}img{{max-width:{THUMB_PX}px}}
</style></head><body><h1>Site acceptance test</h1>
<table>{head}</table>
<h2>Verdicts</h2><p>At the edge, and what the clinic is finally told (after the cloud's rule,
<code>shared/decision.py</code>, for the scans the gateway uploads):</p>
<pre>edge:  {html.escape(json.dumps(summary.get("verdicts")))}
final: {html.escape(json.dumps(summary.get("final_verdicts")))}</pre>
<h2>Edge reason codes</h2><pre>{html.escape(json.dumps(summary.get("edge_codes"), indent=1))}</pre>
<p>On the labelled non-referable photographs the edge did not clear (what held them):</p>
<pre>{html.escape(json.dumps(summary.get("edge_codes_on_held_non_referable"), indent=1))}</pre>
<h2>Reliability of P(referable)</h2><img src="reliability.png" style="max-width:420px">
<h2>Per source</h2><table><tr><th>source</th>{"".join(f"<th>{c}</th>" for c in cols)}</tr>
{by_source}</table>
<h2>Photographs</h2><table><tr><th></th><th>file</th><th>edge verdict</th>
<th>final answer</th><th>grader P(referable) (band)</th><th>grade</th><th>label referable</th>
<th>OOD</th><th>error</th></tr>{"".join(rows)}</table></body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path
