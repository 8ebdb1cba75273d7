"""Short federated runs on breast cancer: FedAvg learns; 40 % sign flip breaks FedAvg, not FLTrust/median/ppbfl (secure)."""

from __future__ import annotations

import pytest

from ppbfl.fl.config import Cell, Federation
from ppbfl.fl.runner import run_cell

# logistic regression, 10 devices, 10 rounds of 2 local epochs: ~0.1 s per run
FED = Federation(devices=10, rounds=10, local_epochs=2, model="logreg")
SIGN_FLIP = {"sign_flip": {"factor": 4.0}}


@pytest.fixture(scope="module")
def clean():
    return run_cell(Cell("breast_cancer", "none", 0.0, "fedavg", 0), FED)


def test_fedavg_without_attack_learns_breast_cancer(clean):
    # majority class (benign) is 63 % of the test split; measured accuracy is ~0.94
    assert clean.final_accuracy > 0.90
    assert clean.accuracy_per_round[-1] > clean.accuracy_per_round[0] - 0.05
    assert min(clean.per_class_recall) > 0.8
    assert clean.malicious_devices == ()


def test_sign_flip_at_40_percent_breaks_fedavg_but_not_fltrust_median_or_the_secure_defence(clean):
    defences = ("fedavg", "fltrust", "median", "ppbfl_secure")
    results = {d: run_cell(Cell("breast_cancer", "sign_flip", 0.4, d, 0), FED, SIGN_FLIP) for d in defences}
    assert len(results["fedavg"].malicious_devices) == 4
    assert results["fedavg"].malicious_devices == results["fltrust"].malicious_devices
    # measured: fedavg ~0.10, fltrust ~0.96, median ~0.94, ppbfl (secure) ~0.96
    assert results["fedavg"].final_accuracy < clean.final_accuracy - 0.3
    for robust in ("fltrust", "median", "ppbfl_secure"):
        assert results[robust].final_accuracy > results["fedavg"].final_accuracy + 0.3
        assert results[robust].final_accuracy > clean.final_accuracy - 0.05


def test_backdoor_success_is_measured_only_for_the_backdoor_attack():
    fed = Federation(devices=10, rounds=5, local_epochs=2, model="logreg")
    backdoor = run_cell(Cell("breast_cancer", "backdoor", 0.4, "fedavg", 0), fed)
    assert backdoor.backdoor_success is not None and backdoor.backdoor_success > 0.5  # measured 1.0
    assert run_cell(Cell("breast_cancer", "label_flip", 0.4, "fedavg", 0), fed).backdoor_success is None


def test_cnn_learns_digits_on_a_dirichlet_split():
    fed = Federation(devices=5, rounds=5, local_epochs=1, model="cnn", partition="dirichlet", alpha=1.0)
    result = run_cell(Cell("digits", "none", 0.0, "fedavg", 0), fed)
    # 10 classes (chance 0.1); measured 0.78 after 5 rounds
    assert result.final_accuracy > 0.6
    assert len(result.per_class_recall) == 10
