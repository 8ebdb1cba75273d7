"""CPU time of the cases of ``test_bench_validity.py`` (issue 13), for a loaded machine.

``time.thread_time`` of the calling thread, so run it with ``PPBFL_THREADS=1`` (every kernel then
runs in that thread); same data and sizes as the benchmark; median of 41 calls (device cases) or 7
(edge cases). Prints the timings and the ratios the issue's targets are stated in::

    PPBFL_THREADS=1 python benchmarks/validity_cpu_time.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_bench_validity as bench
from conftest import field_vector

from ppbfl.defense import validity
from ppbfl.field import GF61, ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.sharing.seeded import share_compressed
from ppbfl.sharing.shamir import share


def cases() -> dict[str, Callable[[], object]]:
    """The benchmark's cases as zero-argument callables (same inputs as ``test_bench_validity.py``)."""
    params = bench.PARAMS
    g = np.random.default_rng(0).normal(size=bench.D)  # benchmark data only
    g *= 0.5 * params.honest_l2() / np.linalg.norm(g)
    update = (np.rint(g).astype(np.int64) % np.int64(GF61.p)).astype(np.uint64)
    rows = [row.copy() for row in field_vector("validity-rows", (bench.M, bench.D))]
    stream = validity.projection_stream(bench.SEED, params)
    bits = (field_vector("validity-bits", (bench.M, params.proof_length)) & np.uint64(1)).astype(np.uint64)
    masks, lam, ref = field_vector("validity-masks", bench.M), field_vector("validity-lam", bench.D), field_vector("validity-ref", bench.D)
    rng = FieldRNG()
    centred = validity.centred(update, GF61.p)

    def prove():
        y = validity.project(validity.projection_stream(bench.SEED, params), centred, params)
        return share(np.append(validity.bit_decompose(y, params, device=0), rng.random(1)), bench.T, bench.N, rng=rng)

    def verify():
        coins = validity.proof_coins(bench.SEED, bytes(32), params, stream=stream)
        sums = ops.row_dots(rows, lam, ref, coins.v, squares=True)
        return bench._proof_part(bits, masks, sums[3], coins)

    def two_passes():
        coins = validity.proof_coins(bench.SEED, bytes(32), params, stream=stream)
        ops.row_dots(rows, lam, ref, squares=True)
        return bench._proof_part(bits, masks, ops.row_dots(rows, coins.v, coins.v, squares=False)[0], coins)

    return {
        "device_share": lambda: share_compressed(update, bench.T, bench.N, stream=1),
        "device_prove": prove,
        "device_encode_checks": lambda: (validity.centred(update, GF61.p), validity.encoded_l2(update, GF61.p)),
        "edge_verify_today": lambda: ops.row_dots(rows, lam, ref, squares=True),
        "edge_verify_validity": verify,
        "edge_validity_two_passes": two_passes,
    }


def main() -> None:
    """Time every case and print the timings (ms) and the target ratios."""
    out = {}
    for name, call in cases().items():
        call()
        times = []
        for _ in range(7 if name.startswith("edge") else 41):
            start = time.thread_time()
            call()
            times.append(time.thread_time() - start)
        out[name] = float(np.median(times))
    print({k: round(v * 1e3, 3) for k, v in out.items()})
    print(
        f"prove/share {out['device_prove'] / out['device_share']:.3f} "
        f"enc/share {out['device_encode_checks'] / out['device_share']:.3f} "
        f"verify/today {out['edge_verify_validity'] / out['edge_verify_today']:.3f} "
        f"two/today {out['edge_validity_two_passes'] / out['edge_verify_today']:.3f}"
    )


if __name__ == "__main__":
    main()
