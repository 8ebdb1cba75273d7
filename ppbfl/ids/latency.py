"""Per-window latency and throughput of a classifier on one core (what a gateway pays per record)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["measure"]


def measure(classify_one: Callable[[np.ndarray], object], classify_batch: Callable[[np.ndarray], object],
            windows: np.ndarray, *, warmup: int = 50, batch: int = 256) -> dict[str, float]:
    """Time ``classify_one`` on every window of ``windows: (N, T, F)`` one at a time (after
    ``warmup`` untimed calls) and ``classify_batch`` on ``batch``-window chunks, with torch on one
    thread. Returns ``p50_us``, ``p99_us``, ``mean_us`` (single window), ``windows_per_s_single``
    (1 / mean) and ``windows_per_s_batched``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in range(min(warmup, len(windows))):
            classify_one(windows[i])
        times = np.empty(len(windows))
        for i, w in enumerate(windows):
            tick = time.perf_counter_ns()
            classify_one(w)
            times[i] = time.perf_counter_ns() - tick
        begin = time.perf_counter()
        for start in range(0, len(windows), batch):
            classify_batch(windows[start : start + batch])
        batched = len(windows) / (time.perf_counter() - begin)
    finally:
        torch.set_num_threads(threads)
    us = times / 1e3
    return {
        "p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)), "mean_us": float(us.mean()),
        "windows_per_s_single": float(1e6 / us.mean()), "windows_per_s_batched": float(batched),
    }
