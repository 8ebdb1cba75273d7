"""The hospital gateways of ``ppbfl demo``: per round, each edge node's gateway runs the detector
on the device telemetry it saw and writes its counts where its node reads them.

Telemetry (:func:`round_telemetry`): the seeded generator (:mod:`ppbfl.ids.generator`) makes one
stream per device per round; an honest device keeps only its normal segments (with the
generator's benign anomalies, :data:`~ppbfl.ids.generator.BENIGN_EVENT_RATE`: the false alarms),
a malicious device its whole stream (normal segments and attacks drawn from its device type's
prior, about half). Each gateway sees its own seeded share of every device's windows
(:func:`gateway_view`: different gateways see different windows, as gateways on different network
paths would), classifies them with the detector and counts the flagged ones per device
(:func:`ppbfl.ids.reputation.ids_flags`). :class:`Gateways` writes node ``j``'s counts of round
``r`` to ``folder/edge-j/round-<r>.json`` (:func:`~ppbfl.ids.reputation.write_flags`), the file
the node signs its report from (:class:`~ppbfl.ids.reputation.FlagsFolder`, ``ppbfl edge --ids-flags``).

The detector is the one shipped in the package (:func:`packaged_detector`: ``ppbfl/ids/detector.pt``,
a copy of ``reports/ids/detector.pt``, the secure-FL LSTM that ``ppbfl ids train`` produced and
``reports/ids/README.md`` scores). Randomness is NumPy's PCG64 from the seeds (simulation, not key material).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from ppbfl.errors import ConfigError
from ppbfl.ids.detector import Detector
from ppbfl.ids.generator import GeneratorConfig, generate
from ppbfl.ids.reputation import ids_flags, write_flags

__all__ = ["Gateways", "RoundTelemetry", "gateway_view", "packaged_detector", "round_telemetry"]

SEGMENTS = 12
"""Segments (windows) per device stream per round."""

SHARE = 0.8
"""Share of every device's windows one gateway sees."""


def packaged_detector() -> Detector:
    """The detector shipped in the package (``ppbfl/ids/detector.pt``; read offline, ``weights_only``).

    Raises:
        ModelFileError: the file is missing or not a detector.
    """
    with as_file(files("ppbfl.ids").joinpath("detector.pt")) as path:
        return Detector.load(path)


@dataclass(frozen=True)
class RoundTelemetry:
    """One round's windows: ``windows (N, T, F) float32``, ``devices (N,) int64`` (whose window),
    ``labels (N,) int64`` (the generator's truth, 0 = normal; never shown to a gateway)."""

    windows: np.ndarray
    devices: np.ndarray
    labels: np.ndarray


def round_telemetry(devices: int, malicious: Collection[int], round: int, seed: int, *, window: int = 16, segments: int = SEGMENTS) -> RoundTelemetry:
    """The telemetry of ``round``: ``segments`` windows of ``window`` records per device stream
    from the generator seeded by ``(seed, round)``; honest devices keep their normal windows only,
    the ``malicious`` ones all (module docstring).

    Raises:
        ConfigError: ``devices``, ``segments`` or ``window`` out of range (the generator's keys), a
            negative ``seed`` or ``round``.
    """
    if seed < 0 or round < 0:
        raise ConfigError("ids.seed", f"seed {seed} and round {round} must be >= 0")
    data = generate(GeneratorConfig(devices=devices, segments=segments, window=window, seed=seed * 1_000_003 + round))
    keep = (data.labels == 0) | np.isin(data.devices, np.asarray(sorted(malicious), dtype=np.int64))
    return RoundTelemetry(data.windows[keep], data.devices[keep], data.labels[keep])


def gateway_view(devices: np.ndarray, node: int, round: int, seed: int, share: float = SHARE) -> np.ndarray:
    """Indices (ascending) of the windows gateway ``node`` sees in ``round``: of every device's
    windows in ``devices (N,) int``, ``round(share * count)`` drawn without replacement, seeded by
    ``(seed, node, round)``.

    Raises:
        ConfigError: ``share`` outside ``(0, 1]``.
    """
    if not 0.0 < share <= 1.0:
        raise ConfigError("ids.share", f"{share!r}: expected a share of the windows in (0, 1]")
    rng = np.random.default_rng([seed, node, round])
    seen = [rng.choice(idx, size=_round_half(share * idx.size), replace=False) for idx in (np.flatnonzero(devices == k) for k in np.unique(devices))]
    return np.sort(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.int64)


def _round_half(x: float) -> int:
    """``x`` rounded half up (Python's ``round`` rounds half to even)."""
    return int(np.floor(x + 0.5))


@dataclass
class Gateways:
    """Node ``j``'s gateway for each ``j`` of :meth:`observe`: the ``detector``, the ``devices``
    registered devices of which ``malicious`` misbehave, the simulation ``seed``; counts go to
    ``folder/edge-j/round-<r>.json``."""

    detector: Detector
    folder: Path
    devices: int
    malicious: Collection[int]
    seed: int
    share: float = SHARE

    def observe(self, round: int, nodes: Iterable[int]) -> dict[int, dict[int, int]]:
        """Each of ``nodes`` classifies its view of ``round``'s telemetry and writes its counts;
        returns node -> device -> flagged windows (every device it saw, zeros included)."""
        telemetry = round_telemetry(self.devices, self.malicious, round, self.seed, window=self.detector.window)
        counts = {}
        for j in nodes:
            seen = gateway_view(telemetry.devices, j, round, self.seed, self.share)
            counts[j] = ids_flags(telemetry.devices[seen], self.detector.classify(telemetry.windows[seen]))
            (self.folder / f"edge-{j}").mkdir(parents=True, exist_ok=True)
            write_flags(self.folder / f"edge-{j}" / f"round-{round}.json", counts[j])
        return counts
