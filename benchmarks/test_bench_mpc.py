"""Secure dot products on shares: ppbfl honest-majority and Beaver modes vs MPyC's ``in_prod``.

Group ``secure dot d=... t=2 n=3`` (3 parties, threshold t = 2, i.e. polynomials of degree 1;
MPyC's ``-M3`` default threshold is the same):

* ``hm`` -- :func:`ppbfl.mpc.testing.hm_dot_open`: 3 local product-sums, PRZS re-randomisation, robust
  opening of one scalar. In-process (all parties in one process, no network).
* ``beaver online`` -- :func:`ppbfl.mpc.testing.beaver_dot` plus opening the result; ``eps``/``delta``
  opened from t shares (``robust=False``); the triple is made outside the timed region.
* ``beaver online robust`` -- the same with ``eps``/``delta`` robustly opened from all n shares.
* ``beaver triple`` -- the dealer's offline cost of one length-d triple.
* ``mpyc in_prod`` -- ``mpc.in_prod`` on random (PRSS) sharings with MPyC 3 parties on localhost
  (separate processes, real sockets), run as ``python mpyc_in_prod.py -M3``. The timed figure
  (``extra_info["mpyc_in_prod_s"]``, printed) is in_prod + output measured inside party 0; the
  benchmark row itself times the whole subprocess (start-up and input generation included).

The comparison is not like for like: ppbfl runs the parties in one process without networking,
MPyC runs them as processes over localhost TCP. Both compute the same field operation over
GF(2^61 - 1) and the results are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, field_vector, size_id

from ppbfl.field import dot
from ppbfl.mpc import open_scalar
from ppbfl.mpc.testing import TrustedDealer, ZeroSharer, beaver_dot, hm_dot_open
from ppbfl.sharing import share

T, N = 2, 3
D = 10**4 if QUICK else 10**6
MPYC_D = 10**4 if QUICK else 10**6
GROUP = f"secure dot d={size_id(D)} t={T} n={N}"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def operands() -> tuple[np.ndarray, np.ndarray, int]:
    x, y = field_vector("mpc-x", D), field_vector("mpc-y", D)
    return share(x, T, N), share(y, T, N), dot(x, y)


@pytest.mark.benchmark(group=GROUP)
def test_hm_dot(benchmark, operands) -> None:
    xs, ys, expected = operands
    zero = ZeroSharer.setup(T, N)
    opened = benchmark(hm_dot_open, xs, ys, T, zero)
    assert opened.value == expected and opened.wrong_points == ()


def _beaver(robust: bool):
    def run(xs, ys, triple):
        return open_scalar(beaver_dot(xs, ys, triple, T, robust=robust), T - 1)

    return run


@pytest.mark.parametrize("robust", [False, True], ids=["plain", "robust"])
@pytest.mark.benchmark(group=GROUP)
def test_beaver_dot_online(benchmark, operands, robust: bool) -> None:
    xs, ys, expected = operands
    dealer = TrustedDealer(T, N)
    opened = benchmark.pedantic(
        _beaver(robust), setup=lambda: ((xs, ys, dealer.beaver_triple(D)), {}), rounds=5, iterations=1
    )
    assert opened.value == expected


@pytest.mark.benchmark(group=GROUP)
def test_beaver_triple_offline(benchmark) -> None:
    dealer = TrustedDealer(T, N)
    triple = benchmark.pedantic(dealer.beaver_triple, args=(D,), rounds=3, iterations=1)
    assert triple.a.shape == (N, D)


@pytest.mark.benchmark(group=GROUP)
def test_mpyc_in_prod(benchmark) -> None:
    env = dict(os.environ, PPBFL_MPYC_D=str(MPYC_D))

    def run() -> str:
        done = subprocess.run(
            [sys.executable, str(HERE / "mpyc_in_prod.py"), "-M3"],
            env=env, capture_output=True, text=True, timeout=900, cwd=HERE, check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = float(re.search(r"MPYC_IN_PROD_SECONDS (\S+)", out).group(1))
    benchmark.extra_info["mpyc_d"] = MPYC_D
    benchmark.extra_info["mpyc_in_prod_s"] = seconds
    print(f"\nMPyC in_prod d={MPYC_D} (3 parties, localhost): {seconds:.4f} s inside party 0")
    assert re.search(r"MPYC_VALUE \d+", out)
