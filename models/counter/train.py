"""Train the counter on rendered frames; report mean absolute error per count and condition."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.counter.data import CounterData
from models.counter.model import INPUT_SIZE, CounterNet
from models.progress import bar as progress_bar
from shared.counter_input import counter_input


def to_tensor(images: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 BGR frames -> the model's input, by the edge's own preprocessing function."""
    return torch.from_numpy(counter_input(list(images), size))


def train(
    data: CounterData, epochs: int, seed: int, batch: int = 64, progress: bool = True
) -> CounterNet:
    torch.manual_seed(seed)
    model = CounterNet()
    x, y = to_tensor(data.images), torch.from_numpy(data.counts)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.SmoothL1Loss()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with progress_bar(total=steps, desc="training counter", disable=not progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):
                idx = order[i : i + batch]
                xb = x[idx]
                if torch.rand(1, generator=gen).item() < 0.5:  # lanes mirror left-right
                    xb = xb.flip(3)
                loss = loss_fn(model(xb), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


@torch.no_grad()
def predict(model: CounterNet, images: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [model(to_tensor(images[i : i + batch])).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out)


def evaluate(
    model: CounterNet, data: CounterData
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
    """Overall MAE / bias per count, and MAE per camera condition."""
    pred = predict(model, data.images)
    err = pred - data.counts
    metrics = {
        "queue_mae": float(np.abs(err[:, 0]).mean()),
        "approaching_mae": float(np.abs(err[:, 1]).mean()),
        "queue_bias": float(err[:, 0].mean()),
        "approaching_bias": float(err[:, 1].mean()),
        "n_test": float(len(err)),
    }
    conds = np.asarray(data.conditions)
    by_condition = {
        c: {
            "queue_mae": float(np.abs(err[conds == c, 0]).mean()),
            "approaching_mae": float(np.abs(err[conds == c, 1]).mean()),
        }
        for c in sorted(set(data.conditions))
    }
    return metrics, {"condition": by_condition}
