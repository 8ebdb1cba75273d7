"""A seeded generator of IoMT device telemetry and network-flow windows with labelled attacks.

Nothing downloads at run time, so the detector trains and is tested on data made here. What it
models (and what it does not) is written down in ``docs/ids.md``; in short:

* **Devices** of four types (:data:`DEVICE_TYPES`: ECG monitor, pulse oximeter, infusion pump,
  glucose monitor) differ in packet rate, packet size, timing and path, and in how often each
  attack hits them (``attack_prior``), so a by-device or Dirichlet split is non-IID in both
  features and labels.
* Each device emits a **stream** of records, one per step, with the ten features of
  :data:`FEATURES` (what a gateway sees per record: flow statistics of the last second plus the
  device's sensor reading, z-scored against the device type's normal range). The stream is cut
  into **segments** of ``window`` steps; each segment is normal or one attack, drawn from the
  device type's prior, so the windows the detector classifies are the segments (labels are pure;
  a stream read with a sliding window also shows mixed windows at segment borders).
* **Attacks** (:data:`CLASSES`), each with an intensity ``u ~ U(0.2, 1)`` so weak attacks overlap
  normal traffic: ``spoofing`` (a man in the middle alters sensor values by a slow ramp and adds
  delay; half of them add a hop), ``dos`` (flooding: packet rate up 10^(1+u)x, small packets, SYN
  share up, congestion delay, lost readings), ``replay`` (an earlier normal segment of the same
  device re-sent: its readings and flow, with old timestamps, the sequence number jumping back),
  ``injection`` (false sensor values: spikes or a step to physiologically implausible readings,
  network unchanged). Normal segments carry benign anomalies too (:data:`BENIGN_EVENT_RATE`:
  motion artefacts, congestion), so a detector has to tell them from attacks.

Randomness is NumPy's PCG64 from ``seed`` only (simulation data, not key material).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ppbfl.errors import ConfigError

__all__ = [
    "CLASSES", "FEATURES", "DEVICE_TYPES", "DeviceType", "GeneratorConfig", "IDSData", "generate", "summary",
]

CLASSES = ("normal", "spoofing", "dos", "replay", "injection")
"""Class names; index 0 is normal traffic."""

FEATURES = (
    "log_pkt_rate", "pkt_size", "iat_jitter_ms", "syn_ratio", "latency_ms",
    "hop_count", "seq_delta", "log_ts_age", "sensor_z", "sensor_delta",
)
"""Per-record features: log10 packets/s, mean packet bytes, inter-arrival jitter (ms), SYN share of
packets, round trip to the gateway (ms), hops, sequence-number increment since the previous record,
log10 of (receive time - device timestamp, s), sensor reading z-scored against the device type's
normal range, and its change since the previous record."""


@dataclass(frozen=True)
class DeviceType:
    """Baseline traffic of one device type and its per-segment class prior (sums to 1, CLASSES order)."""

    name: str
    pkt_rate: float
    pkt_size: float
    jitter_ms: float
    latency_ms: float
    hops: int
    uses_tcp: bool
    attack_prior: tuple[float, float, float, float, float]


MIN_INTENSITY = 0.2
"""Attack intensities are drawn from ``U(MIN_INTENSITY, 1)``: weak attacks overlap normal traffic."""

BENIGN_EVENT_RATE = 0.15
"""Share of normal segments with a benign anomaly (a motion artefact in the sensor readings, or
network congestion): normal traffic that looks suspicious, the source of false alarms."""

DEVICE_TYPES = (
    DeviceType("ecg_monitor", 40.0, 300.0, 2.0, 8.0, 2, True, (0.5, 0.15, 0.15, 0.1, 0.1)),
    DeviceType("pulse_oximeter", 4.0, 120.0, 5.0, 12.0, 2, True, (0.5, 0.1, 0.1, 0.1, 0.2)),
    DeviceType("infusion_pump", 1.0, 200.0, 20.0, 20.0, 3, True, (0.5, 0.05, 0.25, 0.1, 0.1)),
    DeviceType("glucose_monitor", 0.2, 90.0, 50.0, 30.0, 3, False, (0.5, 0.1, 0.05, 0.25, 0.1)),
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Size and seed of a generated data set.

    ``devices`` devices (types assigned round robin over :data:`DEVICE_TYPES`), each with
    ``segments`` segments of ``window`` steps; the last ``test_fraction`` of every device's segments
    (its most recent traffic) are the test split.
    """

    devices: int = 40
    segments: int = 60
    window: int = 16
    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        for key, low in (("devices", 1), ("segments", 2), ("window", 2)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"ids.{key}", f"must be an integer >= {low}, got {value!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError("ids.test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")


@dataclass(frozen=True)
class IDSData:
    """Generated windows and their split.

    ``windows: (N, T, F) float32`` (raw feature units, not standardised), ``labels: (N,) int64``
    in ``[0, len(CLASSES))``, ``devices: (N,) int64`` device index, ``device_types: (N,) int64``
    index into :data:`DEVICE_TYPES`, ``segment: (N,) int64`` position in the device's stream,
    ``test: (N,) bool`` the test split. Windows are ordered by device, then segment, so
    ``windows[devices == k]`` read row by row is device ``k``'s stream.
    """

    windows: np.ndarray
    labels: np.ndarray
    devices: np.ndarray
    device_types: np.ndarray
    segment: np.ndarray
    test: np.ndarray
    config: GeneratorConfig
    class_names: tuple[str, ...] = CLASSES
    feature_names: tuple[str, ...] = FEATURES
    info: dict[str, object] = field(default_factory=dict)

    @property
    def train(self) -> np.ndarray:
        """Boolean mask of the training split."""
        return ~self.test


def _normal_segment(kind: DeviceType, rng: np.random.Generator, steps: int, sensor: float) -> tuple[np.ndarray, float]:
    """One normal segment ``(steps, F)`` continuing the sensor AR(1) process from ``sensor``."""
    x = np.empty((steps, len(FEATURES)))
    x[:, 0] = np.log10(kind.pkt_rate) + rng.normal(0.0, 0.08, steps)
    x[:, 1] = kind.pkt_size * np.exp(rng.normal(0.0, 0.1, steps))
    x[:, 2] = kind.jitter_ms * np.exp(rng.normal(0.0, 0.3, steps))
    x[:, 3] = np.clip(rng.normal(0.02 if kind.uses_tcp else 0.0, 0.01, steps), 0.0, 1.0) if kind.uses_tcp else 0.0
    x[:, 4] = kind.latency_ms * np.exp(rng.normal(0.0, 0.2, steps))
    x[:, 5] = kind.hops
    x[:, 6] = 1.0 + (rng.random(steps) < 0.02)
    x[:, 7] = np.log10(x[:, 4] / 2000.0 + np.abs(rng.normal(0.0, 0.005, steps)) + 1e-3)
    values = np.empty(steps)
    for t in range(steps):
        sensor = 0.9 * sensor + rng.normal(0.0, 0.3)
        values[t] = sensor
    x[:, 8] = values
    event = rng.random()
    if event < BENIGN_EVENT_RATE / 2:  # motion artefact: one or two implausible readings, nothing malicious
        spikes = rng.integers(steps, size=int(rng.integers(1, 3)))
        x[spikes, 8] = rng.choice([-1.0, 1.0], len(spikes)) * rng.uniform(2.5, 4.5, len(spikes))
    elif event < BENIGN_EVENT_RATE:  # benign congestion: slower, jittery path for part of the segment
        start = int(rng.integers(steps))
        x[start:, 4] *= rng.uniform(1.5, 3.0)
        x[start:, 2] *= rng.uniform(1.5, 3.0)
        x[start:, 7] = np.log10(10 ** x[start:, 7] + x[start:, 4] / 2000.0)
    return x, sensor


def _attack(label: int, x: np.ndarray, kind: DeviceType, rng: np.random.Generator, history: list[np.ndarray], age_s: float) -> np.ndarray:
    """Turn the normal segment ``x`` into class ``label`` (intensity ``u ~ U(MIN_INTENSITY, 1)``)."""
    steps = len(x)
    u = rng.uniform(MIN_INTENSITY, 1.0)
    x = x.copy()
    if label == 1:  # spoofing / MITM data alteration
        x[:, 8] += np.linspace(0.0, 1.5 * u, steps) * rng.choice([-1.0, 1.0])
        x[:, 4] += rng.uniform(10.0, 40.0) * u * np.exp(rng.normal(0.0, 0.2, steps))
        x[:, 2] *= 1.0 + u
        x[:, 5] += float(rng.random() < 0.5)
        x[:, 7] = np.log10(10 ** x[:, 7] + x[:, 4] / 2000.0)
    elif label == 2:  # DoS / flooding
        x[:, 0] += 1.0 + u + rng.normal(0.0, 0.1, steps)
        x[:, 1] = rng.uniform(60.0, 80.0, steps)
        x[:, 2] *= 0.3
        x[:, 3] = np.clip(0.3 + 0.6 * u + rng.normal(0.0, 0.05, steps), 0.0, 1.0)
        x[:, 4] *= 1.0 + 2.0 * u
        x[:, 6] += rng.random(steps) < 0.3 * u
        x[:, 7] = np.log10(10 ** x[:, 7] * (1.0 + 3.0 * u))
    elif label == 3:  # replay of an earlier normal segment of this device
        if history:
            x = history[int(rng.integers(len(history)))].copy()
        x[0, 6] = -float(rng.integers(steps, 50 * steps))
        x[:, 7] = np.log10(10 ** x[:, 7] + u * u * age_s)
    elif label == 4:  # sensor-value injection
        if rng.random() < 0.5:
            spikes = rng.random(steps) < 0.3
            spikes[rng.integers(steps)] = True
            x[spikes, 8] = rng.choice([-1.0, 1.0], spikes.sum()) * rng.uniform(3.0, 3.0 + 4.0 * u, spikes.sum())
        else:
            onset = int(rng.integers(steps // 2))
            x[onset:, 8] = rng.choice([-1.0, 1.0]) * (2.5 + 3.0 * u) + rng.normal(0.0, 0.05, steps - onset)
    return x


def generate(config: GeneratorConfig | None = None) -> IDSData:
    """Generate the windows of ``config`` (default :class:`GeneratorConfig`); same config, same bytes."""
    config = GeneratorConfig() if config is None else config
    rng = np.random.default_rng(config.seed)
    steps, n_seg = config.window, config.segments
    n_test = min(n_seg - 1, max(1, round(config.test_fraction * n_seg)))
    windows: list[np.ndarray] = []
    labels: list[int] = []
    devices: list[int] = []
    kinds: list[int] = []
    segment: list[int] = []
    for device in range(config.devices):
        k = device % len(DEVICE_TYPES)
        kind = DEVICE_TYPES[k]
        sensor = rng.normal(0.0, 0.5)
        history: list[np.ndarray] = []
        prior = np.asarray(kind.attack_prior)
        for s in range(n_seg):
            label = 0 if s == 0 else int(rng.choice(len(CLASSES), p=prior))
            clean, sensor = _normal_segment(kind, rng, steps, sensor)
            x = clean if label == 0 else _attack(label, clean, kind, rng, history, age_s=steps * (s + 1) / 4.0)
            if label == 0:
                history.append(clean)
            x[:, 9] = np.diff(x[:, 8], prepend=windows[-1][-1, 8] if s else x[0, 8])
            windows.append(x)
            labels.append(label)
            devices.append(device)
            kinds.append(k)
            segment.append(s)
    seg = np.asarray(segment, dtype=np.int64)
    return IDSData(
        windows=np.stack(windows).astype(np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        devices=np.asarray(devices, dtype=np.int64),
        device_types=np.asarray(kinds, dtype=np.int64),
        segment=seg,
        test=seg >= n_seg - n_test,
        config=config,
    )


def summary(data: IDSData) -> dict[str, object]:
    """Summary statistics: windows per class (and per device type), per-class feature means.

    Returns plain lists/dicts (JSON-ready): ``windows``, ``class_counts`` ``{class: n}``,
    ``class_counts_by_type`` ``{type: {class: n}}``, ``feature_means`` ``{class: {feature: mean}}``
    over all steps of that class's windows.
    """
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    by_type = {
        t.name: {c: int(np.sum((data.labels == i) & (data.device_types == k))) for i, c in enumerate(data.class_names)}
        for k, t in enumerate(DEVICE_TYPES)
    }
    means = {
        c: {f: round(float(data.windows[data.labels == i][:, :, j].mean()), 3) for j, f in enumerate(data.feature_names)}
        for i, c in enumerate(data.class_names) if counts[i]
    }
    return {
        "windows": len(data.labels), "window_steps": data.config.window, "devices": data.config.devices,
        "class_counts": {c: int(n) for c, n in zip(data.class_names, counts)},
        "class_counts_by_type": by_type, "feature_means": means,
    }
