"""How fast the retinal twin makes scans: images/s at a size, generation alone and with writing.

Run: `.venv/bin/python -m benchmarks.fundus_generator [--n 40] [--size 1024]`. Prints JSON.

Wall time depends on what else runs on the host, so the figures come with the CPU time of this
process (what the generator itself costs) and the 1-minute load average while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.fundus.dataset import write_dataset, write_image
from sim.fundus.generator import GENERATOR_VERSION, generate_sample

TARGET_IMAGES_PER_S = 20.0  # at 1024 x 1024 (issue 3)


def _rate(n: int, fn: Callable[[int], object]) -> dict[str, float]:
    fn(0)  # warm-up: imports, cached grids, first allocations
    load0 = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(1, n + 1):
        fn(i)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "images_per_s_wall": round(n / wall, 2),
        "images_per_s_cpu": round(n / cpu, 2),
        "ms_per_image_wall": round(1000 * wall / n, 2),
        "ms_per_image_cpu": round(1000 * cpu / n, 2),
        "load_avg_1m": round(max(load0, os.getloadavg()[0]), 2),
    }


def bench_fundus_generator(n: int = 40, size: int = 1024, seed: int = 0) -> dict[str, Any]:
    """Images/s for generation alone, +PNG, +DICOM (explicit VR), and the parallel CLI path."""
    out: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "n": n,
        "cpu_cores": os.cpu_count(),
        "target_images_per_s": TARGET_IMAGES_PER_S,
    }
    out["generate"] = _rate(n, lambda i: generate_sample(seed, i, size=size))
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("png", "dicom"):

            def make_and_write(i: int, fmt: str = fmt) -> None:
                write_image(Path(tmp) / f"{i}.{fmt}", generate_sample(seed, i, size=size), fmt)

            out[f"generate_and_write_{fmt}"] = _rate(n, make_and_write)
        # The CLI path with every core: `edgeward sim fundus --workers N`.
        workers = min(4, os.cpu_count() or 1)
        wall0 = time.perf_counter()
        write_dataset(Path(tmp) / "set", n, seed, size=size, progress=False, workers=workers)
        wall = time.perf_counter() - wall0
        out["write_dataset_png_parallel"] = {
            "workers": workers,
            "images_per_s_wall": round(n / wall, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    out["meets_target_cpu"] = out["generate"]["images_per_s_cpu"] >= TARGET_IMAGES_PER_S
    out["meets_target_wall"] = out["generate"]["images_per_s_wall"] >= TARGET_IMAGES_PER_S
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="scans per measurement (default 40)")
    p.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    args = p.parse_args(argv)
    print(json.dumps(bench_fundus_generator(args.n, args.size), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
