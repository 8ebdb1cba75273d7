"""Which devices a rule excluded and its detection rates (ppbfl.fl.detection), against set arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppbfl.fl.aggregators import GLOBAL_MODEL, AggregationContext, make_aggregator
from ppbfl.fl.detection import DEVICE_RULES, detection_rates, excluded_devices
from ppbfl.fl.errors import AggregationError


def test_each_rule_names_the_devices_without_weight():
    assert excluded_devices("ppbfl_secure", {"weights": [0.3, 0.0, 1.0, 0.0]}, 4) == {1, 3}
    assert excluded_devices("fltrust", {"trust": [0.0, 0.2, 0.0]}, 3) == {0, 2}
    assert excluded_devices("krum", {"selected": [2]}, 4) == {0, 1, 3}
    assert excluded_devices("multi_krum", {"selected": [0, 1, 3]}, 4) == {2}
    for rule in ("fedavg", "median", "trimmed_mean"):  # no per-device decision
        assert excluded_devices(rule, {}, 4) is None


def test_real_rules_report_what_they_did():
    rng = np.random.default_rng(0)
    honest = rng.normal(1.0, 0.1, size=(6, 8))
    updates = np.vstack([honest, -5 * honest[:2]])  # devices 6 and 7 flipped and boosted
    context = AggregationContext(weights=np.ones(8), n_malicious=2, reference=honest.mean(axis=0),
                                 extra={GLOBAL_MODEL: rng.normal(0.0, 5.0, size=8)})  # flame_models clusters G + g_i
    for rule in DEVICE_RULES[1:]:  # the secure rule runs the protocol: covered in test_fl_runner
        _, info = make_aggregator(rule).aggregate(updates, context)
        assert {6, 7} <= excluded_devices(rule, info, 8), rule


@pytest.mark.parametrize("info", [{}, {"weights": [1.0]}])
def test_a_rule_without_its_info_is_an_error(info):
    with pytest.raises(AggregationError, match="ppbfl_secure"):
        excluded_devices("ppbfl_secure", info, 2)


@given(st.integers(1, 12).flatmap(lambda m: st.tuples(st.just(m), st.sets(st.integers(0, m - 1)), st.sets(st.integers(0, m - 1)))))
def test_rates_count_excluded_malicious_and_honest_devices(case):
    m, excluded, malicious = case
    tpr, fpr = detection_rates(excluded, malicious, m)
    honest = set(range(m)) - malicious
    assert tpr == (len(excluded & malicious) / len(malicious) if malicious else None)
    assert fpr == (len(excluded & honest) / len(honest) if honest else None)
