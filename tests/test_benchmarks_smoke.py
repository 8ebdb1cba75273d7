"""The benchmark suite itself runs: every benchmark and its correctness assertions at small sizes.

Timings are not taken here (``--benchmark-disable``); speed is measured by the suite proper,
see ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FLOWER = "benchmarks/test_bench_flower.py"
FLOWER_KINDS = ("fedavg", "secaggplus", "ppbfl")


def _quick(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PPBFL_BENCH_QUICK="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--benchmark-disable", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def test_benchmark_suite_runs_in_quick_mode():
    done = _quick("benchmarks", "--ignore", FLOWER)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_flower_benchmark_runs_in_quick_mode_one_engine_start_per_process():
    """Each Flower case in its own process: Ray does not start a third time in one process."""
    for kind in FLOWER_KINDS:
        done = _quick(FLOWER, "-k", kind)
        assert done.returncode == 0, kind + ": " + done.stdout[-4000:] + done.stderr[-2000:]
        assert "1 passed" in done.stdout, kind
