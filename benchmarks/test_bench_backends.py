"""Kernel backends side by side: ``native`` (C via cffi) vs ``numba`` vs galois, one group per kernel.

Groups ``backend <kernel> n=...`` time the public, validated call (:mod:`ppbfl.field.ops`,
:func:`ppbfl.sharing.share`) with the backend switched by :func:`ppbfl.field.set_backend`, so the
two rows differ only in the kernel. ``galois`` is the same operation on ``galois.GF(2**61 - 1)``
arrays (conversion not timed); ``numpy_add_floor`` is ``numpy.add`` of two uint64 arrays into a
preallocated output (the memory-bound floor of an element-wise kernel).

Issue targets: native mul-add within 1.5x of the floor; numba within 2x of native.
"""

from __future__ import annotations

import numpy as np
import pytest

import ppbfl.field as F
from ppbfl.sharing import reconstruct, share

BACKENDS = ("native", "numba")
N = 10**4 if __import__("os").environ.get("PPBFL_BENCH_QUICK", "") not in ("", "0") else 10**6
P = F.GF61.p

OPS = {
    "add": (lambda a, b, c, w, r: F.add(a, b), lambda A, B, C, W, R: A + B),
    "mul": (lambda a, b, c, w, r: F.mul(a, b), lambda A, B, C, W, R: A * B),
    "muladd": (lambda a, b, c, w, r: F.muladd(a, b, c), lambda A, B, C, W, R: A * B + C),
    "dot": (lambda a, b, c, w, r: F.dot(a, b), lambda A, B, C, W, R: int(np.dot(A, B))),
    "weighted_rowsum k=5": (lambda a, b, c, w, r: F.weighted_rowsum(w, r), lambda A, B, C, W, R: W @ R),
}


@pytest.fixture
def use_backend():
    before = F.backend_name()

    def switch(name: str) -> None:
        F.set_backend(name)  # fails (BackendUnavailableError) if native was not built

    yield switch
    F.set_backend(before)


def _operands(vec):
    return vec("bk-a", N), vec("bk-b", N), vec("bk-c", N), vec("bk-w", 5), vec("bk-rows", (5, N))


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_kernel(benchmark, group, vec, use_backend, op, backend):
    group(f"backend {op}", n=N)
    use_backend(backend)
    args = _operands(vec)
    ours, _ = OPS[op]
    ours(*args)  # untimed warm-up call
    result = benchmark(ours, *args)
    F.set_backend("numba" if backend == "native" else "native")
    reference = ours(*args)  # the other backend on the same data
    assert np.array_equal(np.asarray(result), np.asarray(reference))


@pytest.mark.parametrize("op", sorted(OPS))
def test_backend_kernel_galois(benchmark, group, vec, op, gf_galois, slow):
    group(f"backend {op}", n=N)
    a, b, c, w, r = _operands(vec)
    ours, theirs = OPS[op]
    k = 1000
    full = (gf_galois(a), gf_galois(b), gf_galois(c), gf_galois(w), gf_galois(r))
    part = (full[0][:k], full[1][:k], full[2][:k], full[3], full[4][:, :k])
    result = slow(lambda: theirs(*full), probe=lambda: theirs(*part), scale=N / k)
    assert np.array_equal(np.asarray(result, dtype=np.uint64) if op != "dot" else result, np.asarray(ours(a, b, c, w, r)))


@pytest.mark.parametrize("op", ["add", "muladd"])
def test_backend_kernel_numpy_add_floor(benchmark, group, vec, op):
    group(f"backend {op}", n=N)
    a, b, *_ = _operands(vec)
    out = np.empty(N, dtype=np.uint64)
    np.add(a, b, out=out)  # untimed warm-up call
    benchmark(np.add, a, b, out=out)
    assert out[:10].tolist() == [int(x) + int(y) for x, y in zip(a[:10], b[:10])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_share_and_reconstruct(benchmark, group, vec, use_backend, backend):
    group("backend share+reconstruct t=3 n=5", n=N)
    use_backend(backend)
    secret = vec("secret", N)
    out = np.empty((5, N), dtype=np.uint64)
    rec = np.empty(N, dtype=np.uint64)

    def run():
        share(secret, 3, 5, out=out)
        return reconstruct(out[2:], [3, 4, 5], out=rec)

    run()  # untimed warm-up call
    assert np.array_equal(benchmark(run), secret)
