"""The ``ppbfl`` command: the demo's secure aggregate matches float FedAvg and names the liar."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ppbfl.cli import main
from ppbfl.demo import DemoConfig, run_demo
from ppbfl.field import available_backends


def test_demo_matches_float_fedavg_and_names_the_lying_edge_node():
    lines: list[str] = []
    reports = run_demo(DemoConfig(devices=6, rounds=3, hidden=32, liar=4), log=lines.append)
    assert len(reports) == 3
    for report in reports:
        assert report.named_liars == (4,)
        assert report.max_abs_error <= 2.0**-16  # fixed-point rounding of the mean, f = 16
        assert report.upload_vectors == 3
    assert reports[-1].accuracy > 0.8  # measured on the held-out split; majority class is 0.63
    assert "kernels ready" in lines[1] and "named liars [4]" in lines[2]


def test_demo_with_dropouts_and_no_liar():
    reports = run_demo(DemoConfig(devices=4, rounds=1, hidden=16, liar=None, dropped=2), log=lambda _: None)
    assert len(reports[0].edge_nodes_used) == 3 and reports[0].named_liars == ()


def test_demo_rejects_an_uncorrectable_configuration(capsys):
    assert main(["demo", "--rounds", "1", "--dropped", "1", "--liar", "2"]) == 2
    assert "at least t + 2 = 5 edge nodes online" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["info"], ["demo", "--rounds", "1", "--devices", "4", "--hidden", "16"]])
def test_console_entry_point_runs(args):
    done = subprocess.run([sys.executable, "-m", "ppbfl.cli", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    default_backend = os.environ.get("PPBFL_BACKEND") or available_backends()[0]
    expected = f"kernel backend: {default_backend}" if args == ["info"] else "named liars [2]"
    assert expected in done.stdout
