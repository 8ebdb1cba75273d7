"""Runner reproducibility, the ``ppbfl experiment`` CLI end to end, config validation naming the key."""

from __future__ import annotations

import csv
import tomllib

import numpy as np
import pytest

from ppbfl.cli import main
from ppbfl.fl.config import load_config, parse_config
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.report import atomic_path, write_all
from ppbfl.fl.runner import run_experiment

TINY = """
[grid]
datasets = ["breast_cancer"]
attacks = ["none", "sign_flip", "backdoor"]
malicious_fractions = [0.0, 0.2]
defences = ["fedavg", "fltrust"]
seeds = [3]

[federation]
devices = 5
rounds = 2
model = "logreg"
root_size = 10

[attack_params.sign_flip]
factor = 2.0
"""


def test_same_config_and_seed_give_identical_csv(tmp_path):
    config = parse_config(tomllib.loads(TINY))
    assert len(config.cells()) == 6  # none at 0 %, two attacks at 20 %, two defences
    first = write_all(run_experiment(config, progress=False), tmp_path / "a")
    second = write_all(run_experiment(config, progress=False), tmp_path / "b")
    assert first["csv"].read_bytes() == second["csv"].read_bytes()
    other = parse_config(tomllib.loads(TINY.replace("seeds = [3]", "seeds = [4]")))
    third = write_all(run_experiment(other, progress=False), tmp_path / "c")
    assert third["csv"].read_bytes() != first["csv"].read_bytes()


def test_cli_experiment_writes_csv_markdown_and_png(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(TINY)
    out = tmp_path / "out"
    assert main(["experiment", str(config), "--output", str(out), "--no-progress"]) == 0
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].startswith("dataset,attack,malicious_fraction,defence,seed,malicious_devices")
    assert len(lines) == 1 + 6
    rows = list(csv.DictReader(lines))
    for row in rows:  # clean runs carry the trigger's baseline rate; sign flip has no trigger
        assert (row["backdoor_success"] == "") == (row["attack"] == "sign_flip")
        per_round = row["backdoor_success_per_round"].split(";")
        assert (len(per_round), per_round[-1]) == (2, row["backdoor_success"]) or row["attack"] == "sign_flip"
        assert row["accuracy_per_round"].split(";")[-1] == row["final_accuracy"]
        assert len(row["malicious_devices"].split(";")) == (1 if row["attack"] != "none" else 0) or row["attack"] == "none"
    assert {row["malicious_devices"] for row in rows if row["attack"] == "none"} == {""}
    markdown = (out / "results.md").read_text()
    assert f"ppbfl experiment {config} --output {out}" in markdown
    assert "| sign_flip | fltrust |" in markdown and "backdoor success" in markdown
    assert "## breast_cancer: detection" in markdown and "| attack | malicious | fltrust |" in markdown  # FedAvg has no rates
    png = out / "accuracy_breast_cancer.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out


def test_cli_reports_a_bad_config_naming_the_key(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(TINY.replace("rounds = 2", "rounds = 0"))
    assert main(["experiment", str(config), "--no-progress"]) == 2
    assert "federation.rounds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("rounds = 2", "rounds = 'two'", "federation.rounds"),
        ("rounds = 2", "roundz = 2", "federation.roundz"),
        ('model = "logreg"', 'model = "resnet"', "federation.model"),
        ('defences = ["fedavg", "fltrust"]', 'defences = ["fedavg", "bulyan"]', "grid.defences"),
        ('attacks = ["none", "sign_flip", "backdoor"]', 'attacks = ["none", "flip"]', "grid.attacks"),
        ("malicious_fractions = [0.0, 0.2]", "malicious_fractions = [0.0, 1.5]", "grid.malicious_fractions"),
        ("seeds = [3]", "seeds = []", "grid.seeds"),
        ('datasets = ["breast_cancer"]', 'datasets = ["mnist"]', "grid.datasets"),
        ("factor = 2.0", "lambda = 2.0", "attack_params.sign_flip.lambda"),
        ("[attack_params.sign_flip]", "[attack_params.flip]", "attack_params.flip"),
        ("[grid]", "[grid]\nextra = 1", "grid.extra"),
        ('model = "logreg"', 'model = "cnn"', "federation.model"),
        ("root_size = 10", "root_size = 10\nmalicious_devices = [5]", "federation.malicious_devices"),
        ("root_size = 10", "root_size = 10\nmalicious_devices = [1, 1]", "federation.malicious_devices"),
        ("root_size = 10", "root_size = 10\nmalicious_devices = []", "federation.malicious_devices"),
        ("[grid]", "[grids]\nx = 1\n[grid]", "grids"),
    ],
)
def test_bad_config_values_name_the_key(old, new, key):
    assert old in TINY
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(TINY.replace(old, new)))
    assert err.value.key == key and key in str(err.value)


