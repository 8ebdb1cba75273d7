"""Element-wise mul-add ``a * b + c mod p`` over GF(2^61 - 1): ppbfl vs galois vs NumPy objects.

One benchmark group, ``muladd n=...``:

* ``ppbfl``: :func:`ppbfl.field.muladd` (validated; Numba kernel split over the thread pool),
  allocating its output, and with a preallocated ``out=``;
* ``galois``: ``A * B + C`` on ``galois.GF(2**61 - 1)`` arrays (object dtype, Python ints;
  conversion to field arrays is setup, not timed);
* ``numpy_object``: ``(a.astype(object) * b + c) % p`` (conversion timed, as written);
* ``numpy_add_floor``: ``numpy.add(a, b, out=...)`` on uint64: a memory-bound floor
  (reads two arrays, writes one; mul-add reads three).

Every benchmark checks what it timed: ppbfl against Python-int arithmetic on a prefix, and the
baselines against ppbfl on the whole vector.
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import GF61, muladd

P = GF61.p
CHECK = 1000  # prefix checked with exact Python-int arithmetic


def _operands(vec, n):
    return vec("muladd-a", n), vec("muladd-b", n), vec("muladd-c", n)


def _check_prefix(a, b, c, result):
    k = min(CHECK, a.shape[0])
    expected = [(int(x) * int(y) + int(z)) % P for x, y, z in zip(a[:k], b[:k], c[:k])]
    assert result.dtype == np.uint64 and result.shape == a.shape
    assert result[:k].tolist() == expected


def test_muladd_ppbfl(benchmark, group, vec, muladd_n):
    group("muladd", n=muladd_n)
    a, b, c = _operands(vec, muladd_n)
    muladd(a, b, c)  # untimed warm-up call
    result = benchmark(muladd, a, b, c)
    _check_prefix(a, b, c, result)


def test_muladd_ppbfl_out(benchmark, group, vec, muladd_n):
    group("muladd", n=muladd_n)
    a, b, c = _operands(vec, muladd_n)
    out = np.empty(muladd_n, dtype=np.uint64)
    muladd(a, b, c, out=out)  # untimed warm-up call (also faults in out's pages)
    result = benchmark(muladd, a, b, c, out=out)
    assert result is out
    _check_prefix(a, b, c, result)


def test_muladd_galois(benchmark, group, vec, muladd_n, gf_galois, slow):
    group("muladd", n=muladd_n)
    a, b, c = _operands(vec, muladd_n)
    A, B, C = gf_galois(a), gf_galois(b), gf_galois(c)
    k = min(CHECK, muladd_n)
    A_, B_, C_ = A[:k], B[:k], C[:k]
    result = slow(lambda: A * B + C, probe=lambda: A_ * B_ + C_, scale=muladd_n / k)
    assert np.array_equal(np.asarray(result.view(np.ndarray), dtype=np.uint64), muladd(a, b, c))


def test_muladd_numpy_object(benchmark, group, vec, muladd_n, slow):
    group("muladd", n=muladd_n)
    a, b, c = _operands(vec, muladd_n)
    k = min(CHECK, muladd_n)

    def run(a, b, c):
        return (a.astype(object) * b + c) % P

    result = slow(run, (a, b, c), probe=lambda: run(a[:k], b[:k], c[:k]), scale=muladd_n / k)
    assert result.dtype == object
    assert np.array_equal(result.astype(np.uint64), muladd(a, b, c))


def test_muladd_numpy_add_floor(benchmark, group, vec, muladd_n):
    group("muladd", n=muladd_n)
    a, b, _ = _operands(vec, muladd_n)
    out = np.empty(muladd_n, dtype=np.uint64)
    np.add(a, b, out=out)  # untimed warm-up call
    benchmark(np.add, a, b, out=out)
    assert out[:10].tolist() == [int(x) + int(y) for x, y in zip(a[:10], b[:10])]
