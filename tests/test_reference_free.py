"""Root sets in the experiment runner: ``federation.root_size = 0`` gives every training sample to
the devices, and only defences and attacks that need no root set are accepted; by default the
root set is 10 samples per class."""

from __future__ import annotations

import pytest

import ppbfl.fl.runner as runner
from ppbfl.fl.config import parse_config
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.errors import ConfigError


def grid(defences: list[str], attacks: list[str] | None = None, fractions: list[float] | None = None, root: int | None = 0) -> dict:
    federation = {"devices": 4, "rounds": 1, "hidden": 4, **({} if root is None else {"root_size": root})}
    return {
        "grid": {"datasets": ["heart_failure"], "attacks": attacks or ["none"], "malicious_fractions": fractions or [0.0],
                 "defences": defences, "seeds": [0]},
        "federation": federation,
    }


@pytest.mark.parametrize("root, held_back", [(0, 0), (None, 20)])  # default: 10 per class, 2 classes
def test_the_root_set_is_held_back_from_the_devices_and_none_with_root_size_0(monkeypatch, root, held_back):
    config = parse_config(grid(["fedavg"], root=root))  # any reference-free rule; FLAME itself: tests/test_flame.py
    seen: list[int] = []
    partition = runner.partition

    def spy(labels, *args, **kwargs):
        seen.append(len(labels))
        return partition(labels, *args, **kwargs)

    monkeypatch.setattr(runner, "partition", spy)
    (cell,) = config.cells()
    result = runner.run_cell(cell, config.federation)
    assert result.error_type is None and len(result.accuracy_per_round) == 1
    assert seen == [len(load_dataset("heart_failure", seed=0, test_fraction=config.federation.test_fraction).y_train) - held_back]


def test_the_default_root_set_is_ten_samples_per_class():
    federation = parse_config(grid(["fltrust"], root=None)).federation
    assert federation.root_size is None
    assert (federation.root_size_for(2), federation.root_size_for(10)) == (20, 100)
    assert parse_config(grid(["fltrust"], root=7)).federation.root_size_for(10) == 7


@pytest.mark.parametrize("defences, attacks, fractions, named", [
    (["fltrust"], None, None, "fltrust"),
    (["ppbfl_secure_rescaled"], None, None, "ppbfl_secure_rescaled"),
    (["flame"], ["out_of_range"], [0.2], "out_of_range"),
])
def test_no_root_set_refuses_what_needs_one(defences, attacks, fractions, named):
    with pytest.raises(ConfigError, match=named) as caught:
        parse_config(grid(defences, attacks, fractions))
    assert caught.value.key == "federation.root_size"
