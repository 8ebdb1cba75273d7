"""Peak extra memory of ``share`` / ``reconstruct`` (tracemalloc), inside the benchmark run.

The measurement itself lives in ``memory_profile.py`` (also runnable as a script). It is
wrapped in a one-round ``benchmark.pedantic`` so that it runs under ``--benchmark-only``; the
time shown for group ``memory`` is that of the traced measurement (tracemalloc slows
allocation), not a performance number. The peaks go to ``extra_info`` and are asserted
against the issue's targets: share <= 1.5x its output, reconstruct <= 3x its output
(not under ``PPBFL_BENCH_QUICK=1``: at d = 1e4 fixed-size buffers dominate the ratio).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "ppbfl_bench_memory_profile", Path(__file__).with_name("memory_profile.py")
)
memory_profile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(memory_profile)


def test_memory_share_reconstruct(benchmark, group, memory_case, quick):
    d, t, n = memory_case
    group("memory (tracemalloc; time not meaningful)", d=d, t=t, n=n)
    rows = benchmark.pedantic(memory_profile.measure, args=(d, t, n), rounds=1, iterations=1)
    print("\n" + memory_profile.format_table(rows))
    for r in rows:
        benchmark.extra_info[r["call"]] = {
            "peak_bytes": r["peak_bytes"],
            "output_bytes": r["output_bytes"],
            "peak_over_output": round(r["peak_over_output"], 4),
        }
    if quick:
        return  # at quick-mode sizes fixed buffers dominate; the targets are stated for d = 1e6
    failed = [r for r in rows if r["met"] is False]
    assert not failed, "memory targets missed:\n" + memory_profile.format_table(failed)
