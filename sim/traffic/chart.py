"""The delay-over-time chart of a run, with fault windows shaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def delay_chart(
    path: Path,
    *,
    series: Sequence[float | None],
    bin_s: float,
    faults: Sequence[tuple[float, float, str]],
    title: str,
    horizon_s: float | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    try:
        xs = [(i + 0.5) * bin_s / 60.0 for i, v in enumerate(series) if v is not None]
        ys = [v for v in series if v is not None]
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.5, color="#1f5f99")
        colours = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
        for k, (start, end, label) in enumerate(faults):
            ax.axvspan(
                start / 60.0,
                end / 60.0,
                color=colours[k % len(colours)],
                alpha=0.18,
                label=label,
            )
        ax.set_xlabel("simulated time (min)")
        ax.set_ylabel("mean delay per trip (s)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, (horizon_s if horizon_s else len(series) * bin_s) / 60.0)
        ax.grid(alpha=0.3)
        if faults:
            ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
