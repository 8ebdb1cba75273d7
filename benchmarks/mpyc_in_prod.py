"""MPyC baseline for benchmarks/test_bench_mpc.py: one secure dot product with ``mpc.in_prod``.

Run as ``python mpyc_in_prod.py -M3`` (MPyC starts 3 parties on localhost, threshold 1 = our
``t = 2``). The vector length comes from ``PPBFL_MPYC_D``. Inputs are random sharings made with
MPyC's pseudorandom secret sharing (no communication), so only ``in_prod`` (local products plus
one resharing) and the output of the result are timed. Party 0 prints
``MPYC_IN_PROD_SECONDS <seconds>`` and ``MPYC_SETUP_SECONDS <seconds>``.
"""

import os
import time

from mpyc.runtime import mpc


async def main() -> None:
    d = int(os.environ.get("PPBFL_MPYC_D", "1000"))
    secfld = mpc.SecFld(2**61 - 1)
    await mpc.start()
    t0 = time.perf_counter()
    x = [mpc._random(secfld) for _ in range(d)]
    y = [mpc._random(secfld) for _ in range(d)]
    t1 = time.perf_counter()
    await mpc.barrier()
    t2 = time.perf_counter()
    z = mpc.in_prod(x, y)
    value = await mpc.output(z)
    t3 = time.perf_counter()
    if mpc.pid == 0:
        print(f"MPYC_SETUP_SECONDS {t1 - t0:.6f}")
        print(f"MPYC_IN_PROD_SECONDS {t3 - t2:.6f}")
        print(f"MPYC_VALUE {int(value)}")
    await mpc.shutdown()


if __name__ == "__main__":
    mpc.run(main())
