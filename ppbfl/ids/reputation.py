"""Per-device anomaly flags: the detector's evidence for the device reputation (DESIGN §7).

The trust update (``ppbfl.trust``, ``TrustKeeper.after_round(result, ids_flags=...)``) takes
``ids_flags: Mapping[int, int]`` -- device index -> number of this round's windows of that device's
telemetry that the detector classified as an attack (a plain ``int >= 0``; the trust record stores
it as a uint16). :func:`ids_flags` produces exactly that from the detector's predictions;
:func:`flag_summary` adds the windows seen and the flagged fraction for reports.

Who is flagged: a device whose *telemetry* looks like an attack -- it is being spoofed, flooded,
replayed or fed false readings, or it is itself misbehaving. The flag is evidence about the
device's data stream, which is why it lowers the weight of that device's model update; it is not
proof that the device is the attacker (see ``docs/ids.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.ids.errors import WindowShapeError

__all__ = ["DeviceFlags", "UINT16_MAX", "flag_summary", "ids_flags"]

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
