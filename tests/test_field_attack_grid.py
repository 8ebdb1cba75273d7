"""The ``out_of_range`` attack in the experiment grid (issue 13): FedAvg and plaintext FLTrust
receive the decoded vector the attacker effectively contributes, the secure rule the crafted
field vector through the protocol, which rejects it "out of range"."""

from __future__ import annotations

import numpy as np
import pytest

from ppbfl.defense.validity import centred
from ppbfl.fl.aggregation import AggregationContext
from ppbfl.fl.attacks import OutOfRange, make_attack
from ppbfl.fl.config import Cell, Federation
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.field_attacks import craft, effective_update
from ppbfl.fl.runner import apply_field_attack, run_cell
from ppbfl.fl.secure_aggregator import SecureCosineAggregator

FED = Federation(devices=5, rounds=2, local_epochs=1, batch_size=16, lr=0.1, hidden=8, min_samples=5, root_size=20)
P = 2**61 - 1


def _dot(a: np.ndarray, b: np.ndarray) -> int:
    return sum(int(x) * int(y) for x, y in zip(a, b)) % P


def test_the_effective_update_is_the_decoded_crafted_vector_and_keeps_the_opened_scalars():
    rng = np.random.default_rng(3)  # test data only
    update, reference = rng.normal(0, 0.01, 40), rng.normal(0, 0.01, 40)
    codec = SecureCosineAggregator().codec(40, 5)
    crafted = craft(update, reference, codec)
    g, r = codec.encode(update), codec.encode(reference)
    assert _dot(crafted, r) == _dot(g, r) and _dot(crafted, crafted) == _dot(g, g)  # what the cosine filter opens
    effective = effective_update(update, reference, codec)
    assert effective.tolist() == [int(v) / 2**codec.frac_bits for v in centred(crafted, P)]  # Python ints as the oracle
    assert np.abs(effective).max() > 1e6 * np.abs(update).max()


def test_without_a_shift_the_attacker_sends_its_update():
    codec = SecureCosineAggregator().codec(10, 5)
    update = np.full(10, 0.01)
    for reference in (np.zeros(10), np.full(10, np.nan)):  # a diverged model's root-set update
        assert effective_update(update, reference, codec).tolist() == update.tolist()


def test_the_secure_rule_rejects_the_crafted_vectors_out_of_range():
    rng = np.random.default_rng(4)  # test data only
    reference = rng.normal(0, 0.01, 30)
    updates = (reference + rng.normal(0, 0.01, (5, 30))).astype(np.float32)
    context = AggregationContext(weights=np.ones(5), n_malicious=2, reference=reference, seed=0)
    secure = SecureCosineAggregator()
    try:
        same = apply_field_attack(OutOfRange(), (1, 3), updates, context, secure, None)
        assert same is updates  # the secure rule gets the field vectors through the protocol, not here
        aggregate, info = secure.aggregate(updates, context)
    finally:
        secure.close()
    assert [info["reasons"][i] for i in (1, 3)] == ["out of range: the validity proof fails"] * 2
    assert sorted(info["accepted"]) == [0, 2, 4]
    honest = updates[[0, 2, 4]].astype(np.float64)
    assert np.abs(aggregate).max() <= np.abs(honest).max() + 1e-3  # nothing of order p / 2^f got in


def test_out_of_range_cells_fedavg_is_damaged_the_secure_rule_rejects_every_attacker():
    cells = {d: run_cell(Cell("breast_cancer", "out_of_range", 0.4, d, 0), FED) for d in ("fedavg", "ppbfl_secure")}
    assert not any(c.failed for c in cells.values())
    secure, fedavg = cells["ppbfl_secure"], cells["fedavg"]
    assert len(secure.malicious_devices) == 2
    assert secure.tpr_per_round == [1.0, 1.0] and secure.fpr_per_round == [0.0, 0.0]  # detection TPR 1, no honest device lost
    assert secure.detection_tpr == 1.0
    # an honest aggregate moves entries by well under 1; FedAvg averages in entries of order 2^50 / 2^f / m
    assert max(secure.extra["aggregate_max_abs"]) < 1.0
    assert fedavg.extra["aggregate_max_abs"][0] > 1e6  # round 1; the model has diverged after it


def test_the_attack_parameters_are_checked():
    assert make_attack("out_of_range", {"magnitude": 1 << 40}).magnitude == 1 << 40
    for bad in (0, 1 << 60, 2.5, True):
        with pytest.raises(ConfigError, match=r"attack_params\.out_of_range\.magnitude"):
            make_attack("out_of_range", {"magnitude": bad})
