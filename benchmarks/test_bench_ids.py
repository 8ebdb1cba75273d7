"""Per-window inference of the IDS on one core: the LSTM detector vs an MLP and a random forest.

Group ``ids window``: one ``(16, 10)`` window classified through the per-window path a gateway
runs (:meth:`ppbfl.ids.detector.Detector.classify_one`: scaling, forward, softmax, argmax);
baselines in the same run: the MLP over the flattened window (same scaling and argmax) and a
200-tree random forest's ``predict`` on one flattened window. Group ``ids batch=256``: the same
models on 256 windows at once (throughput). torch runs on one thread (``torch.set_num_threads(1)``).

``extra_info`` carries p50 / p99 latency over 500 single windows (the forest: 100) and throughput
(:func:`ppbfl.ids.latency.measure`), and the model's memory (parameters + buffers; the forest's
pickled size). Latency does not depend on the weights' values, so the models are freshly
initialised (the forest is fitted on generated windows); every benchmark checks that the timed
call returns what the batch path returns.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import QUICK

from ppbfl.fl.models import build_model
from ppbfl.ids.detector import Detector
from ppbfl.ids.generator import CLASSES, FEATURES, GeneratorConfig, generate
from ppbfl.ids.latency import measure
from ppbfl.ids.model import build_lstm, model_bytes

T = 16
TIMED = 50 if QUICK else 500  # single windows timed for p50 / p99 (the forest: a fifth)
TREES = 20 if QUICK else 200


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return generate(GeneratorConfig(devices=8, segments=40 if QUICK else 70, window=T, seed=0)).windows


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lstm() -> Detector:
    return Detector(build_lstm(len(FEATURES), len(CLASSES), seed=0), np.zeros(len(FEATURES)), np.ones(len(FEATURES)), CLASSES, FEATURES, T)


class _MLPDetector:
    """The MLP baseline behind the same per-window interface (flattened window in, class out)."""

    def __init__(self) -> None:
        self.model = build_model("mlp", T * len(FEATURES), len(CLASSES), hidden=64, seed=0).eval()

    def classify(self, windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32).reshape(len(windows), -1))
            return torch.softmax(self.model(x), 1).argmax(1).numpy()

    def classify_one(self, window: np.ndarray) -> int:
        return int(self.classify(window[None])[0])


@pytest.fixture(scope="module")
def forest(windows):
    from sklearn.ensemble import RandomForestClassifier

    labels = np.arange(len(windows)) % len(CLASSES)
    return RandomForestClassifier(n_estimators=TREES, random_state=0, n_jobs=1).fit(windows.reshape(len(windows), -1), labels)


def _record(benchmark, group: str, stats: dict[str, float], memory: int) -> None:
    benchmark.group = group
    benchmark.extra_info.update({k: round(v, 1) for k, v in stats.items()})
    benchmark.extra_info["model_bytes"] = memory


def test_ids_window_lstm(benchmark, windows, lstm):
    stats = measure(lstm.classify_one, lstm.classify, windows[:TIMED])
    _record(benchmark, "ids window", stats, model_bytes(lstm.model))
    k, _ = benchmark(lstm.classify_one, windows[7])
    assert k == lstm.classify(windows[7:8])[0]


def test_ids_window_mlp(benchmark, windows):
    mlp = _MLPDetector()
    stats = measure(mlp.classify_one, mlp.classify, windows[:TIMED])
    _record(benchmark, "ids window", stats, model_bytes(mlp.model))
    assert benchmark(mlp.classify_one, windows[7]) == mlp.classify(windows[7:8])[0]


def test_ids_window_random_forest(benchmark, windows, forest):
    def one(w: np.ndarray) -> int:
        return int(forest.predict(w.reshape(1, -1))[0])

    def batch(w: np.ndarray) -> np.ndarray:
        return forest.predict(w.reshape(len(w), -1))

    stats = measure(one, batch, windows[: TIMED // 5], warmup=5)
    _record(benchmark, "ids window", stats, len(pickle.dumps(forest)))
    assert benchmark(one, windows[7]) == batch(windows[7:8])[0]


@pytest.mark.parametrize("model", ["lstm", "mlp"])
def test_ids_batch(benchmark, windows, lstm, model):
    det = lstm if model == "lstm" else _MLPDetector()
    benchmark.group = "ids batch=256"
    pred = benchmark(det.classify, windows[:256])
    assert pred.shape == (256,) and np.array_equal(pred[:3], [det.classify_one(w) if model == "mlp" else det.classify_one(w)[0] for w in windows[:3]])
