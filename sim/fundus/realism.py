"""How real does the twin look? Image statistics of two folders side by side, with pictures.

    python -m sim.fundus.realism --twin data/twin/images --real ../shared/data/real-fundus-dev \
        --out out/realism

Per image: resolution, field geometry (size, share inside the frame, fill), colour inside the
field (mean and chromaticity, a 32-bin histogram per channel), the quality gate's exposure,
contrast, sharpness and illumination measures, and the green channel's power spectrum in four
frequency bands. The report gives each statistic's median and interquartile range per folder and
the two-sample Kolmogorov-Smirnov distance between them (0 = same distribution, 1 = disjoint).
Nothing is written next to the inputs; the real photographs are only read.
"""

from __future__ import annotations

import argparse
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.clinic.quality import analysis_view, assess

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
BANDS = ((0.02, 0.05), (0.05, 0.12), (0.12, 0.25), (0.25, 0.5))  # cycles per analysis pixel
QUALITY_KEYS = ("exposure", "contrast", "sharpness", "illumination", "clipped")


@dataclass
class ImageStats:
    file: str
    values: dict[str, float] = field(default_factory=dict)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((3, 32)))


def spectrum_bands(green: np.ndarray, inside: np.ndarray) -> list[float]:
    """Share of the green channel's detail power in each band of BANDS (sums to <= 1)."""
    g = np.where(inside, green - green[inside].mean(), 0.0).astype(np.float64)
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    n = g.shape[0]
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(n)), np.fft.fftshift(np.fft.fftfreq(n)))
    radius = np.hypot(fx, fy)
    total = float(power[radius >= BANDS[0][0]].sum()) or 1.0
    return [float(power[(radius >= lo) & (radius < hi)].sum()) / total for lo, hi in BANDS]


def image_stats(path: Path) -> ImageStats | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    report = assess(image, block_period=None)
    view = analysis_view(image, None)
    stats = ImageStats(str(path))
    v = stats.values
    v["long_side_px"] = float(max(h, w))
    v["aspect"] = float(w / h)
    v["fov_size"] = report.fov.size
    v["fov_in_frame"] = report.fov.in_frame
    v["fov_fill"] = report.fov.fill
    for key in QUALITY_KEYS:
        if key in report.measures:
            v[key] = float(report.measures[key])
    pixels = view.crop[view.inner].astype(np.float64)
    b, g, r = pixels.mean(axis=0)
    v["mean_r"], v["mean_g"], v["mean_b"] = r, g, b
    v["chroma_r"] = r / max(r + g + b, 1.0)
    v["chroma_g"] = g / max(r + g + b, 1.0)
    for i, share in enumerate(spectrum_bands(view.green, view.inner)):
        v[f"spectrum_band{i}"] = share
    stats.histogram = np.stack(
        [np.histogram(pixels[:, c], bins=32, range=(0, 256))[0] for c in (2, 1, 0)]
    ) / max(len(pixels), 1)
    return stats


def folder_stats(folder: Path) -> list[ImageStats]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        raise SystemExit(f"{folder}: no images ({', '.join(sorted(SUFFIXES))}) found")
    return [s for s in (image_stats(p) for p in files) if s is not None]


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the two empirical distribution functions."""
    grid = np.sort(np.r_[a, b])
    ca = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(ca - cb)))


def compare(twin: list[ImageStats], real: list[ImageStats]) -> dict[str, dict[str, float]]:
    keys = [k for k in twin[0].values if all(k in s.values for s in twin + real)]
    table = {}
    for k in keys:
        a = np.array([s.values[k] for s in twin])
        b = np.array([s.values[k] for s in real])
        qa, qb = np.percentile(a, [25, 50, 75]), np.percentile(b, [25, 50, 75])
        table[k] = {
            "twin_median": float(qa[1]),
            "twin_q1": float(qa[0]),
            "twin_q3": float(qa[2]),
            "real_median": float(qb[1]),
            "real_q1": float(qb[0]),
            "real_q3": float(qb[2]),
            "ks": ks_distance(a, b),
        }
    return table


def _figure(twin: list[ImageStats], real: list[ImageStats], table: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(table)
    cols = 4
    rows = 1 + (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), dpi=80)
    centres = np.arange(32) * 8 + 4
    for c, name in enumerate(("red", "green", "blue")):
        ax = axes[0][c]
        ax.plot(centres, np.mean([s.histogram[c] for s in twin], axis=0), label="twin")
        ax.plot(centres, np.mean([s.histogram[c] for s in real], axis=0), label="real")
        ax.set_title(f"{name} histogram in the field")
        ax.legend(fontsize=7)
    axes[0][3].axis("off")
    for i, k in enumerate(keys):
        ax = axes[1 + i // cols][i % cols]
        a = [s.values[k] for s in twin]
        b = [s.values[k] for s in real]
        ax.boxplot([a, b], tick_labels=["twin", "real"])
        ax.set_title(f"{k} (KS {table[k]['ks']:.2f})", fontsize=9)
    for j in range(len(keys), (rows - 1) * cols):
        axes[1 + j // cols][j % cols].axis("off")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_report(twin: list[ImageStats], real: list[ImageStats], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    table = compare(twin, real)
    (out / "realism.json").write_text(
        json.dumps({"n_twin": len(twin), "n_real": len(real), "statistics": table}, indent=1)
    )
    _figure(twin, real, table, out / "realism.png")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td>"
        f"<td>{t['twin_median']:.3g} [{t['twin_q1']:.3g}, {t['twin_q3']:.3g}]</td>"
        f"<td>{t['real_median']:.3g} [{t['real_q1']:.3g}, {t['real_q3']:.3g}]</td>"
        f"<td>{t['ks']:.2f}</td></tr>"
        for k, t in sorted(table.items(), key=lambda kv: -kv[1]["ks"])
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>twin realism</title>"
        "<style>td,th{border:1px solid #ccc;padding:3px}</style>"
        f"<h1>Twin ({len(twin)}) vs real ({len(real)}) image statistics</h1>"
        "<p>median [IQR]; KS distance, worst first</p><table><tr><th>statistic</th>"
        f"<th>twin</th><th>real</th><th>KS</th></tr>{rows}</table>"
        "<img src='realism.png' style='max-width:100%'>"
    )
    (out / "realism.html").write_text(page)
    return out / "realism.html"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--twin", type=Path, required=True, help="folder of twin images")
    p.add_argument("--real", type=Path, required=True, help="folder of real photographs")
    p.add_argument("--out", type=Path, default=Path("out/realism"), help="report folder")
    args = p.parse_args(argv)
    path = write_report(folder_stats(args.twin), folder_stats(args.real), args.out)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
