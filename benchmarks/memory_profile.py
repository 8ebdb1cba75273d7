"""Peak extra memory of ppbfl's ``share`` and ``reconstruct``, measured with ``tracemalloc``.

NumPy reports its data buffers to ``tracemalloc``, so the traced peak during a call covers the
output, every temporary array and Python-level allocations (on all threads). Inputs are
allocated, and every kernel is warmed up (JIT cache loaded), before tracing starts.

Issue targets, for d = 1e6 at (t, n) = (6, 10):

* ``share``: peak extra memory <= 1.5x the size of its output (n * d * 8 bytes);
* ``reconstruct``: peak extra memory <= 3x the size of its output (d * 8 bytes).

"Peak extra" here is the strict reading: the traced peak *including* the output the call
allocates (for ``share(..., out=...)`` there is no output allocation, so it is scratch only).

Run standalone::

    /work/venv/bin/python benchmarks/memory_profile.py [d] [t] [n]

``test_bench_memory.py`` runs the same measurement inside the benchmark suite.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from ppbfl.field import FieldRNG
from ppbfl.sharing import reconstruct, share

SHARE_TARGET = 1.5
RECONSTRUCT_TARGET = 3.0


def traced_peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()`` under tracemalloc; return its result and the peak bytes above the start."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, peak - base


def measure(d: int, t: int, n: int) -> list[dict[str, Any]]:
    """Peak traced memory of share / reconstruct variants at ``(d, t, n)``, one dict per call."""
    secret = FieldRNG(b"memory-secret".ljust(32, b"\0")).random(d)
    out = np.empty((n, d), dtype=np.uint64)
    # warm up: load every kernel, build the Lagrange cache, start the thread pool
    share(secret[:1000], t, n)
    shares = share(secret, t, n, out=out)
    reconstruct(shares[:t], range(1, t + 1))
    reconstruct(shares, range(1, n + 1), t=t)

    share_out_bytes = n * d * 8
    rec_out_bytes = d * 8
    rows = []

    def record(name: str, fn: Callable[[], Any], output_bytes: int, target: float | None) -> Any:
        result, peak = traced_peak(fn)
        rows.append({
            "call": name,
            "d": d, "t": t, "n": n,
            "output_bytes": output_bytes,
            "peak_bytes": peak,
            "peak_over_output": peak / output_bytes,
            "target": target,
            "met": None if target is None else peak <= target * output_bytes,
        })
        return result

    fresh = record(f"share(secret, {t}, {n})", lambda: share(secret, t, n), share_out_bytes, SHARE_TARGET)
    assert np.array_equal(reconstruct(fresh[:t], range(1, t + 1)), secret)
    del fresh
    record(f"share(secret, {t}, {n}, out=out)", lambda: share(secret, t, n, out=out), share_out_bytes, None)
    rec = record(f"reconstruct(shares[:{t}], 1..{t})", lambda: reconstruct(out[:t], range(1, t + 1)),
                 rec_out_bytes, RECONSTRUCT_TARGET)
    assert np.array_equal(rec, secret)
    rec = record(f"reconstruct(shares, 1..{n}, t={t})", lambda: reconstruct(out, range(1, n + 1), t=t),
                 rec_out_bytes, RECONSTRUCT_TARGET)
    assert np.array_equal(rec, secret)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| call | output | traced peak | peak / output | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        target = "-" if r["target"] is None else f"<= {r['target']:g}x"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**NO**")
        lines.append(
            f"| `{r['call']}` | {r['output_bytes'] / 2**20:.2f} MiB | {r['peak_bytes'] / 2**20:.2f} MiB "
            f"| {r['peak_over_output']:.3f}x | {target} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    d, t, n = (int(x) for x in (argv + ["1000000", "6", "10"][len(argv):])[:3])
    rows = measure(d, t, n)
    print(f"tracemalloc peaks, d = {d}, (t, n) = ({t}, {n})\n")
    print(format_table(rows))
    return 0 if all(r["met"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
