"""The LSTM detector trained through the secure federated pipeline (real protocol rounds, in process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ppbfl.errors import ConfigError
from ppbfl.fl.aggregators import AggregationContext, make_aggregator
from ppbfl.fl.attacks import make_attack
from ppbfl.fl.datasets import Dataset
from ppbfl.fl.models import get_flat
from ppbfl.fl.runner import device_generator, train_round
from ppbfl.fl.training import TrainSettings, local_update
from ppbfl.ids.federated import IDSTrainConfig, root_scaling, train_and_compare
from ppbfl.ids.generator import GeneratorConfig, generate
from ppbfl.ids.model import build_lstm

TINY = GeneratorConfig(devices=5, segments=8, window=4, seed=1)


@pytest.fixture(scope="module")
def run():
    config = IDSTrainConfig(generator=TINY, rounds=2, local_epochs=1, central_epochs=1, root_size=5, t=2, n=3,
                            baselines=("central_lstm", "mlp", "random_forest", "gradient_boosting"), seed=1)
    return train_and_compare(config)


def test_secure_rounds_reject_the_poisoning_device(run):
    assert run.malicious == (3,)  # 20 % of 5 clients, drawn from the seed
    assert len(run.secure_rounds) == 2
    for r in run.secure_rounds:
        assert r["rejected_malicious"] == [3] and 3 not in r["accepted"]  # boosted sign flip: cos < 0


def test_every_model_is_scored_on_the_same_test_windows(run):
    assert set(run.metrics) == {"secure_fl", "fedavg_attacked", "fedavg_clean", "central_lstm", "mlp", "random_forest", "gradient_boosting"}
    n_test = int(run.data.test.sum())
    for m in run.metrics.values():
        assert int(np.sum(m["confusion"])) == n_test
    assert all(len(c) == 2 for c in run.macro_f1_per_round.values())


def test_the_returned_detector_is_the_secure_model(run):
    test = run.data.test
    np.testing.assert_array_equal(run.detector.classify(run.data.windows[test]), run.test_predictions["secure_fl"])
    assert not np.array_equal(get_flat(run.detector.model), get_flat(build_lstm(10, 5, seed=1)))


def test_one_secure_round_on_lstm_updates_equals_the_float_rule():
    """The protocol's aggregate of real LSTM updates = sum_i w_i c_i g_i / sum_i w_i computed in floats."""
    data = generate(TINY)
    train = np.flatnonzero(data.train)
    root, pool = train[:5], train[5:]
    mean, std = root_scaling(data.windows[root])
    x = (data.windows - mean) / std
    parts = [pool[data.devices[pool] == k] for k in range(5)]
    fl = Dataset("ids", x, data.labels, x[:1], data.labels[:1], 5, data.feature_names)
    model = build_lstm(10, 5, hidden=8, seed=0)
    params = get_flat(model)
    settings = TrainSettings(1, 8, 0.3)
    updates = train_round(model, params, fl, parts, (3,), make_attack("sign_flip", {"factor": 5.0}), settings, 0, 0)
    ref = local_update(model, params, x[root], data.labels[root], settings, device_generator(0, 0, 5))
    secure = make_aggregator("ppbfl_secure", {"t": 2, "n": 3})
    aggregate, info = secure.aggregate(updates, AggregationContext(reference=ref))
    secure.close()
    u, r = updates.astype(np.float64), ref.astype(np.float64)
    cos = u @ r / (np.linalg.norm(u, axis=1) * np.linalg.norm(r))
    w = np.maximum(cos, 0.0)
    c = np.minimum(1.0, np.linalg.norm(r) / np.linalg.norm(u, axis=1))
    expected = (w * c) @ u / w.sum()
    assert info["accepted"] == [int(i) for i in np.flatnonzero(cos > 0)] and 0 < len(info["accepted"]) < 5
    np.testing.assert_allclose(aggregate, expected, atol=5e-4 * np.abs(expected).max())
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize("key, value", [("partition", "random"), ("malicious_fraction", 0.5), ("rounds", 0), ("baselines", ("svm",))])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"ids.{key}"):
        IDSTrainConfig(**{key: value})


def test_root_set_larger_than_the_training_data_is_refused():
    with pytest.raises(ConfigError, match=r"ids\.root_size"):
        train_and_compare(IDSTrainConfig(generator=TINY, root_size=10_000, rounds=1))


def test_a_device_whose_telemetry_the_detector_flags_loses_trust_end_to_end(run):
    """Detector -> per-device flags -> a protocol round with a trust keeper -> the flagged device's
    reputation: device 3's stream is the generator's attack windows, the others' its normal ones."""
    from ppbfl.fl.federation import Federation
    from ppbfl.ids.reputation import ids_flags
    from ppbfl.trust.keeper import TrustKeeper
    from tests.protocol_helpers import synthetic_round

    data, m = run.data, 5
    normal, attack = np.flatnonzero(data.labels == 0), np.flatnonzero(data.labels != 0)
    per = min(6, normal.size // 4)
    chosen = np.concatenate([normal[: 4 * per], attack])
    devices = np.array([0, 1, 2, 4] * per + [3] * attack.size)
    flags = ids_flags(devices, run.detector.classify(data.windows[chosen]))  # (a 2-round tiny detector: weak, not blind)
    assert flags[3] >= 1 and all(flags[i] == 0 for i in (0, 1, 2, 4))
    keeper = TrustKeeper(range(m))
    updates, reference = synthetic_round(m, 16, malicious=set(), seed=4)
    with Federation.in_process(2, 3, 16, m) as federation:
        federation.trust = keeper
        result = federation.run_round(1, updates, reference, ids_flags=flags)
    assert sorted(result.accepted) == list(range(m))  # every update passed: only the flags differ
    trust = keeper.reputation()
    assert trust[3] < min(trust[i] for i in range(m) if flags[i] == 0)
    assert keeper.last is not None
