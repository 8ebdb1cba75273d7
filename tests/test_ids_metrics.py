"""Detection metrics against scikit-learn and brute-force counting."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from ppbfl.ids.errors import WindowShapeError
from ppbfl.ids.metrics import detection_metrics
from ppbfl.ids.reputation import UINT16_MAX, flag_summary, ids_flags

NAMES = ("normal", "a", "b", "c")


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_sklearn_and_counting(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    if seed == 3:
        pred[pred == 2] = 1  # class b never predicted: precision 0 by convention
    m = detection_metrics(y, pred, NAMES)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    for c, name in enumerate(NAMES):
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[c], r[c], f[c], s[c]))
        if c:
            assert row["detection_rate"] == pytest.approx(np.mean(pred[y == c] != 0))
            assert row["false_alarm_rate"] == pytest.approx(np.mean(pred[y == 0] == c))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro"]["f1"] == pytest.approx(f.mean()) and m["macro"]["precision"] == pytest.approx(p.mean())
    assert m["detection_rate"] == pytest.approx(np.mean(pred[y != 0] != 0))
    assert m["false_alarm_rate"] == pytest.approx(np.mean(pred[y == 0] != 0))
    assert m["false_alarm_rate"] == pytest.approx(sum(m["per_class"][n]["false_alarm_rate"] for n in NAMES[1:]))
    np.testing.assert_array_equal(m["confusion"], confusion_matrix(y, pred, labels=range(4)))


def test_metric_inputs_are_checked():
    with pytest.raises(WindowShapeError):
        detection_metrics(np.array([0, 1]), np.array([0]), NAMES)
    with pytest.raises(WindowShapeError):
        detection_metrics(np.array([0, 4]), np.array([0, 1]), NAMES)


def test_ids_flags_count_flagged_windows_per_device():
    rng = np.random.default_rng(0)
    devices, pred = rng.integers(0, 6, 200), rng.integers(0, 5, 200)
    flags = ids_flags(devices, pred)
    for k in range(6):
        assert flags[k] == sum(1 for d, p in zip(devices, pred) if d == k and p != 0)
        assert type(flags[k]) is int  # the trust update accepts plain ints only
    summary = flag_summary(devices, pred)
    assert summary[2].windows == int(np.sum(devices == 2)) and summary[2].fraction == flags[2] / summary[2].windows
    assert ids_flags(np.zeros(70000, dtype=np.int64), np.ones(70000, dtype=np.int64)) == {0: UINT16_MAX}
    with pytest.raises(WindowShapeError):
        ids_flags(np.array([-1]), np.array([1]))
    with pytest.raises(WindowShapeError):
        ids_flags(np.array([0.5]), np.array([1]))
