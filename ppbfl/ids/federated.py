"""Train the LSTM detector through the secure federated pipeline, with baselines in the same run.

Per run (:func:`train_and_compare`, everything derived from ``config.seed``):

1. generate the windows (:mod:`ppbfl.ids.generator`); the server keeps ``root_size`` clean
   training windows (FLTrust's root set; removed from the devices' data) and computes the feature
   scaling on them; every IoMT device is one FL client holding its own training windows
   (``partition="device"``, non-IID by construction) or the pool is split Dirichlet(alpha) by label;
2. ``round(malicious_fraction * clients)`` clients poison (:mod:`ppbfl.fl.attacks`; default: sign
   flip boosted 5x, which cancels the honest sum under plain averaging);
3. **secure FL**: each round every client trains from the global LSTM
   (:func:`ppbfl.fl.runner.train_round`), and the updates go through the ``ppbfl_secure`` rule
   (:class:`~ppbfl.fl.secure_aggregator.SecureCosineAggregator`: fixed-point encoding, Shamir
   sharing to ``n`` edge nodes, share-consistency check, cosine verification on shares against the
   root-set update, weighted aggregation on shares, robust reconstruction -- the real protocol,
   in process);
4. baselines on the same data and split: plaintext FedAvg with the same attackers, FedAvg without
   attackers, the same LSTM trained centrally on all device data, an MLP on flattened windows,
   a random forest and gradient boosting (scikit-learn);
5. every model is scored on the test windows (:func:`ppbfl.ids.metrics.detection_metrics`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ppbfl.errors import ConfigError
from ppbfl.fl.aggregators import AggregationContext, make_aggregator
from ppbfl.fl.attacks import make_attack
from ppbfl.fl.datasets import Dataset
from ppbfl.fl.models import build_model, get_flat, set_flat
from ppbfl.fl.partition import dirichlet_partition
from ppbfl.fl.runner import device_generator, train_round
from ppbfl.fl.training import TrainSettings, local_update, predict
from ppbfl.ids.detector import Detector
from ppbfl.ids.generator import GeneratorConfig, IDSData, generate
from ppbfl.ids.metrics import detection_metrics
from ppbfl.ids.model import build_lstm

__all__ = ["IDSTrainConfig", "IDSRunResult", "train_and_compare", "root_scaling"]

FL_RULES = (("secure_fl", "ppbfl_secure", True), ("fedavg_attacked", "fedavg", True), ("fedavg_clean", "fedavg", False))
BASELINES = ("central_lstm", "mlp", "random_forest", "gradient_boosting")


@dataclass(frozen=True)
class IDSTrainConfig:
    """One training run (see the module docstring). ``t``/``n``: Shamir threshold and edge nodes."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    hidden: int = 32
    rounds: int = 40
    local_epochs: int = 3
    batch_size: int = 32
    lr: float = 0.5
    central_epochs: int = 20
    root_size: int = 100
    partition: str = "device"
    clients: int = 20
    alpha: float = 0.5
    malicious_fraction: float = 0.2
    attack: str = "sign_flip"
    attack_params: dict[str, Any] = field(default_factory=lambda: {"factor": 5.0})
    t: int = 3
    n: int = 5
    baselines: tuple[str, ...] = BASELINES
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("hidden", "rounds", "local_epochs", "batch_size", "central_epochs", "root_size", "clients"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ids.{key}", f"must be a positive integer, got {value!r}")
        if self.partition not in ("device", "dirichlet"):
            raise ConfigError("ids.partition", f"must be 'device' or 'dirichlet', got {self.partition!r}")
        if not 0.0 <= self.malicious_fraction < 0.5:
            raise ConfigError("ids.malicious_fraction", f"must be in [0, 0.5), got {self.malicious_fraction!r}")
        if not self.lr > 0:
            raise ConfigError("ids.lr", f"must be > 0, got {self.lr!r}")
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ConfigError("ids.baselines", f"unknown {sorted(unknown)} (known: {', '.join(BASELINES)})")


@dataclass
class IDSRunResult:
    """What a run measured: ``metrics[model]`` (see :func:`detection_metrics`), ``macro_f1_per_round``
    for the FL runs, ``secure_rounds`` (accepted / rejected clients per round), the ``malicious``
    clients, the secure model as a :class:`Detector`, the data, ``seconds`` per model."""

    config: IDSTrainConfig
    data: IDSData
    metrics: dict[str, dict[str, Any]]
    macro_f1_per_round: dict[str, list[float]]
    secure_rounds: list[dict[str, Any]]
    malicious: tuple[int, ...]
    detector: Detector
    test_predictions: dict[str, np.ndarray]
    seconds: dict[str, float]


def root_scaling(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(mean, std)`` ``(F,) float32`` over every record of ``windows: (N, T, F)``
    (``std`` 1 where a feature is constant)."""
    flat = windows.reshape(-1, windows.shape[-1]).astype(np.float64)
    std = flat.std(axis=0)
    return flat.mean(axis=0).astype(np.float32), np.where(std > 1e-9, std, 1.0).astype(np.float32)


def _split(config: IDSTrainConfig, data: IDSData, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Root-set indices and each client's training indices (into ``data``)."""
    train = np.flatnonzero(data.train)
    if config.root_size >= len(train):
        raise ConfigError("ids.root_size", f"{config.root_size} leaves none of the {len(train)} training windows to the devices")
    order = rng.permutation(train)
    root, pool = np.sort(order[: config.root_size]), np.sort(order[config.root_size :])
    if config.partition == "device":
        parts = [pool[data.devices[pool] == k] for k in range(data.config.devices)]
    else:
        parts = [pool[p] for p in dirichlet_partition(data.labels[pool], config.clients, config.alpha, rng, min_samples=1)]
    return root, parts


def _settings(config: IDSTrainConfig, round_: int) -> TrainSettings:
    """Local SGD settings of ``round_``: ``lr`` for the first two thirds of the rounds, ``lr / 3`` after."""
    lr = config.lr if round_ < (2 * config.rounds) // 3 else config.lr / 3
    return TrainSettings(config.local_epochs, config.batch_size, lr)


def _fit_sklearn(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1).fit(x, y)
    return HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(x, y)


def train_and_compare(config: IDSTrainConfig, *, progress: bool = False) -> IDSRunResult:
    """Run the secure FL training and the baselines; see the module docstring."""
    data = generate(config.generator)
    rng = np.random.default_rng(config.seed)
    root, parts = _split(config, data, rng)
    mean, std = root_scaling(data.windows[root])
    scaled = ((data.windows - mean) / std).astype(np.float32)
    n_classes = len(data.class_names)
    test = np.flatnonzero(data.test)
    # the FL code indexes x_train by the clients' indices: x_train is every window (test ones are never in a part)
    fl_data = Dataset("ids", scaled, data.labels, scaled[test], data.labels[test], n_classes, data.feature_names)
    clients = len(parts)
    k = round(config.malicious_fraction * clients)
    malicious = tuple(sorted(int(i) for i in rng.permutation(clients)[:k]))
    attack = make_attack(config.attack, config.attack_params)
    model = build_lstm(len(data.feature_names), n_classes, hidden=config.hidden, seed=config.seed)
    init = get_flat(model)
    weights = np.array([len(p) for p in parts], dtype=np.float64)

    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    curves: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    secure_rounds: list[dict[str, Any]] = []
    secure_params = init
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for label, rule, attacked in FL_RULES:
            tick = time.perf_counter()
            bad = malicious if attacked else ()
            defence = make_aggregator(rule, {"t": config.t, "n": config.n} if rule == "ppbfl_secure" else None)
            params, curve = init.copy(), []
            for r in range(config.rounds):
                settings = _settings(config, r)
                updates = train_round(model, params, fl_data, parts, bad, attack, settings, config.seed, r)
                context = AggregationContext(weights=weights, n_malicious=len(bad), seed=config.seed, round=r)
                if defence.needs_reference:
                    context.reference = local_update(
                        model, params, scaled[root], data.labels[root], settings, device_generator(config.seed, r, clients),
                    )
                aggregate, info = defence.aggregate(updates, context)
                params = (params + aggregate).astype(np.float32)
                pred = predict(model, params, scaled[test])
                curve.append(float(detection_metrics(data.labels[test], pred, data.class_names)["macro"]["f1"]))  # type: ignore[index]
                if rule == "ppbfl_secure":
                    accepted = [int(i) for i in info["accepted"]]
                    secure_rounds.append({
                        "round": r, "accepted": accepted,
                        "rejected_malicious": sorted(set(malicious) - set(accepted)),
                        "rejected_honest": sorted(set(range(clients)) - set(accepted) - set(malicious)),
                    })
                if progress:
                    print(f"  {label} round {r + 1}/{config.rounds}: macro-F1 {curve[-1]:.3f}", flush=True)
            predictions[label] = predict(model, params, scaled[test])
            curves[label] = curve
            seconds[label] = time.perf_counter() - tick
            if rule == "ppbfl_secure":
                secure_params = params
            defence.close()
        pool = np.concatenate(parts)
        for name in config.baselines:
            tick = time.perf_counter()
            if name == "central_lstm":
                central = TrainSettings(config.central_epochs, config.batch_size, config.lr)
                gen = torch.Generator().manual_seed(config.seed)
                params = init + local_update(model, init, scaled[pool], data.labels[pool], central, gen)
                predictions[name] = predict(model, params, scaled[test])
            elif name == "mlp":
                flat = scaled.reshape(len(scaled), -1)
                mlp = build_model("mlp", flat.shape[1], n_classes, hidden=64, seed=config.seed)
                central = TrainSettings(config.central_epochs, config.batch_size, config.lr / 3)
                gen = torch.Generator().manual_seed(config.seed)
                start = get_flat(mlp)
                params = start + local_update(mlp, start, flat[pool], data.labels[pool], central, gen)
                predictions[name] = predict(mlp, params, flat[test])
            else:
                flat = scaled.reshape(len(scaled), -1)
                predictions[name] = _fit_sklearn(name, flat[pool], data.labels[pool], config.seed).predict(flat[test]).astype(np.int64)
            seconds[name] = time.perf_counter() - tick
            if progress:
                print(f"  {name}: {seconds[name]:.1f} s", flush=True)
    finally:
        torch.set_num_threads(threads)
    for name, pred in predictions.items():
        metrics[name] = detection_metrics(data.labels[test], pred, data.class_names)
    set_flat(model, secure_params)
    detector = Detector(model, mean, std, data.class_names, data.feature_names, data.config.window)
    return IDSRunResult(config, data, metrics, curves, secure_rounds, malicious, detector, predictions, seconds)
