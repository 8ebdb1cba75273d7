"""Local training (returns the update ``delta = local - global``) and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ppbfl.fl.models import get_flat, set_flat

__all__ = ["TrainSettings", "local_update", "evaluate", "predict"]


@dataclass(frozen=True)
class TrainSettings:
    """Local SGD settings: ``epochs`` passes over the device's data in shuffled mini-batches."""

    epochs: int = 1
    batch_size: int = 16
    lr: float = 0.1


def local_update(
    model: nn.Module,
    global_params: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    generator: torch.Generator,
) -> np.ndarray:
    """Train from ``global_params: (d,) float32`` on ``x: (n, f) float32``, ``y: (n,) int64``.

    Returns ``delta: (d,) float32 = local params - global params``. Shuffling uses ``generator``
    (so a seeded run is reproducible). ``n == 0`` gives a zero update.
    """
    set_flat(model, global_params)
    if len(y) == 0:
        return np.zeros_like(global_params)
    model.train()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    optimiser = torch.optim.SGD(model.parameters(), lr=settings.lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(settings.epochs):
        order = torch.randperm(len(yt), generator=generator)
        for start in range(0, len(yt), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            loss_fn(model(xt[batch]), yt[batch]).backward()
            optimiser.step()
    return get_flat(model) - global_params


def predict(model: nn.Module, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Predicted labels ``(n,) int64`` of the model with ``params`` on ``x: (n, f)``."""
    set_flat(model, params)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).argmax(dim=1).numpy().astype(np.int64)


def evaluate(model: nn.Module, params: np.ndarray, x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    """Accuracy and per-class recall ``(n_classes,) float64`` (NaN for a class absent from ``y``)."""
    pred = predict(model, params, x)
    recall = np.array([np.mean(pred[y == c] == c) if np.any(y == c) else np.nan for c in range(n_classes)])
    return float(np.mean(pred == y)), recall
