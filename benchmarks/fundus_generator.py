"""How fast the retinal twin makes scans: images/s at a size, generation alone and with writing.

Run: `.venv/bin/python -m benchmarks.fundus_generator [--n 40] [--size 1024]`. Prints JSON.
`--separability` instead checks that referable disease is learnable at 224 px (a small CNN).

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


def referable_separability(
    n_train: int = 1600, n_test: int = 500, render: int = 320, epochs: int = 7, seed: int = 77
) -> dict[str, Any]:
    """Test AUC of a ~100k-parameter CNN for referable vs not at 224 px, gradable scans only.

    The twin's promise to the model factory: referable disease shows at model input size.
    Takes minutes (2 torch threads). GENERATOR_VERSION 1.3.0: 0.998 (1.2.0: 0.956 and 0.937).
    """
    import numpy as np
    import torch
    from torch import nn

    from shared.preprocess import PreprocessSpec, resize_for_model, to_tensor

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    spec = PreprocessSpec(size=224)

    def load(indices: range) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for i in indices:
            sample = generate_sample(seed, i, size=render, defect_rate=0.2)
            if sample.labels.quality != "reject":
                xs.append(to_tensor(resize_for_model(sample.image_bgr, spec), spec))
                ys.append(float(sample.labels.referable))
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys)

    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(i, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        )  # fmt: skip

    x_train, y_train = load(range(n_train))
    x_test, y_test = load(range(n_train, n_train + n_test))
    net = nn.Sequential(
        nn.Conv2d(3, 24, 4, 4, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True),
        block(24, 48), block(48, 96), block(96, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1),
    )  # fmt: skip
    steps = epochs * ((len(x_train) + 31) // 32)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_train))
        for b in range(0, len(x_train), 32):
            idx = order[b : b + 32]
            xb = x_train[idx].flip(3) if torch.rand(1).item() < 0.5 else x_train[idx]
            loss = loss_fn(net(xb).squeeze(1), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        score = torch.cat([net(x_test[b : b + 64]).squeeze(1) for b in range(0, len(x_test), 64)])
    pos, neg = score[y_test == 1], score[y_test == 0]
    auc = float((pos[:, None] > neg[None, :]).float().mean())  # Mann-Whitney U / (n1 n0)
    return {"test_auc": round(auc, 4), "n_train": len(x_train), "n_test": len(x_test),
            "render_size": render, "model_input": 224, "epochs": epochs}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="scans per measurement (default 40)")
    p.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    p.add_argument(
        "--separability",
        action="store_true",
        help="instead: train a small CNN and report its referable AUC at 224 px (minutes)",
    )
    args = p.parse_args(argv)
    result = (
        referable_separability() if args.separability else bench_fundus_generator(args.n, args.size)
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
