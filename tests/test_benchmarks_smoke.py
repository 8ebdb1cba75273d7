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


def test_benchmark_suite_runs_in_quick_mode():
    env = dict(os.environ, PPBFL_BENCH_QUICK="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
