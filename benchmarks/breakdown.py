"""Where the time of ppbfl's ``muladd``, ``share`` and ``reconstruct`` goes (diagnostic script).

Times the pieces of each call separately at d = 1e6 (median of repeated calls, in ms):
validation, the bare kernel on the thread pool, ChaCha20 coefficient generation (one thread
and on the pool), the Horner kernel (one thread and on the pool), output allocation, and the
memory floors. Uses ppbfl internals (the backend's range kernels, ``map_blocks``,
``PRG_BLOCK``): if those change, update this script; the benchmark suite itself only uses the
public API.

    /work/venv/bin/python benchmarks/breakdown.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ppbfl.field import GF61, FieldRNG, muladd
from ppbfl.field.backend import get_backend
from ppbfl.field.csprng import PRG_BLOCK
from ppbfl.field.threads import map_blocks, split_call, worker_count
from ppbfl.sharing import reconstruct, share


def median_ms(fn: Callable[[], Any], repeat: int = 60) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    kernels = get_backend()
    p = GF61.modulus
    d = 10**6
    rng = FieldRNG(b"breakdown".ljust(32, b"\0"))
    a, b, c = rng.random(d), rng.random(d), rng.random(d)
    out = np.empty(d, dtype=np.uint64)
    print(f"d = {d}, {worker_count()} kernel threads; medians in ms\n")

    print("muladd")
    print(f"  muladd(a, b, c, out=out)                    {median_ms(lambda: muladd(a, b, c, out=out)):8.3f}")
    print(f"  validation only (3x range check)            "
          f"{median_ms(lambda: [GF61.elements(x, 'x', ndim=1) for x in (a, b, c)]):8.3f}")
    print(f"  kernel only (split_call, all threads)       "
          f"{median_ms(lambda: split_call(kernels.muladd_range, d, a, b, c, out, p)):8.3f}")
    print(f"  numpy.add(a, b, out=out) floor              {median_ms(lambda: np.add(a, b, out=out)):8.3f}")

    blocks = -(-d // PRG_BLOCK)
    for t, n in ((3, 5), (6, 10)):
        share_and_reconstruct(a, t, n, blocks)


def share_and_reconstruct(a: np.ndarray, t: int, n: int, blocks: int) -> None:
    """Time the pieces of ``share`` and ``reconstruct`` for one ``(t, n)`` (length ``a.size``)."""
    kernels = get_backend()
    p = GF61.modulus
    d = a.size
    shares_out = np.empty((n, d), dtype=np.uint64)
    points = np.arange(1, n + 1, dtype=np.uint64)
    coeffs = [np.empty((t - 1, min(PRG_BLOCK, d - k * PRG_BLOCK)), dtype=np.uint64) for k in range(blocks)]
    seed = b"breakdown-share".ljust(32, b"\0")

    def gen(k: int) -> None:
        FieldRNG(seed, block=k).fill(coeffs[k].reshape(-1))

    def horner(k: int) -> None:
        kernels.horner_share_range(a, coeffs[k], points, shares_out, p, np.uint64(k * PRG_BLOCK),
                                   np.uint64(0), np.uint64(coeffs[k].shape[1]))

    src = np.ones((n, d), dtype=np.uint64)
    print(f"\nshare (t, n) = ({t}, {n}), output {n * d * 8 / 2**20:.0f} MiB")
    print(f"  share(secret, t, n, out=out)                {median_ms(lambda: share(a, t, n, out=shares_out)):8.3f}")
    print(f"  share(secret, t, n) (allocating)            {median_ms(lambda: share(a, t, n), 30):8.3f}")
    print(f"  ChaCha20 coefficients, 1 thread             {median_ms(lambda: [gen(k) for k in range(blocks)]):8.3f}")
    print(f"  ChaCha20 coefficients, per block on pool    {median_ms(lambda: map_blocks(gen, blocks)):8.3f}")
    print(f"  Horner kernel, 1 thread                     {median_ms(lambda: [horner(k) for k in range(blocks)]):8.3f}")
    print(f"  Horner kernel, per block on pool            {median_ms(lambda: map_blocks(horner, blocks)):8.3f}")
    print(f"  np.empty(output) + first write (1 thread)   "
          f"{median_ms(lambda: np.empty((n, d), dtype=np.uint64).fill(1), 30):8.3f}")
    print(f"  numpy.copyto floor                          {median_ms(lambda: np.copyto(shares_out, src)):8.3f}")

    shares = share(a, t, n)
    rec_out = np.empty(d, dtype=np.uint64)
    w = np.arange(1, t + 1, dtype=np.uint64)
    print(f"reconstruct (t, n) = ({t}, {n})")
    print(f"  reconstruct(shares[:t], 1..t)               "
          f"{median_ms(lambda: reconstruct(shares[:t], range(1, t + 1))):8.3f}")
    print(f"  reconstruct(shares, 1..n, t=t)              "
          f"{median_ms(lambda: reconstruct(shares, range(1, n + 1), t=t)):8.3f}")
    print(f"  validation of t rows                        {median_ms(lambda: GF61.elements(shares[:t], 's', ndim=2)):8.3f}")
    print(f"  validation of n rows                        {median_ms(lambda: GF61.elements(shares, 's', ndim=2)):8.3f}")
    print(f"  weighted-rowsum kernel only (all threads)   "
          f"{median_ms(lambda: split_call(kernels.weighted_rowsum_range, d, w, shares[:t], rec_out, p)):8.3f}")


if __name__ == "__main__":
    main()