def test_malicious_devices_can_be_named_and_are_recorded():
    text = TINY.replace("root_size = 10", "root_size = 10\nmalicious_devices = [4, 2]").replace("[0.0, 0.2]", "[0.0, 0.2, 0.4]")
    config = parse_config(tomllib.loads(text))
    results = {(r.cell.attack, r.cell.fraction): r.malicious_devices for r in run_experiment(config, progress=False)}
    assert results[("none", 0.0)] == ()
    assert results[("sign_flip", 0.2)] == (4,) and results[("sign_flip", 0.4)] == (2, 4)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[grid\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_csv_dataset_column_errors_surface_through_the_runner(tmp_path, capsys):
    data = tmp_path / "patients.csv"
    data.write_text("age,outcome\n" + "\n".join(f"{i},{i % 2}" for i in range(60)))
    config = tmp_path / "c.toml"
    config.write_text(TINY.replace('datasets = ["breast_cancer"]', f'datasets = ["csv:{data}:death"]'))
    assert main(["experiment", str(config), "--no-progress", "--output", str(tmp_path / "o")]) == 1
    assert "MissingColumnError: column 'death'" in capsys.readouterr().err
    assert {r["error_type"] for r in _rows(tmp_path / "o")} == {"MissingColumnError"}


SECURE = TINY.replace('defences = ["fedavg", "fltrust"]', 'defences = ["fltrust", "ppbfl_secure"]') + """
[defence_params.ppbfl_secure]
t = 2
n = 3
"""


def test_secure_defence_runs_in_the_grid_reproducibly_with_its_own_column(tmp_path, capsys):
    config = parse_config(tomllib.loads(SECURE))
    first = write_all(run_experiment(config, progress=False), tmp_path / "a")
    # the same grid in two spawned worker processes, through the CLI, with its progress bar
    (tmp_path / "c.toml").write_text(SECURE)
    assert main(["experiment", str(tmp_path / "c.toml"), "--jobs", "2", "--output", str(tmp_path / "b")]) == 0
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "ppbfl experiment: 100%" in bar and "6/6" in bar
    assert first["csv"].read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()
    rows = list(csv.DictReader(first["csv"].read_text().splitlines()))
    assert [r["defence"] for r in rows].count("ppbfl_secure") == 3  # registry key in the CSV
    markdown = first["markdown"].read_text()
    assert "| attack | malicious | fltrust | ppbfl (secure) + trust |" in markdown  # the efficacy table's column (trust on by default)
    assert "| sign_flip | ppbfl (secure) + trust |" in markdown
    # the sign-flipped device gets weight 0 in every round: the secure run tracks plaintext FLTrust
    acc = {(r["attack"], r["defence"]): float(r["final_accuracy"]) for r in rows}
    assert abs(acc[("sign_flip", "ppbfl_secure")] - acc[("sign_flip", "fltrust")]) < 0.05


def _rows(folder):
    return list(csv.DictReader((folder / "results.csv").read_text().splitlines()))


def test_an_update_scaled_1e5_is_left_out_by_the_secure_rule_and_the_grid_completes(tmp_path):
    # issue 17: one malicious update scaled x 1e5 (beyond max_abs = 64) once aborted the whole grid
    config = tmp_path / "c.toml"
    config.write_text(SECURE.replace('attacks = ["none", "sign_flip", "backdoor"]', 'attacks = ["none", "scaling"]')
                      .replace("[attack_params.sign_flip]\nfactor = 2.0", "[attack_params.scaling]\nfactor = 1e5"))
    assert main(["experiment", str(config), "--no-progress", "--output", str(tmp_path / "o")]) == 0
    rows = {(r["attack"], r["defence"]): r for r in _rows(tmp_path / "o")}
    assert len(rows) == 4 and all(r["error_type"] == "" for r in rows.values())
    # the scaled device cannot encode its update and takes no part: the secure run tracks its clean run
    secure_clean, secure_scaled = (float(rows[(a, "ppbfl_secure")]["final_accuracy"]) for a in ("none", "scaling"))
    assert abs(secure_scaled - secure_clean) < 0.05
    # ... and it is excluded in every round (TPR 1)
    secure = rows[("scaling", "ppbfl_secure")]
    assert secure["detection_tpr_per_round"] == "1.0000;1.0000" and secure["detection_tpr"] == "1.0000"
    fpr = [float(v) for v in secure["detection_fpr_per_round"].split(";")]
    assert len(fpr) == 2 and float(secure["detection_fpr"]) == pytest.approx(np.mean(fpr), abs=1e-4)
    assert rows[("none", "ppbfl_secure")]["detection_tpr"] == ""  # no malicious device: no TPR
    assert len(rows[("scaling", "fltrust")]["detection_tpr_per_round"].split(";")) == 2


def test_failed_runs_are_recorded_with_their_error_and_the_grid_goes_on(tmp_path, capsys):
    # heart failure has 12 features: a trigger on feature 20 fails there, not on breast cancer (30);
    # max_abs = 0.01 puts the secure rule's root-set reference beyond the bound in every cell
    config = tmp_path / "c.toml"
    config.write_text(
        SECURE.replace('datasets = ["breast_cancer"]', 'datasets = ["breast_cancer", "heart_failure"]')
        .replace('attacks = ["none", "sign_flip", "backdoor"]', 'attacks = ["none", "backdoor"]')
        .replace("n = 3", "n = 3\nmax_abs = 0.01")
        + "\n[attack_params.backdoor]\nfeatures = [20]\n"
    )
    out = tmp_path / "o"
    assert main(["experiment", str(config), "--no-progress", "--output", str(out)]) == 1
    rows = _rows(out)
    assert len(rows) == 8  # 2 datasets x (clean, backdoor) x 2 defences: every cell has its row
    by_cell = {(r["dataset"], r["attack"], r["defence"]): r for r in rows}
    for (dataset, _, defence), row in by_cell.items():
        if dataset == "heart_failure":  # the clean cells too: their trigger probe is the same trigger
            assert row["error_type"] == "ConfigError" and "attack_params.backdoor.features" in row["error_message"]
        elif defence == "ppbfl_secure":
            assert row["error_type"] == "UpdateRangeError" and "defence_params.ppbfl_secure.max_abs" in row["error_message"]
        else:
            assert row["error_type"] == row["error_message"] == "" and 0.5 < float(row["final_accuracy"]) <= 1
            continue
        assert row["final_accuracy"] == "" and "\n" not in row["error_message"]
    err = capsys.readouterr().err
    assert "6 of 8 runs failed" in err and "heart_failure backdoor 20% fltrust seed 3: ConfigError" in err
    markdown = (out / "results.md").read_text()
    assert "## Failed runs" in markdown and "| heart_failure | backdoor | 20% | fltrust | 3 | ConfigError: " in markdown


@pytest.mark.parametrize("old, new, key", [("t = 2", "t = 3", "defence_params.ppbfl_secure.n"),
                                           ("t = 2", "tee = 2", "defence_params.ppbfl_secure.tee")])
def test_bad_secure_parameters_name_the_key(old, new, key):
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(SECURE.replace(old, new)))
    assert err.value.key == key


