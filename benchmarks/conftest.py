"""Shared sizes, data and helpers for the ppbfl benchmark suite.

Sizes are chosen here and injected into the benchmark functions by name
(:func:`pytest_generate_tests`): a test that takes ``d`` runs for every vector length in
:data:`SHARE_SIZES`, one that takes ``tn`` for every ``(t, n)`` in :data:`THRESHOLDS`, and
``muladd_n`` is the mul-add length.

``PPBFL_BENCH_QUICK=1`` shrinks every size (d <= 1e4) without skipping anything, so a smoke
run of the whole directory (``pytest benchmarks --benchmark-disable -q``) takes seconds.

All data are uniform field elements from ppbfl's own ChaCha20 :class:`~ppbfl.field.FieldRNG`
with fixed seeds, generated once per session and cached (treat them as read-only).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ppbfl.field import GF61, FieldRNG

P = GF61.p

QUICK = os.environ.get("PPBFL_BENCH_QUICK", "") not in ("", "0")

#: vector lengths for share / reconstruct (quick mode: 100, 1000, 10000)
SHARE_SIZES: tuple[int, ...] = (10**2, 10**3, 10**4) if QUICK else (10**4, 10**5, 10**6)
#: (t, n) threshold / party pairs
THRESHOLDS: tuple[tuple[int, int], ...] = ((3, 5), (6, 10))
#: mul-add length (all implementations, galois included, run at this size)
MULADD_N: int = 10**4 if QUICK else 10**6
#: the (d, t, n) whose peak memory is measured (issue target: d = 1e6 at (6, 10))
MEMORY_CASE: tuple[int, int, int] = (10**4, 6, 10) if QUICK else (10**6, 6, 10)

#: rough seconds of timed work allowed for one slow (pure-Python) baseline; see :func:`run_slow`
SLOW_BUDGET_S = 0.2 if QUICK else 3.0
SLOW_MAX_ROUNDS = 5


def size_id(d: int) -> str:
    """``1000000 -> "1e6"`` (used in test ids and group names)."""
    exponent = len(str(d)) - 1
    return f"1e{exponent}" if d == 10**exponent else str(d)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "d" in metafunc.fixturenames:
        metafunc.parametrize("d", SHARE_SIZES, ids=[f"d{size_id(d)}" for d in SHARE_SIZES])
    if "tn" in metafunc.fixturenames:
        metafunc.parametrize("tn", THRESHOLDS, ids=[f"t{t}n{n}" for t, n in THRESHOLDS])


def pytest_report_header(config: pytest.Config) -> str:
    from ppbfl.field.backend import backend_name
    from ppbfl.field.threads import worker_count

    mode = "QUICK (PPBFL_BENCH_QUICK=1)" if QUICK else "full"
    return (
        f"ppbfl benchmarks: {mode} mode; share/reconstruct d in {SHARE_SIZES}, (t, n) in {THRESHOLDS}, "
        f"mul-add n = {MULADD_N}; ppbfl backend = {backend_name()}, {worker_count()} kernel threads"
    )


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@functools.cache
def field_vector(tag: str, size: int | tuple[int, ...]) -> np.ndarray:
    """Uniform uint64 field elements, deterministic per ``(tag, size)``; read-only, cached."""
    seed = tag.encode().ljust(32, b"\0")[:32]
    arr = FieldRNG(seed).random(size)
    arr.setflags(write=False)
    return arr


@functools.cache
def shares_of(d: int, t: int, n: int) -> np.ndarray:
    """A (n, d) ppbfl sharing of ``field_vector("secret", d)`` (read-only, cached)."""
    from ppbfl.sharing import share

    out = share(field_vector("secret", d), t, n, rng=FieldRNG(b"bench-shares".ljust(32, b"\0")))
    out.setflags(write=False)
    return out


@pytest.fixture(scope="session")
def muladd_n() -> int:
    return MULADD_N


@pytest.fixture(scope="session")
def gf_galois():
    """``galois.GF(2**61 - 1)``: Python-int (object dtype) arithmetic for this prime."""
    import galois  # a baseline must be present: a missing one fails rather than skips

    return galois.GF(P)


@pytest.fixture(scope="session")
def gf_mpyc():
    """MPyC's prime field ``GF(2**61 - 1)`` (``mpyc.finfields.GF``)."""
    from mpyc import finfields

    return finfields.GF(P)


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------


