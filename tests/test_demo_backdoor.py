"""The demo under the backdoor attack reports the backdoor success rate of both models; the demo's
reference-free rule (``--rule flame``) and its settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ppbfl.demo import DemoConfig, DemoConfigError, run_demo
from ppbfl.fl.attacks import Backdoor
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.reference import load_reference_spec
from ppbfl.fl.runner import backdoor_success
from ppbfl.trust.store import TrustStore


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
    config = DemoConfig(devices=4, malicious=0.25, attack="backdoor", rounds=1, hidden=4, liar=None, out=str(tmp_path), ids=False)
    rows = run_demo(config, log=lines.append)
    # --no-ids: no gateway counts, no IDS column, no flags in the round log or the trust records
    assert rows[0].ids_flags is None and not (tmp_path / "ids").exists() and not any(line.startswith("IDS") for line in lines)
    store = TrustStore(f"sqlite:///{tmp_path / 'trust.db'}")
    assert [x.evidence.ids_flags for x in store.records(1)] == [0, 0, 0, 0]
    store.close()
    logged = json.loads((tmp_path / "rounds.json").read_text())["rounds"][0]
    assert 0.0 <= rows[0].secure_backdoor <= 1.0 and 0.0 <= rows[0].fedavg_backdoor <= 1.0
    assert (logged["secure_backdoor"], logged["fedavg_backdoor"]) == (rows[0].secure_backdoor, rows[0].fedavg_backdoor)
    summary = next(line for line in lines if line.startswith("backdoor success after 1 rounds"))
    assert f"ppbfl (secure) {rows[0].secure_backdoor:.3f} vs plaintext FedAvg {rows[0].fedavg_backdoor:.3f}" in summary
    assert any("success rate of the untrained model" in line for line in lines)
    # rule cosine: every edge node computed the root-set reference itself (the spec the demo wrote) and took the coordinator's
    spec = load_reference_spec(tmp_path / "reference.json")
    assert (spec.dataset, len(spec.root), spec.hidden) == ("breast_cancer", config.root_size, 4)
    assert rows[0].dropped_edge_nodes == [] and rows[0].online_edge_nodes == [1, 2, 3, 4, 5]


def test_the_demo_runs_flame_without_a_root_set_and_names_a_lying_node_under_it(tmp_path, monkeypatch):
    """``--rule flame``: no reference is trained (the demo's root-set reference would raise here),
    the backdoor is still reported, and a node tampering with its aggregate share is named."""
    class NoRootSet:
        def __getattr__(self, name):
            raise AssertionError(f"rule 'flame' used the root-set reference ({name})")

    monkeypatch.setattr("ppbfl.demo.RootReference", NoRootSet())
    lines: list[str] = []
    config = DemoConfig(devices=4, malicious=0.25, attack="backdoor", rounds=1, hidden=4, liar=2, rule="flame", out=str(tmp_path))
    rows = run_demo(config, log=lines.append)
    assert json.loads((tmp_path / "rounds.json").read_text())["config"]["rule"] == "flame"
    assert not (tmp_path / "reference.json").exists()  # no root-set spec for the edge nodes either
    assert "rule flame" in lines[0] and rows[0].named_liars == [2]
    assert 0.0 <= rows[0].secure_backdoor <= 1.0
    assert set(rows[0].rejected.values()) <= {"outside majority cluster", "zero norm"}
    assert len(rows[0].accepted) + len(rows[0].rejected) == 4


@pytest.mark.parametrize("settings, match", [
    ({"rule": "median"}, "rule"),
    ({"rule": "flame", "rescale": True}, "rescale"),
    ({"flame_noise": 0.01}, "flame_noise"),
    ({"rule": "flame", "flame_noise": -1.0}, "flame_noise"),
    ({"rule": "flame", "kill_edge": 1, "liar": None}, "2t - 1"),  # (3, 5): 4 nodes left < 5
])
def test_bad_rule_settings_are_refused_by_name(settings, match):
    with pytest.raises(DemoConfigError, match=match):
        DemoConfig(**settings).check()
