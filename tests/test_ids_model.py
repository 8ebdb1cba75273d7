"""The LSTM classifier, the per-window detector, its file format and the streaming path."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from ppbfl.fl.models import get_flat, n_params, set_flat
from ppbfl.ids.detector import Detector, StreamDetector, read_stream, write_stream_csv
from ppbfl.ids.errors import ModelFileError, StreamError, WindowShapeError
from ppbfl.ids.generator import CLASSES, FEATURES, GeneratorConfig, generate
from ppbfl.ids.model import LSTMClassifier, build_lstm, lstm_param_count, model_bytes

F, C, T = len(FEATURES), len(CLASSES), 6


def _detector(seed: int = 0, hidden: int = 8) -> Detector:
    rng = np.random.default_rng(seed)
    return Detector(build_lstm(F, C, hidden=hidden, seed=seed), rng.normal(size=F), rng.uniform(0.5, 2, F), CLASSES, FEATURES, T)


def test_parameter_count_memory_and_budget():
    model = build_lstm(F, C)
    assert n_params(model) == lstm_param_count(F, C, 32) == 5797 <= 50_000
    assert model_bytes(model) == 4 * 5797
    for hidden in (8, 64):
        assert n_params(LSTMClassifier(F, C, hidden)) == lstm_param_count(F, C, hidden)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_lstm(F, C, seed=5)
    assert torch.rand(1) == before  # building the model did not consume the caller's torch RNG
    np.testing.assert_array_equal(get_flat(a), get_flat(build_lstm(F, C, seed=5)))
    assert not np.array_equal(get_flat(a), get_flat(build_lstm(F, C, seed=6)))


def test_forward_matches_a_hand_written_lstm():
    model = build_lstm(F, C, hidden=4, seed=1)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, T, F)).astype(np.float32))
    w_ih, w_hh = model.lstm.weight_ih_l0.detach().double(), model.lstm.weight_hh_l0.detach().double()
    b = (model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0).detach().double()
    h = torch.zeros(3, 4, dtype=torch.float64)
    c = torch.zeros_like(h)
    for t in range(T):
        i, f, g, o = (x[:, t].double() @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    expected = h @ model.head.weight.detach().double().T + model.head.bias.detach().double()
    torch.testing.assert_close(model(x).double(), expected, rtol=1e-5, atol=1e-5)


def test_wrong_window_shapes_are_typed():
    det = _detector()
    with pytest.raises(WindowShapeError, match="windows"):
        det.classify(np.zeros((2, T + 1, F)))
    with pytest.raises(WindowShapeError):
        det.classify(np.full((1, T, F), np.nan))
    with pytest.raises(WindowShapeError):
        build_lstm(F, C)(torch.zeros(2, T, F + 1))


def test_classify_one_is_the_batch_path_and_scaling_is_applied():
    det = _detector()
    w = np.random.default_rng(1).normal(size=(5, T, F)).astype(np.float32)
    batch = det.probabilities(w)
    for i in range(5):
        k, p = det.classify_one(w[i])
        assert k == batch[i].argmax() and p == pytest.approx(batch[i].max(), rel=1e-6)
    with torch.no_grad():
        manual = torch.softmax(det.model(torch.from_numpy((w - det.mean) / det.std)), 1).numpy()
    np.testing.assert_allclose(batch, manual, rtol=1e-6)


def test_save_load_round_trip(tmp_path):
    det = _detector(seed=3)
    det.save(tmp_path / "d.pt")
    back = Detector.load(tmp_path / "d.pt")
    assert back.class_names == CLASSES and back.feature_names == FEATURES and back.window == T
    np.testing.assert_array_equal(get_flat(back.model), get_flat(det.model))
    w = np.random.default_rng(2).normal(size=(4, T, F))
    np.testing.assert_array_equal(back.probabilities(w), det.probabilities(w))


class _Bomb:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran while loading')",))


def test_a_model_file_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "ppbfl-ids-detector/1", "state": _Bomb()}, fh, protocol=2)
    with pytest.raises(ModelFileError, match="not a saved detector"):
        Detector.load(path)
    torch.save({"format": "ppbfl-ids-detector/1", "hidden": 8, "window": T, "class_names": list(CLASSES),
                "feature_names": list(FEATURES), "mean": torch.zeros(F), "std": torch.ones(F), "state": {}}, tmp_path / "hollow.pt")
    with pytest.raises(ModelFileError, match="bad field"):
        Detector.load(tmp_path / "hollow.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a ppbfl-ids-detector"):
        Detector.load(tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="no such file"):
        Detector.load(tmp_path / "missing.pt")


def test_stream_detector_classifies_each_sliding_window_once(tmp_path):
    det = _detector(seed=4)
    data = generate(GeneratorConfig(devices=3, segments=4, window=T, seed=2))
    path = tmp_path / "s.csv"
    rows = write_stream_csv(data.windows, data.devices, data.labels, FEATURES, CLASSES, path)
    assert rows == data.windows.shape[0] * T
    stream = StreamDetector(det, stride=2)
    with open(path) as fh:
        alerts = [a for row, dev, rec in read_stream(fh, FEATURES) if (a := stream.push(row, dev, rec))]
    for k in range(3):
        series = data.windows[data.devices == k].reshape(-1, F)  # device k's records in order
        starts = range(0, len(series) - T + 1, 2)
        pred = det.classify(np.stack([series[s : s + T] for s in starts]))
        assert stream.seen[str(k)] == len(starts)
        assert stream.flagged.get(str(k), 0) == int(np.sum(pred != 0))
        assert [a.label for a in alerts if a.device == str(k)] == [CLASSES[p] for p in pred if p != 0]


def test_stream_errors_name_row_and_column():
    good = "device," + ",".join(FEATURES) + "\n" + "7," + ",".join(["1"] * F) + "\n"
    assert next(read_stream(io.StringIO(good), FEATURES))[1] == "7"
    bad = good + "7," + ",".join(["1"] * (F - 1)) + ",inf\n"
    with pytest.raises(StreamError) as info:
        list(read_stream(io.StringIO(bad), FEATURES))
    assert (info.value.row, info.value.column) == (2, FEATURES[-1])
    with pytest.raises(StreamError, match="'device'"):
        list(read_stream(io.StringIO(",".join(FEATURES) + "\n"), FEATURES))


def test_forged_device_ids_cannot_grow_state_without_bound():
    stream = StreamDetector(_detector(), max_devices=3)
    for i in range(3):
        stream.push(i + 1, f"d{i}", np.zeros(F, dtype=np.float32))
    with pytest.raises(StreamError, match="more than 3 devices"):
        stream.push(4, "d-forged", np.zeros(F, dtype=np.float32))


def test_flat_vector_round_trip_for_fl():
    model = build_lstm(F, C, hidden=8)
    v = np.arange(n_params(model), dtype=np.float32) / 1000
    set_flat(model, v)
    np.testing.assert_array_equal(get_flat(model), v)