def run_slow(
    benchmark: Any,
    fn: Callable[..., Any],
    args: tuple = (),
    *,
    probe: Callable[[], Any] | None = None,
    scale: float = 1.0,
) -> Any:
    """Time a slow (pure-Python) baseline with ``benchmark.pedantic`` and a few rounds.

    The number of rounds is chosen so the timed work takes about :data:`SLOW_BUDGET_S`:
    ``probe`` (the same work on a small slice, ``scale`` times cheaper) is timed once first.
    Returns ``fn``'s result from the last round, for correctness checks.
    """
    rounds = 1
    if probe is not None:
        start = time.perf_counter()
        probe()
        estimate = (time.perf_counter() - start) * scale
        rounds = max(1, min(SLOW_MAX_ROUNDS, int(SLOW_BUDGET_S / max(estimate, 1e-9))))
    benchmark.extra_info["rounds_policy"] = f"pedantic, {rounds} round(s) of 1 iteration"
    return benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1, warmup_rounds=0)


@pytest.fixture(scope="session")
def vec() -> Callable[..., np.ndarray]:
    """``vec(tag, size)``: cached read-only uniform field elements (see :func:`field_vector`)."""
    return field_vector


@pytest.fixture(scope="session")
def sharing_of() -> Callable[[int, int, int], np.ndarray]:
    """``sharing_of(d, t, n)``: cached read-only (n, d) ppbfl shares of ``vec("secret", d)``."""
    return shares_of


@pytest.fixture
def slow(benchmark: Any) -> Callable[..., Any]:
    """``slow(fn, args, probe=..., scale=...)``: :func:`run_slow` bound to this test's benchmark."""
    return functools.partial(run_slow, benchmark)


@pytest.fixture
def group(benchmark: Any) -> Callable[..., None]:
    """``group("share", d=10**6, t=3, n=5)`` sets ``benchmark.group`` to ``"share d=1e6 t=3 n=5"``.

    One group is one comparison (same operation, same sizes); the parameters also go to
    ``benchmark.extra_info``. Exact powers of ten >= 100 are written ``1eK``.
    """

    def set_group(operation: str, **params: int) -> None:
        def fmt(v: int) -> str:
            return size_id(v) if v >= 100 else str(v)

        benchmark.group = " ".join([operation] + [f"{k}={fmt(v)}" for k, v in params.items()])
        benchmark.extra_info.update(params)

    return set_group


@pytest.fixture(scope="session")
def memory_case() -> tuple[int, int, int]:
    """``(d, t, n)`` for the peak-memory measurement (:data:`MEMORY_CASE`)."""
    return MEMORY_CASE


@pytest.fixture(scope="session")
def quick() -> bool:
    """True under ``PPBFL_BENCH_QUICK=1`` (sizes shrunk; size-dependent targets not asserted)."""
    return QUICK


@pytest.fixture(scope="session", autouse=True)
def _warm_ppbfl() -> None:
    """Load every ppbfl kernel (Numba cache) and start its thread pool before any timing.

    Without this the first timed call pays for loading compiled kernels, and pytest-benchmark's
    calibration then settles on a handful of rounds for that benchmark.
    """
    from ppbfl.field import muladd, weighted_rowsum
    from ppbfl.sharing import lagrange_coefficients, reconstruct, share

    d = 1 << 18  # large enough to be split over the worker threads
    x = field_vector("warm-up", d)
    muladd(x, x, x)
    for t, n in THRESHOLDS:
        shares = share(x, t, n)
        reconstruct(shares[:t], range(1, t + 1))
        reconstruct(shares, range(1, n + 1), t=t)
        weighted_rowsum(lagrange_coefficients(range(1, t + 1)), shares[:t])


class UploadedRound:
    """The setup of an edge-tier timing (``benchmark.pedantic(..., setup=uploaded)``): each call
    opens the next round of ``rounds`` on ``federation``'s coordinator, lets every device submit
    its ``updates[i]`` and prove it, and leaves that round in :attr:`round`, ready for
    ``coordinator.finish_round`` (the part timed)."""

    def __init__(self, federation: Any, updates: dict[int, np.ndarray], rounds: Any) -> None:
        self.federation, self.updates, self.rounds = federation, updates, rounds
        self.round = 0

    def __call__(self) -> None:
        coordinator = self.federation.coordinator
        rnd = next(self.rounds)
        announcement = coordinator.open_round(rnd)
        for i, device in self.federation.devices.items():
            device.submit(announcement, self.updates[i])
        challenge = coordinator.challenge(rnd)
        for device in self.federation.devices.values():
            device.prove(challenge)
        self.round = rnd
