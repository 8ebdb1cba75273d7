"""reports/efficacy/targets.py on a tiny hand-made results.csv whose met / not-met outcomes follow
from the numbers put in (each expected verdict is computed here from those numbers)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "efficacy" / "targets.py"
FIELDS = ["dataset", "attack", "malicious_fraction", "defence", "seed", "final_accuracy", "per_class_recall",
          "backdoor_success", "detection_tpr", "detection_fpr"]
TARGET = 1
NEVER_TARGET = {(0.2, "ppbfl_secure_rescaled")}
"""Runs whose model never predicts the target class (recall 0 of class TARGET): a "met" there is trivial."""


@pytest.fixture(scope="module")
def targets():
    spec = importlib.util.spec_from_file_location("efficacy_targets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (fraction, defence) -> per seed (accuracy, backdoor success)
RUNS = {
    (0.0, "fedavg"): [(0.90, 0.02), (0.92, 0.02)],
    (0.0, "fltrust"): [(0.89, 0.02), (0.91, 0.02)],
    (0.0, "fltrust_clipped"): [(0.88, 0.02), (0.90, 0.02)],
    (0.0, "flame"): [(0.90, 0.02), (0.92, 0.02)],
    (0.0, "ppbfl_secure"): [(0.86, 0.02), (0.88, 0.02)],           # clean mean 0.87 vs FedAvg 0.91
    (0.0, "ppbfl_secure_rescaled"): [(0.89, 0.02), (0.91, 0.02)],
    (0.0, "ppbfl_flame"): [(0.90, 0.02), (0.92, 0.02)],
    (0.0, "flame_models"): [(0.90, 0.02), (0.92, 0.02)],
    (0.0, "ppbfl_flame_models"): [(0.90, 0.02), (0.925, 0.02)],      # gap 0.5 point
    (0.2, "fedavg"): [(0.90, 0.90), (0.90, 0.80)],
    (0.2, "fltrust"): [(0.90, 0.20), (0.90, 0.10)],
    (0.2, "fltrust_clipped"): [(0.90, 0.20), (0.90, 0.10)],
    (0.2, "flame"): [(0.90, 0.02), (0.90, 0.06)],                   # best plaintext: mean 0.04
    (0.2, "ppbfl_secure"): [(0.93, 0.30), (0.90, 0.30)],            # twin gap 3 points at seed 0
    (0.2, "ppbfl_secure_rescaled"): [(0.90, 0.05), (0.90, 0.05)],   # mean exactly 0.05
    (0.2, "ppbfl_flame"): [(0.905, 0.03), (0.90, 0.07)],            # mean 0.05, gap 0.5 point
    (0.2, "flame_models"): [(0.90, 0.10), (0.90, 0.10)],
    (0.2, "ppbfl_flame_models"): [(0.88, 0.10), (0.90, 0.10)],       # gap 2 points
    (0.4, "fedavg"): [(0.90, 1.0), (0.90, 1.0)],
    (0.4, "fltrust"): [(0.90, 0.30), (0.90, 0.30)],
    (0.4, "fltrust_clipped"): [(0.90, 0.30), (0.90, 0.30)],
    (0.4, "flame"): [(0.90, 0.08), (0.90, 0.04)],                   # best mean 0.06 > 0.05
    (0.4, "ppbfl_secure"): [(0.90, 0.30), (0.90, 0.30)],
    (0.4, "ppbfl_secure_rescaled"): [(0.90, 0.30), (0.90, 0.30)],
    (0.4, "ppbfl_flame"): [(0.90, 0.00), (0.90, 0.00)],
    (0.4, "flame_models"): [(0.90, 0.10), (0.90, 0.10)],
    (0.4, "ppbfl_flame_models"): [(0.90, 0.10), (0.90, 0.10)],
}


def write_grid(folder: Path, wall_s: float | None) -> None:
    (folder / "iid").mkdir(parents=True)
    with open(folder / "iid" / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for (fraction, defence), seeds in RUNS.items():
            for seed, (acc, bd) in enumerate(seeds):
                recall = [0.9, 0.9]
                recall[TARGET] = 0.0 if (fraction, defence) in NEVER_TARGET else 0.8
                writer.writerow({"dataset": "toy", "attack": "none" if fraction == 0 else "backdoor",
                                 "malicious_fraction": f"{fraction:.2f}", "defence": defence, "seed": seed,
                                 "final_accuracy": acc, "per_class_recall": ";".join(map(str, recall)),
                                 "backdoor_success": bd, "detection_tpr": "", "detection_fpr": ""})
    if wall_s is not None:
        machine = {"cpu": "toy", "cores": 2, "python": "3.11", "load_before": 1.0}
        (folder / "wall.json").write_text(json.dumps({"machine": machine, "jobs": 2, "grids": {"iid": {"wall_s": wall_s}}}))
    (folder / "config_iid.toml").write_text(f"[attack_params.backdoor]\ntarget = {TARGET}\n")
    (folder / "README.md").write_text("intro\n<!-- targets:begin -->\nold\n<!-- targets:end -->\noutro\n")


def mean(xs):
    return sum(xs) / len(xs)


def expected_backdoor(fraction: float, rule: str) -> str:
    plain = [mean([bd for _, bd in RUNS[(fraction, p)]]) for p in ("fedavg", "fltrust", "fltrust_clipped", "flame", "flame_models")]
    if min(plain) > 0.05:
        return "no plaintext rule reaches it"
    if mean([bd for _, bd in RUNS[(fraction, rule)]]) > 0.05 + 1e-12:
        return "not met"
    return "met (trivially: target-class recall 0.0 %)" if (fraction, rule) in NEVER_TARGET else "met"


def expected_twin(fraction: float, rule: str, twin: str) -> str:
    gap = max(abs(a - b) for (a, _), (b, _) in zip(RUNS[(fraction, rule)], RUNS[(fraction, twin)]))
    return "met" if 100 * gap <= 1.0 + 1e-9 else "not met"


def expected_clean(rule: str) -> str:
    fedavg = mean([a for a, _ in RUNS[(0.0, "fedavg")]])
    return "met" if 100 * (mean([a for a, _ in RUNS[(0.0, rule)]]) - fedavg) >= -2.0 - 1e-9 else "not met"


def test_targets_are_marked_cell_by_cell_as_the_numbers_say(targets, tmp_path):
    write_grid(tmp_path, wall_s=600.0)
    runs = targets.load(tmp_path)
    for fraction in (0.2, 0.4):
        for rule in targets.TWINS:
            verdict = targets.backdoor_verdict(runs, ("toy", "iid", fraction), rule)[0]
            assert verdict == expected_backdoor(fraction, rule), (fraction, rule)
    for fraction in (0.0, 0.2, 0.4):
        for rule, twin in targets.TWINS.items():
            gap = targets.twin_gap(runs, ("toy", "iid", fraction), rule)
            assert ("met" if gap <= 1.0 + 1e-9 else "not met") == expected_twin(fraction, rule, twin)
    # the outcomes above cover both verdicts of every target
    assert {expected_backdoor(f, r) for f in (0.2, 0.4) for r in targets.TWINS} == {
        "met", "met (trivially: target-class recall 0.0 %)", "not met", "no plaintext rule reaches it"}
    assert {expected_twin(0.2, r, t) for r, t in targets.TWINS.items()} == {"met", "not met"}
    assert {expected_clean(r) for r in targets.TWINS} == {"met", "not met"}

    assert targets.main(["targets.py", str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("intro\n<!-- targets:begin -->\n") and readme.endswith("<!-- targets:end -->\noutro\n")
    assert "old" not in readme
    rows = {line.split(" | ")[0].lstrip("| "): line for line in readme.splitlines() if line.startswith("| ppbfl")}
    for rule in targets.TWINS:
        clean_met = int(expected_clean(rule) == "met")
        backdoor = [expected_backdoor(f, rule) for f in (0.2, 0.4)]
        applies = [v for v in backdoor if v != "no plaintext rule reaches it"]
        met = [v for v in applies if v.startswith("met")]
        trivial = [v for v in met if "trivially" in v]
        twins = [expected_twin(f, rule, targets.TWINS[rule]) for f in (0.0, 0.2, 0.4)]
        assert rows[rule] == (f"| {rule} | {len(met)} / {len(applies)} ({len(trivial)}) | {twins.count('met')} / 3 | "
                              f"{clean_met} / 1 |")
    assert "600 s" in readme and "**met**" in readme


def test_the_time_target_fails_past_the_stated_bound_and_a_failed_run_is_not_met(targets, tmp_path):
    write_grid(tmp_path, wall_s=float(targets.TIME_LIMIT_S + 1))
    text = targets.tables(targets.load(tmp_path), json.loads((tmp_path / "wall.json").read_text()))
    assert "**not met**" in text
    runs = targets.load(tmp_path)
    runs[("toy", "iid", 0.2, "ppbfl_flame")][1]["backdoor"] = None  # a failed run
    runs[("toy", "iid", 0.2, "ppbfl_flame")][1]["accuracy"] = None
    assert targets.backdoor_verdict(runs, ("toy", "iid", 0.2), "ppbfl_flame")[0] == "not met (failed run)"
    assert targets.twin_gap(runs, ("toy", "iid", 0.2), "ppbfl_flame") is None
    assert "No `wall.json`" in targets.tables(runs, None)
