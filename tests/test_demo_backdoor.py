"""The demo under the backdoor attack reports the backdoor success rate of both models."""

from __future__ import annotations

import json

import numpy as np
import torch

from ppbfl.demo import DemoConfig, run_demo
from ppbfl.fl.attacks import Backdoor
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.runner import backdoor_success


def test_backdoor_success_counts_stamped_non_target_samples_predicted_as_the_target():
    data = load_dataset("breast_cancer", seed=0)
    model = build_model("logreg", data.n_features, data.n_classes, seed=0)
    with torch.no_grad():  # class 1's logit is 10 * feature 0: the trigger's sign decides every prediction
        for p in model.parameters():
            p.zero_()
        next(model.parameters())[1, 0] = 10.0
    params = get_flat(model)
    assert backdoor_success(model, params, data, Backdoor(target=1, features=(0,), value=4.0)) == 1.0
    assert backdoor_success(model, params, data, Backdoor(target=1, features=(0,), value=-4.0)) == 0.0
    # target 0: the stamped samples are the class-1 ones, and feature 0 = -4 sends them all to class 0
    assert backdoor_success(model, params, data, Backdoor(target=0, features=(0,), value=-4.0)) == 1.0
    x = data.x_test[data.y_test != 1]
    expected = np.mean(x[:, 0] > 0)  # unstamped on another feature: class 1 exactly where feature 0 > 0
    assert backdoor_success(model, params, data, Backdoor(target=1, features=(5,), value=0.0)) == expected


def test_the_demo_reports_backdoor_success_under_the_backdoor_attack(tmp_path):
    lines: list[str] = []
    config = DemoConfig(devices=4, malicious=0.25, attack="backdoor", rounds=1, hidden=4, liar=None, out=str(tmp_path))
    rows = run_demo(config, log=lines.append)
    logged = json.loads((tmp_path / "rounds.json").read_text())["rounds"][0]
    assert 0.0 <= rows[0].secure_backdoor <= 1.0 and 0.0 <= rows[0].fedavg_backdoor <= 1.0
    assert (logged["secure_backdoor"], logged["fedavg_backdoor"]) == (rows[0].secure_backdoor, rows[0].fedavg_backdoor)
    summary = next(line for line in lines if line.startswith("backdoor success after 1 rounds"))
    assert f"ppbfl (secure) {rows[0].secure_backdoor:.3f} vs plaintext FedAvg {rows[0].fedavg_backdoor:.3f}" in summary
    assert any("success rate of the untrained model" in line for line in lines)
