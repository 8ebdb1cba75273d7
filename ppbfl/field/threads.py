"""Split one kernel call over a small thread pool.

The field kernels release the GIL and take a half-open index range ``[lo, hi)``, so a large
call is cut into one contiguous range per worker and run on a shared
:class:`~concurrent.futures.ThreadPoolExecutor`. Small calls (below :data:`MIN_SPLIT`
elements per worker) run inline: thread hand-off costs tens of microseconds.

The pool size is ``PPBFL_THREADS`` if set, else the number of CPUs this process may use.
Unlike Numba's ``parallel=True`` with its default ``workqueue`` layer, this is safe to call
from several Python threads at once (e.g. several in-process edge nodes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["worker_count", "split_call", "map_blocks", "MIN_SPLIT"]

MIN_SPLIT = 1 << 16
_pool: ThreadPoolExecutor | None = None


def worker_count() -> int:
    """Number of threads a large kernel call is split over (``PPBFL_THREADS`` or CPU count)."""
    env = os.environ.get("PPBFL_THREADS")
    if env:
        if not env.strip().isdigit() or int(env) < 1:
            raise ValueError(f"PPBFL_THREADS = {env!r}: expected a positive integer")
        return int(env)
    return max(1, len(os.sched_getaffinity(0)))


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="ppbfl-kernel")
    return _pool


def split_call(kernel: Callable[..., Any], total: int, *args: Any) -> list[Any]:
    """Run ``kernel(*args, lo, hi)`` over ``[0, total)``, split into per-worker ranges.

    ``lo`` and ``hi`` are passed as ``np.uint64`` (unsigned indices let Numba vectorise).
    Returns the kernels' return values in range order (e.g. partial dot products).
    """
    parts = min(worker_count(), total // MIN_SPLIT)
    if parts <= 1:
        return [kernel(*args, np.uint64(0), np.uint64(total))]
    bounds = [np.uint64(total * k // parts) for k in range(parts + 1)]
    pool = _executor()
    futures = [pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(1, parts)]
    first = kernel(*args, bounds[0], bounds[1])
    return [first] + [f.result() for f in futures]


def map_blocks(work: Callable[[int], Any], blocks: int) -> list[Any]:
    """Run ``work(b)`` for ``b = 0 .. blocks-1`` on the pool; results in block order.

    One block, or a pool of one, runs inline. ``work`` must not itself wait on the pool
    (call kernels directly inside it, not :func:`split_call`).
    """
    if blocks <= 1 or worker_count() == 1:
        return [work(b) for b in range(blocks)]
    pool = _executor()
    return [f.result() for f in [pool.submit(work, b) for b in range(blocks)]]
