"""The IoMT intrusion data as a runner dataset (``iomt``): generated locally, shapes, labels, split."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from ppbfl.fl.datasets import IOMT_STATS, SHIPPED, load_dataset
from ppbfl.ids.generator import CLASSES, FEATURES, GeneratorConfig, generate


@pytest.fixture(scope="module")
def iomt():
    """The dataset, loaded with every socket refused (nothing may download)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the iomt dataset opened a socket")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", refuse)
        patch.setattr(socket, "create_connection", refuse)
        return load_dataset("iomt")


def test_iomt_is_the_generators_windows_as_per_window_statistics(iomt):
    data = generate(GeneratorConfig(seed=0))
    assert "iomt" in SHIPPED and iomt.name == "iomt" and iomt.n_classes == len(CLASSES) == 5
    assert iomt.x_train.shape == (int(data.train.sum()), len(FEATURES) * len(IOMT_STATS)) == (1800, 40)
    assert iomt.x_test.shape == (int(data.test.sum()), 40) == (600, 40)
    assert iomt.x_train.dtype == np.float32 and iomt.y_train.dtype == np.int64
    # labels and split are the generator's (its most recent quarter per device is the test set)
    np.testing.assert_array_equal(iomt.y_train, data.labels[data.train])
    np.testing.assert_array_equal(iomt.y_test, data.labels[data.test])
    assert set(np.unique(iomt.y_train)) == set(range(5)) and set(np.unique(iomt.y_test)) == set(range(5))
    # column 4k + s is statistic s of feature k, standardised with the training split's mean / std
    w = data.windows.astype(np.float64)
    for k, s, stat in [(0, 0, w.mean(axis=1)), (6, 1, w.std(axis=1)), (8, 2, w.min(axis=1)), (9, 3, w.max(axis=1))]:
        raw = stat[:, k]
        mu, sd = raw[data.train].mean(), raw[data.train].std()
        col = 4 * k + s
        assert iomt.feature_names[col] == f"{FEATURES[k]}_{IOMT_STATS[s]}"
        np.testing.assert_allclose(iomt.x_test[:, col], (raw[data.test] - mu) / (sd if sd > 0 else 1.0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(iomt.x_train.mean(axis=0), 0, atol=1e-4)
    assert not np.isnan(iomt.x_train).any()


def test_iomt_is_the_same_data_at_every_seed(iomt):
    again = load_dataset("iomt", seed=3)
    np.testing.assert_array_equal(again.x_train, iomt.x_train)
    np.testing.assert_array_equal(again.y_test, iomt.y_test)
