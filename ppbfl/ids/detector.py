"""Per-window inference for a gateway: :class:`Detector` (a trained LSTM plus its feature scaling)
and :class:`StreamDetector` (per-device sliding windows over a stream of records, alerts as they
happen).

The scaling ``(x - mean) / std`` uses statistics the server computes on its own clean root set
(the FLTrust root set of :mod:`ppbfl.ids.federated`), so no device's data is revealed for it.

A saved detector is one ``torch.save`` file of tensors, strings and numbers, read back with
``torch.load(weights_only=True)``: a file from an untrusted source cannot run code when loaded,
and every field is checked (:class:`~ppbfl.ids.errors.ModelFileError` names the bad one).
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from ppbfl.ids.errors import ModelFileError, StreamError, WindowShapeError
from ppbfl.ids.model import LSTMClassifier

__all__ = ["Alert", "Detector", "StreamDetector", "read_stream", "write_stream_csv"]

FORMAT = "ppbfl-ids-detector/1"


@dataclass
class Detector:
    """A trained classifier over windows ``(T, F)`` of raw feature values.

    ``mean``, ``std``: ``(F,) float32`` feature scaling; ``class_names[0]`` is normal traffic.
    """

    model: LSTMClassifier
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    window: int

    def __post_init__(self) -> None:
        f = len(self.feature_names)
        self.mean = np.asarray(self.mean, dtype=np.float32)
        self.std = np.asarray(self.std, dtype=np.float32)
        if self.mean.shape != (f,) or self.std.shape != (f,) or not (self.std > 0).all():
            raise WindowShapeError("mean/std", (self.mean.shape, self.std.shape), f"({f},) each, std > 0")
        if self.model.n_features != f or self.model.n_classes != len(self.class_names):
            raise WindowShapeError("model", (self.model.n_features, self.model.n_classes), f"({f} features, {len(self.class_names)} classes)")
        self.model.eval()

    def scale(self, windows: np.ndarray) -> np.ndarray:
        """``(N, T, F)`` raw windows -> standardised float32 (checked: shape and finiteness)."""
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 3 or w.shape[1:] != (self.window, len(self.feature_names)):
            raise WindowShapeError("windows", w.shape, f"(N, {self.window}, {len(self.feature_names)})")
        if not np.isfinite(w).all():
            raise WindowShapeError("windows", "non-finite values", "finite feature values")
        return (w - self.mean) / self.std

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C) float32`` of raw windows ``(N, T, F)``."""
        x = torch.from_numpy(self.scale(windows))
        with torch.inference_mode():
            return torch.softmax(self.model(x), dim=1).numpy()

    def classify(self, windows: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(N,) int64``."""
        return self.probabilities(windows).argmax(axis=1).astype(np.int64)

    def classify_one(self, window: np.ndarray) -> tuple[int, float]:
        """The per-window path: one ``(T, F)`` window -> ``(class index, its probability)``."""
        p = self.probabilities(np.asarray(window)[None])[0]
        k = int(p.argmax())
        return k, float(p[k])

    def save(self, path: str | Path) -> None:
        """Write the detector to ``path`` (see the module docstring)."""
        torch.save(
            {
                "format": FORMAT, "hidden": self.model.hidden, "window": self.window,
                "class_names": list(self.class_names), "feature_names": list(self.feature_names),
                "mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std),
                "state": self.model.state_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """Read a detector written by :meth:`save`.

        Raises:
            ModelFileError: missing or unreadable file, not a detector, a field of the wrong type or shape.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(str(path), "no such file")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a file that is not its format
            raise ModelFileError(str(path), f"not a saved detector ({type(exc).__name__})") from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ModelFileError(str(path), f"not a {FORMAT} file")
        try:
            classes = tuple(str(c) for c in blob["class_names"])
            features = tuple(str(f) for f in blob["feature_names"])
            hidden, window = int(blob["hidden"]), int(blob["window"])
            if not (1 <= hidden <= 1024 and 1 <= window <= 4096 and len(classes) >= 2 and features):
                raise ModelFileError(str(path), f"implausible sizes hidden={hidden}, window={window}, {len(classes)} classes")
            model = LSTMClassifier(len(features), len(classes), hidden)
            model.load_state_dict(blob["state"])
            return cls(model, blob["mean"].numpy(), blob["std"].numpy(), classes, features, window)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise ModelFileError(str(path), f"bad field ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class Alert:
    """A window the detector classified as an attack: the stream ``row`` (1-based) that completed
    it, the ``device``, the class and its probability."""

    row: int
    device: str
    label: str
    confidence: float

    def __str__(self) -> str:
        return f"ALERT row={self.row} device={self.device} class={self.label} p={self.confidence:.3f}"


@dataclass
class StreamDetector:
    """Sliding windows per device over a stream of records.

    Each device keeps its last ``detector.window`` records; once it has that many, every
    ``stride``-th record classifies the window. At most ``max_devices`` devices are tracked (a
    stream that names more is refused, so forged device ids cannot exhaust memory).
    ``flagged[device]`` / ``seen[device]`` count attack windows and classified windows.
    """

    detector: Detector
    stride: int = 1
    max_devices: int = 100_000
    flagged: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    _buffers: dict[str, deque[np.ndarray]] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)

    def push(self, row: int, device: str, record: np.ndarray) -> Alert | None:
        """Add one record ``(F,) float`` of ``device``; returns an alert when its window is an attack."""
        buffer = self._buffers.get(device)
        if buffer is None:
            if len(self._buffers) >= self.max_devices:
                raise StreamError("<stream>", row, "device", f"more than {self.max_devices} devices")
            buffer = self._buffers[device] = deque(maxlen=self.detector.window)
            self._count[device] = 0
        buffer.append(record)
        self._count[device] += 1
        if len(buffer) < self.detector.window or (self._count[device] - self.detector.window) % self.stride:
            return None
        k, p = self.detector.classify_one(np.stack(buffer))
        self.seen[device] = self.seen.get(device, 0) + 1
        if k == 0:
            return None
        self.flagged[device] = self.flagged.get(device, 0) + 1
        return Alert(row, device, self.detector.class_names[k], p)


def read_stream(handle: TextIO, features: tuple[str, ...], name: str = "<stream>") -> Iterator[tuple[int, str, np.ndarray]]:
    """Yield ``(row, device, record (F,) float32)`` from a CSV with a ``device`` column and every
    name of ``features`` (other columns are ignored), one line at a time.

    Raises:
        StreamError: a missing column (row 0), or a value that is not a finite number.
    """
    reader = csv.DictReader(handle)
    header = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = header
    for column in ("device", *features):
        if column not in header:
            raise StreamError(name, 0, column, f"missing from the header (need 'device' and {', '.join(features)})")
    for row, line in enumerate(reader, start=1):
        record = np.empty(len(features), dtype=np.float32)
        for j, column in enumerate(features):
            text = line.get(column)
            try:
                value = float(text) if text is not None else float("nan")
            except ValueError:
                value = float("nan")
            if not np.isfinite(value):
                raise StreamError(name, row, column, f"{text!r} is not a finite number")
            record[j] = value
        yield row, str(line["device"]).strip(), record


def write_stream_csv(windows: np.ndarray, devices: np.ndarray, labels: np.ndarray, features: tuple[str, ...],
                     class_names: tuple[str, ...], path: str | Path) -> int:
    """Write windows ``(N, T, F)`` of several devices as one interleaved stream CSV (columns
    ``device, step, <features>, label``): every device's windows in the given order, the devices'
    records interleaved step by step as a gateway would receive them. Returns the rows written."""
    per_device = {int(k): np.flatnonzero(devices == k) for k in np.unique(devices)}
    rows = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device", "step", *features, "label"])
        longest = max((len(v) for v in per_device.values()), default=0)
        for i in range(longest):
            for t in range(windows.shape[1]):
                for k, idx in per_device.items():
                    if i < len(idx):
                        w = idx[i]
                        writer.writerow([k, i * windows.shape[1] + t, *(f"{v:.6g}" for v in windows[w, t]), class_names[labels[w]]])
                        rows += 1
    return rows
