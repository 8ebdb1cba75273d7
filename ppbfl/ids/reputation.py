"""Per-device anomaly flags: the detector's evidence for the device reputation (DESIGN §7).

The trust update (``ppbfl.trust``, ``TrustKeeper.after_round(result, ids_flags=...)``) takes
``ids_flags: Mapping[int, int]`` -- device index -> number of this round's windows of that device's
telemetry that the detector classified as an attack (a plain ``int >= 0``; the trust record stores
it as a uint16). :func:`ids_flags` produces exactly that from the detector's predictions;
:func:`flag_summary` adds the windows seen and the flagged fraction for reports.

A gateway hands its counts to the edge node that signs them (:mod:`ppbfl.trust.ids_reports`) as a
JSON file per round, ``{"<device>": count}`` (:func:`write_flags`, ``ppbfl ids detect --flags-json``);
the node reads ``FOLDER/round-<r>.json`` when the coordinator asks for its report of round ``r``
(:class:`FlagsFolder`, ``ppbfl edge --ids-flags FOLDER``).

Who is flagged: a device whose *telemetry* looks like an attack -- it is being spoofed, flooded,
replayed or fed false readings, or it is itself misbehaving. The flag is evidence about the
device's data stream, which is why it lowers the weight of that device's model update; it is not
proof that the device is the attacker (see ``docs/ids.md``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppbfl.errors import ConfigError
from ppbfl.ids.errors import WindowShapeError

__all__ = ["DeviceFlags", "FlagsFolder", "UINT16_MAX", "flag_summary", "ids_flags", "read_flags", "write_flags"]

UINT16_MAX = 65535


@dataclass(frozen=True)
class DeviceFlags:
    """One device's windows this round and how many were flagged."""

    device: int
    windows: int
    flagged: int

    @property
    def fraction(self) -> float:
        """Flagged share of the device's windows (0 with no windows)."""
        return self.flagged / self.windows if self.windows else 0.0


def _check(devices: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d, p = np.asarray(devices), np.asarray(predictions)
    if d.ndim != 1 or d.shape != p.shape:
        raise WindowShapeError("devices/predictions", (d.shape, p.shape), "two (N,) arrays")
    if d.size and (not np.issubdtype(d.dtype, np.integer) or d.min() < 0):
        raise WindowShapeError("devices", d.dtype, "non-negative integer device indices")
    if p.size and (not np.issubdtype(p.dtype, np.integer) or p.min() < 0):
        raise WindowShapeError("predictions", p.dtype, "class indices >= 0 (0 = normal)")
    return d.astype(np.int64), p.astype(np.int64)


def flag_summary(devices: np.ndarray, predictions: np.ndarray, *, normal: int = 0) -> dict[int, DeviceFlags]:
    """Per device in ``devices: (N,) int`` (the device whose telemetry window ``i`` is), how many of
    its windows ``predictions: (N,) int`` (class indices) classify as anything but ``normal``."""
    d, p = _check(devices, predictions)
    return {
        int(k): DeviceFlags(int(k), int(np.sum(d == k)), int(np.sum((d == k) & (p != normal)))) for k in np.unique(d)
    }


def ids_flags(devices: np.ndarray, predictions: np.ndarray, *, normal: int = 0) -> dict[int, int]:
    """The trust update's ``ids_flags``: device -> flagged windows (Python ``int``, capped at
    :data:`UINT16_MAX`, the width of the trust record's field). Devices with no flagged window map to 0."""
    return {k: min(v.flagged, UINT16_MAX) for k, v in flag_summary(devices, predictions, normal=normal).items()}


def write_flags(path: str | os.PathLike, flags: Mapping[str, int] | Mapping[int, int]) -> None:
    """Write ``flags`` (device -> flagged windows, capped at :data:`UINT16_MAX`) to ``path`` as the
    JSON object ``{"<device>": count}`` that :func:`read_flags` reads."""
    Path(path).write_text(json.dumps({str(k): min(int(v), UINT16_MAX) for k, v in flags.items()}, sort_keys=True) + "\n")


def read_flags(path: str | os.PathLike) -> dict[int, int]:
    """The counts in ``path`` (:func:`write_flags`): device index -> count, both ints >= 0.

    Raises:
        ConfigError: key ``ids_flags``, naming the file: missing or unreadable, not a JSON object,
            a device that is not an index >= 0 or a count that is not an int in ``[0, 65535]``.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError("ids_flags", f"{path}: {error}") from None
    if not isinstance(doc, dict):
        raise ConfigError("ids_flags", f"{path}: not a JSON object of device -> count")
    flags = {}
    for key, count in doc.items():
        if not key.isdigit() or isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= UINT16_MAX:
            raise ConfigError("ids_flags", f"{path}: device {key!r} -> {count!r} is not a device index -> count in [0, {UINT16_MAX}]")
        flags[int(key)] = count
    return flags


@dataclass(frozen=True)
class FlagsFolder:
    """An edge node's IDS source (:attr:`ppbfl.protocol.edge_node.EdgeNode.ids_source`): round ``r``
    -> the counts its gateway's detector wrote to ``folder/round-<r>.json`` (:func:`read_flags`;
    no file: :class:`~ppbfl.errors.ConfigError`, so the node signs no report rather than a report of zeros)."""

    folder: Path

    def __call__(self, round: int) -> dict[int, int]:
        """The counts of ``round`` (see the class docstring)."""
        return read_flags(self.folder / f"round-{round}.json")