def test_a_second_run_into_the_same_folder_leaves_no_stale_output(tmp_path):
    base = TINY.replace('defences = ["fedavg", "fltrust"]', 'defences = ["fedavg"]').replace("rounds = 2", "rounds = 1")
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(base.replace('datasets = ["breast_cancer"]', 'datasets = ["breast_cancer", "heart_failure"]')
                     .replace("[attack_params.sign_flip]", "[attack_params.backdoor]\nfeatures = [0]\n[attack_params.sign_flip]"))
    second.write_text(base.replace('attacks = ["none", "sign_flip", "backdoor"]', 'attacks = ["none", "sign_flip"]'))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.png").write_bytes(b"mine")  # the user's files beside the outputs stay
    assert main(["experiment", str(first), "--no-progress", "--output", str(out)]) == 0
    assert (out / "accuracy_heart_failure.png").exists()
    assert main(["experiment", str(second), "--no-progress", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_breast_cancer.png", "notes.png", "results.csv", "results.md", "timings.csv",
    ]
    assert (out / "notes.png").read_bytes() == b"mine"
    assert {r["dataset"] for r in _rows(out)} == {"breast_cancer"} and "heart_failure" not in (out / "results.md").read_text()


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
        assert target.read_text() == "old\n"  # readers see the old file until the move
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]
