"""The LSTM window classifier: ``(batch, T, F) float32 -> (batch, n_classes)`` logits.

One LSTM layer over the window's ``T`` records, a linear head on the last hidden state. Its
parameters are one flat vector (:func:`ppbfl.fl.models.get_flat`), so local training, poisoning,
the secure aggregation and the FedAvg baseline treat it like any other model.

Size (``F = 10`` features, ``hidden = 32``, 5 classes): ``4 h (F + h) + 8 h`` LSTM weights and
biases plus ``h C + C`` head = 5797 parameters, 23 KiB as float32. Per stream a gateway keeps the
last ``T`` records (``T F`` floats) and, while classifying, the ``(h, c)`` state (``2 h`` floats).
"""

from __future__ import annotations

import torch
from torch import nn

from ppbfl.ids.errors import WindowShapeError

__all__ = ["LSTMClassifier", "build_lstm", "lstm_param_count", "model_bytes"]


class LSTMClassifier(nn.Module):
    """One-layer LSTM (``hidden`` units) over ``(batch, T, n_features)`` and a linear head."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 32) -> None:
        super().__init__()
        self.n_features, self.n_classes, self.hidden = n_features, n_classes, hidden
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` of windows ``x: (batch, T, n_features)``."""
        if x.dim() != 3 or x.shape[2] != self.n_features:
            raise WindowShapeError("windows", tuple(x.shape), f"(batch, T, {self.n_features})")
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def build_lstm(n_features: int, n_classes: int, *, hidden: int = 32, seed: int = 0) -> LSTMClassifier:
    """A freshly initialised :class:`LSTMClassifier`; the initial weights depend only on ``seed``."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return LSTMClassifier(n_features, n_classes, hidden)
    finally:
        torch.random.set_rng_state(generator_state)


def lstm_param_count(n_features: int, n_classes: int, hidden: int) -> int:
    """Closed-form parameter count ``4h(F + h) + 8h + hC + C`` (PyTorch keeps two bias vectors)."""
    return 4 * hidden * (n_features + hidden) + 8 * hidden + hidden * n_classes + n_classes


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers (what a gateway holds in memory for the weights)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
