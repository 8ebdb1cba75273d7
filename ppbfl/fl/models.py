"""Torch models (CPU) and their flat parameter vectors.

``get_flat(model) -> (d,) float32`` concatenates every parameter in ``model.parameters()``
order; ``set_flat(model, vector)`` is its inverse. Models: ``logreg`` (one linear layer),
``mlp`` (two hidden ReLU layers), ``cnn`` (two 3x3 conv layers for 8x8 digit images).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ppbfl.fl.errors import AggregationError, UnknownComponentError

__all__ = ["MODELS", "build_model", "get_flat", "set_flat", "n_params"]

MODELS = ("logreg", "mlp", "cnn")


class _CNN(nn.Module):
    """Small CNN for ``(batch, 64)`` inputs viewed as ``(batch, 1, 8, 8)`` images."""

    def __init__(self, image_shape: tuple[int, int], n_classes: int, channels: int = 8) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        h, w = image_shape[0] // 4, image_shape[1] // 4
        self.head = nn.Linear(2 * channels * h * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, *self.image_shape)
        return self.head(self.features(x).flatten(1))


def build_model(
    kind: str, n_features: int, n_classes: int, *, hidden: int = 32, image_shape: tuple[int, int] | None = None, seed: int = 0
) -> nn.Module:
    """Build a freshly initialised model; initial weights depend only on ``seed``."""
    torch.manual_seed(seed)
    if kind == "logreg":
        return nn.Linear(n_features, n_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    if kind == "cnn":
        if image_shape is None or image_shape[0] * image_shape[1] != n_features:
            raise UnknownComponentError("model for this dataset (cnn needs 8x8 images)", kind, ["logreg", "mlp"])
        return _CNN(image_shape, n_classes)
    raise UnknownComponentError("model", kind, list(MODELS))


def n_params(model: nn.Module) -> int:
    """Number of scalar parameters ``d``."""
    return sum(p.numel() for p in model.parameters())


def get_flat(model: nn.Module) -> np.ndarray:
    """All parameters as one ``(d,) float32`` vector (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().astype(np.float32, copy=True)


def set_flat(model: nn.Module, vector: np.ndarray) -> None:
    """Load a ``(d,)`` float vector into the model's parameters (inverse of :func:`get_flat`)."""
    vector = np.asarray(vector)
    if vector.shape != (n_params(model),):
        raise AggregationError(f"parameter vector has shape {vector.shape}, model needs ({n_params(model)},)")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            size = p.numel()
            p.copy_(torch.from_numpy(np.ascontiguousarray(vector[offset : offset + size], dtype=np.float32)).reshape(p.shape))
            offset += size
