"""Shamir ``share`` and ``reconstruct`` over GF(2^61 - 1): ppbfl vs MPyC vs galois vs memcpy.

For every vector length ``d`` and threshold ``(t, n)`` (see ``conftest.py``) there is one group
``share d=... t=... n=...`` and one group ``reconstruct d=... t=... n=...``.

share (secret of ``d`` elements -> ``(n, d)`` shares, points ``1..n``):

* ``ppbfl_alloc`` / ``ppbfl_out``: :func:`ppbfl.sharing.share` allocating its output / into a
  preallocated ``out=`` (fresh ChaCha20 key per call, as with the default ``rng=None``);
* ``mpyc``: ``mpyc.thresha.random_split(GF(p), secret, t - 1, n)`` (MPyC's degree argument is
  ``t - 1``), secret given as a list of MPyC field elements (conversion not timed);
  coefficients from ``secrets.randbelow``;
* ``galois``: ``V @ C`` with the ``(n, t)`` Vandermonde matrix over ``galois.GF(p)`` and the
  ``(t, d)`` coefficient matrix ``[secret; GF.Random((t - 1, d))]`` (building ``V``, drawing the
  coefficients and stacking are timed; converting the secret to a field array is not);
* ``memcpy_floor``: ``numpy.copyto`` of ``n * d`` uint64 into a preallocated array (the
  output bytes, written once: the memory-bound floor);
* ``part_chacha20_coeffs``: for reference, one-thread ChaCha20 generation of the
  ``(t - 1) * d`` random coefficients with :class:`ppbfl.field.FieldRNG` (a component of
  ppbfl's ``share``, not a competitor).

reconstruct (the first ``t`` shares -> the ``d``-vector secret):

* ``ppbfl``: :func:`ppbfl.sharing.reconstruct` of the ``(t, d)`` shares at points ``1..t``;
* ``ppbfl_all_n``: ``reconstruct`` given all ``n`` shares and ``t=t`` (reads only the first ``t``);
* ``ppbfl_out``: ``reconstruct(shares, points, out=...)`` into a preallocated output;
* ``mpyc``: ``mpyc.thresha.recombine(GF(p), [(x, shares_x), ...])`` with lists of MPyC field
  elements (conversion not timed);
* ``galois``: Lagrange vector computed in ``galois.GF(p)`` ``@`` the ``(t, d)`` share matrix
  (conversion of the shares to a field array not timed);
* ``memcpy_floor``: ``numpy.copyto`` of the ``d`` output uint64 (as the issue asks);
* ``read_floor``: ``numpy.bitwise_xor.reduce`` over the ``(t, d)`` shares into a preallocated
  ``(d,)`` array: reads every input byte once, the tighter memory floor for reconstruct.

Every benchmark checks the result it timed (cheaply: whole vectors for ppbfl and galois, a
prefix of the pure-Python baselines' output via ppbfl, or vice versa).
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import GF61, FieldRNG
from ppbfl.sharing import reconstruct, robust_reconstruct, share

P = GF61.p
PROBE = 2000  # columns used to estimate the run time of the slow baselines
CHECK = 500  # columns of the slow baselines' output checked through ppbfl


def _check_sharing(shares: np.ndarray, secret: np.ndarray, t: int, n: int) -> None:
    """``shares`` is a (t, n) sharing of ``secret``: two different t-subsets give the secret."""
    assert shares.dtype == np.uint64 and shares.shape == (n, secret.shape[0])
    assert reconstruct(shares[:t], range(1, t + 1)).tolist() == secret.tolist()
    assert reconstruct(shares[n - t :], range(n - t + 1, n + 1)).tolist() == secret.tolist()


# ---------------------------------------------------------------------------------------------
# share
# ---------------------------------------------------------------------------------------------


def test_share_ppbfl_alloc(benchmark, group, vec, d, tn):
    t, n = tn
    group("share", d=d, t=t, n=n)
    secret = vec("secret", d)
    share(secret, t, n)  # untimed warm-up call
    result = benchmark(share, secret, t, n)
    _check_sharing(result, secret, t, n)


def test_share_ppbfl_out(benchmark, group, vec, d, tn):
    t, n = tn
    group("share", d=d, t=t, n=n)
    secret = vec("secret", d)
    out = np.empty((n, d), dtype=np.uint64)
    share(secret, t, n, out=out)  # untimed warm-up call (also faults in out's pages)
    result = benchmark(share, secret, t, n, out=out)
    assert result is out
    _check_sharing(out, secret, t, n)


def test_share_mpyc(benchmark, group, vec, d, tn, gf_mpyc, slow):
    from mpyc.thresha import random_split

    t, n = tn
    group("share", d=d, t=t, n=n)
    secret = vec("secret", d)
    s = [gf_mpyc(v) for v in secret.tolist()]
    k = min(PROBE, d)
    result = slow(random_split, (gf_mpyc, s, t - 1, n),
                  probe=lambda: random_split(gf_mpyc, s[:k], t - 1, n), scale=d / k)
    assert len(result) == n and all(len(row) == d for row in result)
    c = min(CHECK, d)
    prefix = np.array([row[:c] for row in result], dtype=np.uint64)
    _check_sharing(prefix, secret[:c], t, n)


def test_share_galois(benchmark, group, vec, d, tn, gf_galois, slow):
    t, n = tn
    group("share", d=d, t=t, n=n)
    GF = gf_galois
    secret = vec("secret", d)
    S = GF(secret).reshape(1, d)

    def galois_share(S):
        V = GF(np.vander(np.arange(1, n + 1, dtype=np.int64), t, increasing=True))  # (n, t)
        C = np.concatenate((S, GF.Random((t - 1, S.shape[1]))), axis=0)  # (t, d)
        return V @ C

    k = min(PROBE, d)
    S_probe = S[:, :k]
    result = slow(galois_share, (S,), probe=lambda: galois_share(S_probe), scale=d / k)
    assert isinstance(result, GF) and result.shape == (n, d)
    c = min(CHECK, d)
    _check_sharing(np.asarray(result[:, :c].view(np.ndarray), dtype=np.uint64), secret[:c], t, n)


def test_share_memcpy_floor(benchmark, group, vec, d, tn):
    t, n = tn
    group("share", d=d, t=t, n=n)
    src = np.array(vec("memcpy-src", (n, d)))
    dst = np.empty((n, d), dtype=np.uint64)
    np.copyto(dst, src)  # untimed warm-up call
    benchmark(np.copyto, dst, src)
    assert np.array_equal(dst[:, :100], src[:, :100])


def test_share_part_chacha20_coeffs(benchmark, group, d, tn):
    t, n = tn
    group("share", d=d, t=t, n=n)
    rng = FieldRNG(b"chacha-part".ljust(32, b"\0"))
    out = np.empty((t - 1) * d, dtype=np.uint64)
    rng.fill(out)  # untimed warm-up call
    benchmark(rng.fill, out)
    assert int(out.max()) < P


# ---------------------------------------------------------------------------------------------
# reconstruct
# ---------------------------------------------------------------------------------------------


def test_reconstruct_ppbfl(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    shares = sharing_of(d, t, n)[:t]
    points = list(range(1, t + 1))
    reconstruct(shares, points)  # untimed warm-up call
    result = benchmark(reconstruct, shares, points)
    assert np.array_equal(result, vec("secret", d))


def test_reconstruct_ppbfl_all_n(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    shares = sharing_of(d, t, n)
    points = list(range(1, n + 1))
    reconstruct(shares, points, t=t)  # untimed warm-up call
    result = benchmark(reconstruct, shares, points, t=t)
    assert np.array_equal(result, vec("secret", d))


def test_reconstruct_ppbfl_out(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    shares = sharing_of(d, t, n)[:t]
    points = list(range(1, t + 1))
    out = np.empty(d, dtype=np.uint64)

    def run():
        return reconstruct(shares, points, out=out)

    run()  # untimed warm-up call
    assert benchmark(run) is out
    assert np.array_equal(out, vec("secret", d))


def test_reconstruct_mpyc(benchmark, group, vec, sharing_of, d, tn, gf_mpyc, slow):
    from mpyc.thresha import recombine

    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    F = gf_mpyc
    shares = sharing_of(d, t, n)[:t]
    points = [(x, [F(v) for v in row]) for x, row in zip(range(1, t + 1), shares.tolist())]
    k = min(PROBE, d)
    probe_points = [(x, row[:k]) for x, row in points]
    result = slow(recombine, (F, points), probe=lambda: recombine(F, probe_points), scale=d / k)
    assert len(result) == d
    c = min(CHECK, d)
    assert [v.value for v in result[:c]] == vec("secret", d)[:c].tolist()


def test_reconstruct_galois(benchmark, group, vec, sharing_of, d, tn, gf_galois, slow):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    GF = gf_galois
    S = GF(np.array(sharing_of(d, t, n)[:t]))  # (t, d)
    xs = GF(np.arange(1, t + 1))

    def galois_reconstruct(S):
        lam = []  # Lagrange basis at 0 for points xs, in galois arithmetic
        for i in range(t):
            num, den = GF(1), GF(1)
            for j in range(t):
                if j != i:
                    num = num * -xs[j]
                    den = den * (xs[i] - xs[j])
            lam.append(num / den)
        return GF(np.array([int(v) for v in lam], dtype=object)) @ S

    k = min(PROBE, d)
    S_probe = S[:, :k]
    result = slow(galois_reconstruct, (S,), probe=lambda: galois_reconstruct(S_probe), scale=d / k)
    assert np.array_equal(np.asarray(result.view(np.ndarray), dtype=np.uint64), vec("secret", d))


def test_reconstruct_memcpy_floor(benchmark, group, vec, d, tn):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    src = np.array(vec("memcpy-src", d))
    dst = np.empty(d, dtype=np.uint64)
    np.copyto(dst, src)  # untimed warm-up call
    benchmark(np.copyto, dst, src)
    assert np.array_equal(dst[:100], src[:100])


def test_reconstruct_read_floor(benchmark, group, sharing_of, d, tn):
    t, n = tn
    group("reconstruct", d=d, t=t, n=n)
    shares = sharing_of(d, t, n)[:t]
    out = np.empty(d, dtype=np.uint64)
    np.bitwise_xor.reduce(shares, axis=0, out=out)  # untimed warm-up call
    benchmark(np.bitwise_xor.reduce, shares, axis=0, out=out)
    expected = shares[0, :100].copy()
    for row in shares[1:]:
        expected ^= row[:100]
    assert np.array_equal(out[:100], expected)


# ---------------------------------------------------------------------------------------------
# robust reconstruction (all n shares): no liar, and one edge node wrong in every coordinate;
# baseline: plain Lagrange reconstruction of the same n shares (no error handling)
# ---------------------------------------------------------------------------------------------


def _tampered(shares: np.ndarray) -> np.ndarray:
    bad = shares.copy()
    bad[1] = (bad[1] + np.uint64(5)) % np.uint64(P)
    return bad


def test_robust_ppbfl_consistent(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("robust", d=d, t=t, n=n)
    shares, points = sharing_of(d, t, n), list(range(1, n + 1))
    robust_reconstruct(shares, points, t)  # untimed warm-up call
    result = benchmark(robust_reconstruct, shares, points, t)
    assert np.array_equal(result.secret, vec("secret", d)) and result.wrong_points == ()


def test_robust_ppbfl_liar_everywhere(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("robust", d=d, t=t, n=n)
    shares, points = _tampered(sharing_of(d, t, n)), list(range(1, n + 1))
    robust_reconstruct(shares, points, t)  # untimed warm-up call
    result = benchmark(robust_reconstruct, shares, points, t)
    assert np.array_equal(result.secret, vec("secret", d)) and result.wrong_points == (2,)


def test_robust_plain_reconstruct_baseline(benchmark, group, vec, sharing_of, d, tn):
    t, n = tn
    group("robust", d=d, t=t, n=n)
    shares, points = sharing_of(d, t, n), list(range(1, n + 1))
    reconstruct(shares, points)  # untimed warm-up call
    assert np.array_equal(benchmark(reconstruct, shares, points), vec("secret", d))
