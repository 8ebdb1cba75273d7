"""Model, data and training: plain PyTorch, nothing ppbfl-specific."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

ROOT_SAMPLES = 20


def make_model() -> nn.Module:
    """Logistic regression over the 30 standardised features."""
    torch.manual_seed(0)
    return nn.Linear(30, 1)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(data.target, dtype=torch.float32)


def load_partition(partition: int, partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Device ``partition``'s IID shard (the root set held by the server excluded)."""
    x, y = _data()
    order = np.random.default_rng(0).permutation(len(y))[ROOT_SAMPLES:]
    idx = np.array_split(order, partitions)[partition]
    return x[idx], y[idx]


def load_root() -> tuple[torch.Tensor, torch.Tensor]:
    """The server's small clean root set (FLTrust): it defines each round's reference update."""
    x, y = _data()
    idx = np.random.default_rng(0).permutation(len(y))[:ROOT_SAMPLES]
    return x[idx], y[idx]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> float:
    """Mini-batch SGD (batch 16); returns the last epoch's mean loss."""
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(len(y), generator=generator).split(16):
            optimiser.zero_grad()
            loss = loss_fn(model(x[batch]).squeeze(1), y[batch])
            loss.backward()
            optimiser.step()
            total += float(loss) * len(batch)
    return total / len(y)


def accuracy(model: nn.Module) -> float:
    """Accuracy on the whole dataset."""
    x, y = _data()
    with torch.no_grad():
        return float(((model(x).squeeze(1) > 0).float() == y).float().mean())
