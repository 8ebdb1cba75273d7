#!/usr/bin/env python3
"""Write known-answer vectors (KAT) for the native field kernels in ``ppbfl_field.c``.

Usage: ``python make_kat.py OUT.txt [--seed N]``

Expected outputs come from the Numba reference kernels (``ppbfl.field.numba_kernels``) and
every one is asserted equal to an independent oracle (``galois.GF(p)``, plus plain Python
integers) before anything is written. The file is deterministic for a given seed.

Primes: ``2^61 - 1`` (the 128-bit / 32-bit-split product path), ``2^31 - 1`` and
``2^32 - 5`` (the small-prime path; ``(p - 1)^2`` is just below ``2^64`` for the latter).

File format (parsed by ``test_kat.c``): whitespace-separated unsigned decimal tokens, one
record per line, ``#`` starts a comment line. First record ``ppbfl-kat 1 NCASES``, last
record ``end NCASES``. Output arrays are pre-filled with ``p`` (a value no correct kernel
writes) before a kernel call, so the expected arrays also pin down that cells outside
``[lo, hi)`` are left untouched.
Records (``[x]`` = that many numbers):

    add|sub|mul      p n lo hi  a[n] b[n]            top out[n]
    neg              p n lo hi  a[n]                 top out[n]
    muladd           p n lo hi  a[n] b[n] c[n]       top out[n]
    scalar_mul       p n lo hi  s a[n]               top out[n]
    dot              p n lo hi  a[n] b[n]            value top
    weighted_rowsum  p k d lo hi  weights[k] rows[k*d]      top out[d]
    row_dots         p k d lo hi squares  rows[k*d] a[d] b[d]  top sums[3*k]
    row_dots4        p k d lo hi squares  rows[k*d] a[d] b[d] c[d]  top sums[4*k]
    ternary          p k d row_bytes  stream[(k+1)*row_bytes] g[d] sigma[k]  small y[k] v[d]
                     (g and y: int64 as two's complement; expected values from Python ints alone,
                     decoding R from the documented layout: see ppbfl/defense/validity.py)
    matmul           p m k d lo hi  matrix[m*k] rows[k*d]   out[m*d]
    horner_share     p degree width n d col0 lo hi  secret[d] coeffs[degree*width] points[n] out[n*d]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

# The reference module is loaded under a private name (below); give it a private Numba cache, or
# Numba would reuse the cache entries of the installed ppbfl.field.numba_kernels (same source
# file) and import the whole ppbfl package to rebuild their environment. Set before numba loads.
os.environ["NUMBA_CACHE_DIR"] = os.path.join(
    os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir(),
    f"ppbfl-make-kat-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}",
)

import numpy as np


def _load_reference():
    """``ppbfl/field/numba_kernels.py`` of this checkout, loaded by path.

    It imports only numpy and numba, so the KAT can be generated without installing ppbfl and
    its other dependencies (on a Raspberry Pi: ``pip install numpy numba galois``), and always
    from the same source tree as the C kernels under test.
    """
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ppbfl", "field",
                        "numba_kernels.py")
    spec = importlib.util.spec_from_file_location("ppbfl_kat_numba_kernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


nk = _load_reference()

M61 = (1 << 61) - 1
PRIMES = (M61, (1 << 31) - 1, (1 << 32) - 5)
U64 = np.uint64


def pair_edges(p: int) -> list[int]:
    """The edge values whose every ordered pair goes through each binary kernel."""
    cands = [0, 1, 2, p - 1, p - 2, p >> 1, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, 1 << 31,
             0x1FFFFFFF00000000, 0x1FFFFFFEFFFFFFFF, 0xFFFFFFFE]
    out: list[int] = []
    for v in cands:
        if 0 <= v < p and v not in out:
            out.append(v)
    return out


def edge_values(p: int) -> list[int]:
    """Edge values below ``p``: 0, 1, p-1, p-2, the 2^32 boundary and all-ones 32-bit halves."""
    cands = [
        0, 1, 2, 3, p - 1, p - 2, p - 3, p >> 1, (p >> 1) + 1,
        (1 << 32) - 1, 1 << 32, (1 << 32) + 1,  # 2^32 boundary
        (1 << 31) - 1, 1 << 31, (1 << 29) - 1, 1 << 29,
        0x1FFFFFFF00000000,  # high half all ones (29 bits), low half zero
        0x00000000FFFFFFFF,  # low half all ones
        0x1FFFFFFEFFFFFFFF,  # both halves all ones as far as < p allows
        0x1FFFFFFFFFFFFFFD,
        0x0FFFFFFFFFFFFFFF, 1 << 60, (1 << 60) + (1 << 32) - 1,
        0xFFFF, 0x10000, 0xFFFFFFFE,
    ]
    out: list[int] = []
    for v in cands:
        if 0 <= v < p and v not in out:
            out.append(v)
    return out


def ensure(condition: bool, message: str) -> None:
    """A check that also runs under ``python -O`` (which strips ``assert``)."""
    if not condition:
        raise SystemExit(f"make_kat.py: check failed, nothing written: {message}")


def flat(values) -> list[int]:
    """Flatten nested lists / arrays into Python ints (no float round trip for values >= 2^63)."""
    if isinstance(values, np.ndarray) and values.dtype == np.uint64:
        return [int(x) for x in values.ravel()]
    if isinstance(values, (list, tuple, np.ndarray)):
        out: list[int] = []
        for v in values:
            out.extend(flat(v))
        return out
    return [int(values)]


class Oracle:
    """Independent arithmetic: galois.GF(p) when available, always plain Python ints."""

    def __init__(self, use_galois: bool) -> None:
        self.use_galois = use_galois
        self._fields: dict[int, object] = {}

    def gf(self, p: int):
        if p not in self._fields:
            import galois

            self._fields[p] = galois.GF(p, verify=False)
        return self._fields[p]

    def check(self, label: str, got, want_ints, want_galois=None) -> None:
        got_list = flat(got)
        want_list = flat(want_ints)
        ensure(got_list == want_list, f"{label}: numba {got_list} != python-int {want_list}")
        if self.use_galois and want_galois is not None:
            g_list = flat(want_galois)
            ensure(got_list == g_list, f"{label}: numba {got_list} != galois {g_list}")


def u64(values) -> np.ndarray:
    return np.ascontiguousarray(np.array([int(v) for v in values], dtype=np.uint64))


class Writer:
    def __init__(self, oracle: Oracle) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.o = oracle

    def emit(self, *fields) -> None:
        parts: list[str] = []
        for f in fields:
            if isinstance(f, (list, tuple, np.ndarray)):
                parts.extend(str(int(x)) for x in np.asarray(f).ravel())
            else:
                parts.append(str(int(f)) if not isinstance(f, str) else f)
        self.lines.append(" ".join(parts))
        self.count += 1

    # ---- element-wise -------------------------------------------------------------------------

    def elementwise(self, name: str, p: int, arrays: list[np.ndarray], lo: int, hi: int, s: int | None = None):
        n = arrays[0].shape[0]
        out = np.full(n, p, dtype=np.uint64)
        kern = getattr(nk, f"{name}_range")
        if name == "scalar_mul":
            top = kern(arrays[0], U64(s), out, U64(p), U64(lo), U64(hi))
        else:
            top = kern(*arrays, out, U64(p), U64(lo), U64(hi))
        ints = [[int(x) for x in a] for a in arrays]
        want = [p] * n
        for i in range(lo, hi):
            v = [col[i] for col in ints]
            if name == "add":
                want[i] = (v[0] + v[1]) % p
            elif name == "sub":
                want[i] = (v[0] - v[1]) % p
            elif name == "neg":
                want[i] = (-v[0]) % p
            elif name == "mul":
                want[i] = (v[0] * v[1]) % p
            elif name == "muladd":
                want[i] = (v[0] * v[1] + v[2]) % p
            elif name == "scalar_mul":
                want[i] = (v[0] * s) % p
        want_top = max((max(col[i] for col in ints) for i in range(lo, hi)), default=0)
        g_want = None
        if self.o.use_galois:
            GF = self.o.gf(p)
            ga = [GF(a[lo:hi]) for a in arrays]
            if name == "add":
                r = ga[0] + ga[1]
            elif name == "sub":
                r = ga[0] - ga[1]
            elif name == "neg":
                r = -ga[0]
            elif name == "mul":
                r = ga[0] * ga[1]
            elif name == "muladd":
                r = ga[0] * ga[1] + ga[2]
            else:
                r = ga[0] * GF(s)
            g_want = [p] * lo + [int(x) for x in r] + [p] * (n - hi)
        label = f"{name} p={p} n={n} lo={lo} hi={hi}"
        self.o.check(label, out, want, g_want)
        ensure(int(top) == want_top, f"{label}: top {int(top)} != {want_top}")
        if name == "scalar_mul":
            self.emit(name, p, n, lo, hi, s, arrays[0], int(top), out)
        else:
            self.emit(name, p, n, lo, hi, *arrays, int(top), out)

    def dot(self, p: int, a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> None:
        value, top = nk.dot_range(a, b, U64(p), U64(lo), U64(hi))
        ia, ib = [int(x) for x in a], [int(x) for x in b]
        want = sum(ia[i] * ib[i] for i in range(lo, hi)) % p
        want_top = max((max(ia[i], ib[i]) for i in range(lo, hi)), default=0)
        g_want = None
        if self.o.use_galois:
            GF = self.o.gf(p)
            g_want = [int(np.sum(GF(a[lo:hi]) * GF(b[lo:hi]))) if hi > lo else 0]
        label = f"dot p={p} n={a.shape[0]} lo={lo} hi={hi}"
        self.o.check(label, [value], [want], g_want)
        ensure(int(top) == want_top, f"{label}: top {int(top)} != {want_top}")
        self.emit("dot", p, a.shape[0], lo, hi, a, b, int(value), int(top))

    def weighted_rowsum(self, p: int, w: np.ndarray, rows: np.ndarray, lo: int, hi: int) -> None:
        k, d = rows.shape
        out = np.full(d, p, dtype=np.uint64)
        top = nk.weighted_rowsum_range(w, rows, out, U64(p), U64(lo), U64(hi))
        iw, ir = [int(x) for x in w], [[int(x) for x in row] for row in rows]
        want = [p] * d
        for j in range(lo, hi):
            want[j] = sum(iw[i] * ir[i][j] for i in range(k)) % p
        want_top = max((ir[i][j] for i in range(k) for j in range(lo, hi)), default=0)
        g_want = None
        if self.o.use_galois:
            GF = self.o.gf(p)
            r = GF(w) @ GF(rows[:, lo:hi])
            g_want = [p] * lo + [int(x) for x in r] + [p] * (d - hi)
        label = f"weighted_rowsum p={p} k={k} d={d} lo={lo} hi={hi}"
        self.o.check(label, out, want, g_want)
        ensure(int(top) == want_top, f"{label}: top {int(top)} != {want_top}")
        self.emit("weighted_rowsum", p, k, d, lo, hi, w, rows, int(top), out)

    def row_dots(self, p: int, rows: np.ndarray, a: np.ndarray, b: np.ndarray, squares: bool, lo: int, hi: int) -> None:
        k, d = rows.shape
        sums, top = nk.row_dots_range(rows, a, b, squares, U64(p), U64(lo), U64(hi))
        ir, ia, ib = [[int(x) for x in row] for row in rows], [int(x) for x in a], [int(x) for x in b]
        want = [[sum(row[j] * vec[j] for j in range(lo, hi)) % p for row in ir] for vec in (ia, ib)]
        want.append([sum(row[j] * row[j] for j in range(lo, hi)) % p if squares else 0 for row in ir])
        want_top = max((max(ir[i][j], ia[j], ib[j]) for i in range(k) for j in range(lo, hi)), default=0)
        g_want = None
        if self.o.use_galois and k:
            GF = self.o.gf(p)
            g = GF(rows[:, lo:hi])
            squares_g = (g * g).sum(axis=1) if squares else [0] * k
            g_want = [[int(x) for x in g @ GF(a[lo:hi])], [int(x) for x in g @ GF(b[lo:hi])], [int(x) for x in squares_g]]
        label = f"row_dots p={p} k={k} d={d} lo={lo} hi={hi} squares={squares}"
        self.o.check(label, sums, want, g_want)
        ensure(int(top) == want_top, f"{label}: top {int(top)} != {want_top}")
        self.emit("row_dots", p, k, d, lo, hi, int(squares), rows, a, b, int(top), sums)

    def row_dots4(self, p: int, rows: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, squares: bool, lo: int, hi: int) -> None:
        k, d = rows.shape
        sums, top = nk.row_dots4_range(rows, a, b, c, squares, U64(p), U64(lo), U64(hi))
        ir = [[int(x) for x in row] for row in rows]
        ia, ib, ic = ([int(x) for x in v] for v in (a, b, c))
        want = [[sum(row[j] * vec[j] for j in range(lo, hi)) % p for row in ir] for vec in (ia, ib)]
        want.append([sum(row[j] * row[j] for j in range(lo, hi)) % p if squares else 0 for row in ir])
        want.append([sum(row[j] * ic[j] for j in range(lo, hi)) % p for row in ir])
        want_top = max((max(ir[i][j], ia[j], ib[j], ic[j]) for i in range(k) for j in range(lo, hi)), default=0)
        g_want = None
        if self.o.use_galois and k:
            GF = self.o.gf(p)
            g = GF(rows[:, lo:hi])
            squares_g = (g * g).sum(axis=1) if squares else [0] * k
            g_want = [[int(x) for x in g @ GF(v[lo:hi])] for v in (a, b)] + [[int(x) for x in squares_g], [int(x) for x in g @ GF(c[lo:hi])]]
        label = f"row_dots4 p={p} k={k} d={d} lo={lo} hi={hi} squares={squares}"
        self.o.check(label, sums, want, g_want)
        ensure(int(top) == want_top, f"{label}: top {int(top)} != {want_top}")
        self.emit("row_dots4", p, k, d, lo, hi, int(squares), rows, a, b, c, int(top), sums)

    def ternary(self, p: int, k: int, d: int, stream: bytes, g: list[int], sigma: list[int]) -> None:
        width = 8 * ((d + 63) // 64)
        ensure(len(stream) == (k + 1) * width, "ternary: stream length")

        def bit(string: int, i: int) -> int:
            return (stream[string * width + i // 8] >> (i % 8)) & 1

        matrix = [[bit(j + 1, i) * (-1 if bit(0, i) else 1) for i in range(d)] for j in range(k)]
        y = [sum(r * x for r, x in zip(row, g)) for row in matrix]
        ensure(all(abs(v) < 1 << 63 for v in y), "ternary: projections must fit int64")
        v = [sum(sigma[j] * matrix[j][i] for j in range(k)) % p for i in range(d)]
        small = int(sum(min(abs(x), (1 << 32) - 1) for x in g) < 1 << 31)
        mask = (1 << 64) - 1
        self.emit("ternary", p, k, d, width, u64(stream), u64([x & mask for x in g]), u64(sigma), small, u64([x & mask for x in y]), u64(v))

    def matmul(self, p: int, matrix: np.ndarray, rows: np.ndarray, lo: int, hi: int) -> None:
        m, k = matrix.shape
        d = rows.shape[1]
        out = np.full((m, d), p, dtype=np.uint64)
        nk.matmul_range(matrix, rows, out, U64(p), U64(lo), U64(hi))
        im, ir = [[int(x) for x in r] for r in matrix], [[int(x) for x in r] for r in rows]
        want = [[p] * d for _ in range(m)]
        for r in range(m):
            for j in range(lo, hi):
                want[r][j] = sum(im[r][i] * ir[i][j] for i in range(k)) % p
        g_want = None
        if self.o.use_galois:
            GF = self.o.gf(p)
            prod = GF(matrix) @ GF(rows[:, lo:hi])
            g_want = [[p] * lo + [int(x) for x in prod[r]] + [p] * (d - hi) for r in range(m)]
        self.o.check(f"matmul p={p} m={m} k={k} d={d} lo={lo} hi={hi}", out, want, g_want)
        self.emit("matmul", p, m, k, d, lo, hi, matrix, rows, out)

    def horner(self, p: int, secret: np.ndarray, coeffs: np.ndarray, points: np.ndarray, col0: int, lo: int,
               hi: int) -> None:
        d = secret.shape[0]
        degree, width = coeffs.shape
        n = points.shape[0]
        ensure(col0 + width <= d, f"horner_share block {col0}+{width} exceeds d={d}")
        out = np.full((n, d), p, dtype=np.uint64)
        nk.horner_share_range(secret, coeffs, points, out, U64(p), U64(col0), U64(lo), U64(hi))
        isec = [int(x) for x in secret]
        ico = [[int(x) for x in r] for r in coeffs]
        ipt = [int(x) for x in points]
        want = [[p] * d for _ in range(n)]
        for i in range(n):
            for c in range(lo, hi):
                want[i][col0 + c] = (isec[col0 + c] + sum(ico[k - 1][c] * pow(ipt[i], k, p)
                                                          for k in range(1, degree + 1))) % p
        g_want = None
        if self.o.use_galois:
            GF = self.o.gf(p)
            g_want = [[p] * d for _ in range(n)]
            for i in range(n):
                x = GF(ipt[i])
                acc = GF(secret[col0 + lo:col0 + hi])
                for k in range(1, degree + 1):
                    acc = acc + GF(coeffs[k - 1, lo:hi]) * x**k
                for c in range(lo, hi):
                    g_want[i][col0 + c] = int(acc[c - lo])
        self.o.check(f"horner_share p={p} degree={degree} width={width} n={n} d={d} col0={col0} lo={lo} hi={hi}",
                     out, want, g_want)
        self.emit("horner_share", p, degree, width, n, d, col0, lo, hi, secret, coeffs, points, out)


def build(seed: int, use_galois: bool) -> Writer:
    rng = np.random.default_rng(seed)
    w = Writer(Oracle(use_galois))

    def rand(p: int, *shape: int) -> np.ndarray:
        # mix uniform values with edge values so every record sees some extremes
        x = rng.integers(0, p, size=shape, dtype=np.uint64)
        edges = u64(edge_values(p))
        mask = rng.random(shape) < 0.25
        x[mask] = rng.choice(edges, size=int(mask.sum()))
        return np.ascontiguousarray(x)

    for p in PRIMES:
        edges = edge_values(p)
        pairs = pair_edges(p)
        ea = u64([x for x in pairs for _ in pairs])  # every ordered pair of edge values
        eb = u64([y for _ in pairs for y in pairs])
        ne = ea.shape[0]
        ec = u64(np.roll(ea, 7))
        # -- element-wise: all edge pairs, then random lengths with sub-ranges (incl. empty) --
        for name in ("add", "sub", "mul", "muladd"):
            arrays = [ea, eb] if name != "muladd" else [ea, eb, ec]
            w.elementwise(name, p, arrays, 0, ne)
            for n, lo, hi in ((1, 0, 1), (17, 0, 17), (33, 5, 29), (9, 4, 4)):
                arrays = [rand(p, n) for _ in range(3 if name == "muladd" else 2)]
                w.elementwise(name, p, arrays, lo, hi)
        w.elementwise("neg", p, [u64(edges)], 0, len(edges))
        for n, lo, hi in ((17, 0, 17), (33, 3, 30), (5, 2, 2)):
            w.elementwise("neg", p, [rand(p, n)], lo, hi)
        for s in pairs:
            w.elementwise("scalar_mul", p, [u64(edges)], 0, len(edges), s=s)
        for n, lo, hi in ((17, 0, 17), (33, 6, 31)):
            w.elementwise("scalar_mul", p, [rand(p, n)], lo, hi, s=int(rand(p, 1)[0]))
        # -- dot: edge pairs, all-(p-1) (largest accumulated halves), random, sub-ranges --
        w.dot(p, ea, eb, 0, ne)
        full = u64([p - 1] * 48)
        w.dot(p, full, full, 0, 48)
        for n, lo, hi in ((1, 0, 1), (37, 0, 37), (64, 9, 50), (8, 3, 3)):
            w.dot(p, rand(p, n), rand(p, n), lo, hi)
        # -- weighted rowsum: k = 1, 3..6 rows --
        for k in (1, 3, 4, 5, 6):
            d = 7 + k
            w.weighted_rowsum(p, rand(p, k), rand(p, k, d), 0, d)
            if k in (3, 6):
                w.weighted_rowsum(p, rand(p, k), rand(p, k, d), 2, d - 3)
        w.weighted_rowsum(p, u64([p - 1] * 6), u64([p - 1] * 60).reshape(6, 10), 0, 10)
        w.weighted_rowsum(p, rand(p, 4), rand(p, 4, 7), 3, 3)
        # -- row dots: k = 0, 1, 3 rows, with and without squares, all-(p-1) rows --
        for k, d, lo, hi, squares in ((1, 6, 0, 6, True), (3, 9, 0, 9, True), (3, 8, 2, 7, False), (0, 4, 0, 4, True)):
            w.row_dots(p, rand(p, k, d), rand(p, d), rand(p, d), squares, lo, hi)
        w.row_dots(p, u64([p - 1] * 12).reshape(2, 6), u64([p - 1] * 6), u64([p - 1] * 6), True, 0, 6)
        for k, d, lo, hi, squares in ((3, 8, 2, 7, True), (0, 4, 0, 4, False)):
            w.row_dots4(p, rand(p, k, d), rand(p, d), rand(p, d), rand(p, d), squares, lo, hi)
        w.row_dots4(p, u64([p - 1] * 12).reshape(2, 6), u64([p - 1] * 6), u64([p - 1] * 6), u64([p - 1] * 6), True, 0, 6)
        # -- ternary projections: 32-bit lanes (small g), 64-bit lanes (large g), d across word and string edges --
        shapes = ((1, 1, 100), (3, 31, 1000), (2, 33, 1 << 40), (9, 40, 7), (8, 65, 1 << 20), (5, 7, 1 << 62))
        for k, d, scale in shapes if p == PRIMES[0] else shapes[2:4]:
            width = 8 * ((d + 63) // 64)
            stream = bytes(int(x) for x in rng.integers(0, 256, (k + 1) * width))
            g = [int(x) for x in rng.integers(-scale, scale, d, dtype=np.int64)] if scale < 1 << 62 else [(p // 2) * (-1) ** i for i in range(d)]
            sigma = [int(x) for x in rng.integers(0, p, k, dtype=np.uint64)]
            sigma[0] = p - 1
            if abs(sum(abs(x) for x in g)) < 1 << 63:
                w.ternary(p, k, d, stream, g, sigma)
        # -- matmul m x k --
        for m, k, d, lo, hi in ((1, 1, 5, 0, 5), (3, 4, 9, 0, 9), (5, 3, 12, 2, 10), (4, 6, 8, 1, 8), (2, 5, 6, 4, 4)):
            w.matmul(p, rand(p, m, k), rand(p, k, d), lo, hi)
        w.matmul(p, u64([p - 1] * 6).reshape(2, 3), u64([p - 1] * 15).reshape(3, 5), 0, 5)
        # -- horner share: degree 2 and 5 (and 0, 1), n = 5 and 10 points, col0 > 0, lo > 0 --
        small_pts = {5: u64(range(1, 6)), 10: u64(range(1, 11))}
        for degree in (2, 5):
            for n in (5, 10):
                configs = ((0, 6, 0, 6), (3, 5, 1, 4)) if n == 5 else ((2, 5, 1, 4),)
                for col0, width, lo, hi in configs:
                    d = col0 + width + 1
                    w.horner(p, rand(p, d), rand(p, degree, width), small_pts[n], col0, lo, hi)
            # points at the 2^32 boundary / large points (the non-"small" Horner step for 2^61-1)
            big = [x for x in ((1 << 32) - 1, 1 << 32, (1 << 32) + 1, p - 1, p - 2) if 0 < x < p]
            w.horner(p, rand(p, 9), rand(p, degree, 6), u64(big), 2, 1, 6)
            w.horner(p, rand(p, 9), rand(p, degree, 6), u64(rng.integers(1, p, size=5, dtype=np.uint64)), 1, 0, 6)
            if p > (1 << 32):
                w.horner(p, rand(p, 8), rand(p, degree, 8), u64([(1 << 32) - 1, (1 << 32) - 2, 7]), 0, 0, 8)
            w.horner(p, u64([p - 1] * 6), u64([p - 1] * (degree * 6)).reshape(degree, 6), u64([p - 1, 1]), 0, 0, 6)
        w.horner(p, rand(p, 6), rand(p, 1, 4), small_pts[5], 1, 0, 4)
        w.horner(p, rand(p, 6), np.zeros((0, 4), dtype=np.uint64), small_pts[5], 2, 1, 3)
        w.horner(p, rand(p, 6), rand(p, 2, 4), small_pts[5], 1, 2, 2)
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="path of the KAT text file to write")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--no-galois", action="store_true",
                    help="skip the galois cross-check (the plain-Python-integer check always runs)")
    args = ap.parse_args(argv)
    use_galois = not args.no_galois
    if use_galois:
        try:
            import galois  # noqa: F401
        except ImportError:
            print("make_kat.py: galois is not installed (pip install galois), or pass --no-galois",
                  file=sys.stderr)
            return 2
    w = build(args.seed, use_galois)
    header = [
        "# ppbfl native field kernels: known-answer vectors, generated by native/make_kat.py",
        f"# seed {args.seed}; expected values from ppbfl.field.numba_kernels, checked against "
        + ("galois and Python ints" if use_galois else "Python ints"),
        "# format: see the docstring of native/make_kat.py",
        f"ppbfl-kat 1 {w.count}",
    ]
    text = "\n".join(header + w.lines + [f"end {w.count}", ""])
    ensure(len(text) < 230_000, f"KAT file grew to {len(text)} bytes; keep it below 230 KB")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(text)
    os.replace(tmp, args.out)
    print(f"make_kat.py: wrote {w.count} cases, {len(text)} bytes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
