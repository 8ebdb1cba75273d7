"""The ``native`` kernel backend: the C99 kernels of ``native/ppbfl_field.c`` through cffi.

Same names, signatures and contracts as :mod:`ppbfl.field.numba_kernels` (the backend switch
in :mod:`ppbfl.field.backend` treats both alike). Every array is checked here, before C sees
a pointer: dtype ``uint64`` (:class:`~ppbfl.errors.FieldDTypeError`), C-contiguous and long
enough for the requested range (:class:`~ppbfl.errors.FieldShapeError`), so a bad call is a
typed Python error and never a segfault. cffi releases the GIL around each C call, so the
thread split of :mod:`ppbfl.field.threads` runs them in parallel.

Importing this module raises ``ImportError`` when the extension was not built (no C compiler
at install time); the backend switch then falls back to Numba.
"""

from __future__ import annotations

import numpy as np

from ppbfl.errors import FieldDTypeError, FieldShapeError
from ppbfl.field._native import ffi, lib  # ImportError when not built

__all__ = [
    "PackedRows",
    "add_range",
    "dot_range",
    "horner_share_range",
    "matmul_range",
    "mul_range",
    "muladd_range",
    "neg_range",
    "pack_rows",
    "row_dots4_range",
    "row_dots_range",
    "scalar_mul_range",
    "ternary_combine",
    "ternary_prepare",
    "ternary_project32",
    "ternary_project64",
    "sub_range",
    "weighted_rowsum_range",
]


def _ptr(name: str, arr: object, ndim: int, min_shape: tuple[int, ...] = ()):
    """A ``uint64_t *`` into ``arr`` after checking dtype, dimensions, layout and size (and, for
    the output ``out``, that it is writable: C would otherwise write into read-only memory)."""
    if not isinstance(arr, np.ndarray):
        raise FieldDTypeError(name, type(arr).__name__, "a numpy.ndarray of uint64")
    if arr.dtype != np.uint64:
        raise FieldDTypeError(name, arr.dtype)
    if arr.ndim != ndim:
        raise FieldShapeError(name, arr.shape, f"{ndim}-D")
    if not arr.flags.c_contiguous:
        raise FieldShapeError(name, arr.shape, "a C-contiguous array (the C kernels index it directly)")
    if name == "out" and not arr.flags.writeable:
        raise FieldShapeError(name, arr.shape, "a writable array")
    for axis, needed in enumerate(min_shape):
        if arr.shape[axis] < needed:
            raise FieldShapeError(name, arr.shape, f"at least {needed} along axis {axis}")
    return ffi.from_buffer("uint64_t[]", arr)


def _range(lo: int, hi: int) -> tuple[int, int]:
    lo, hi = int(lo), int(hi)
    if not 0 <= lo <= hi:
        raise FieldShapeError("range", (lo, hi), "0 <= lo <= hi")
    return lo, hi


def add_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] + b[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_add_range(_ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def sub_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] - b[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_sub_range(_ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def neg_range(a, out, p, lo, hi):
    """``out[i] = -a[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_neg_range(_ptr("a", a, 1, (hi,)), _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def mul_range(a, b, out, p, lo, hi):
    """``out[i] = a[i] * b[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_mul_range(_ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def muladd_range(a, b, c, out, p, lo, hi):
    """``out[i] = a[i] * b[i] + c[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_muladd_range(
        _ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), _ptr("c", c, 1, (hi,)), _ptr("out", out, 1, (hi,)),
        int(p), lo, hi,
    )


def scalar_mul_range(a, s, out, p, lo, hi):
    """``out[i] = s * a[i] mod p`` on ``[lo, hi)``; returns the largest input read."""
    lo, hi = _range(lo, hi)
    return lib.pf_scalar_mul_range(_ptr("a", a, 1, (hi,)), int(s), _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def dot_range(a, b, p, lo, hi):
    """``(sum a[i] b[i] mod p over [lo, hi), largest input read)`` (``hi - lo < 2^32``)."""
    lo, hi = _range(lo, hi)
    if hi - lo >= 1 << 32:
        raise FieldShapeError("range", (lo, hi), "fewer than 2^32 terms per call")
    top = ffi.new("uint64_t *")
    value = lib.pf_dot_range(_ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), int(p), lo, hi, top)
    return np.uint64(value), np.uint64(top[0])


class PackedRows:
    """``k`` separate (d,) uint64 rows as the C kernels' ``const uint64_t *const *rows``.

    Holds the pointer array and the arrays it points into (so they outlive every call);
    ``length`` is the shortest row's length. Built by :func:`pack_rows`; no data is copied.
    """

    def __init__(self, rows: list[np.ndarray]) -> None:
        self.rows = rows
        self._buffers = [_ptr(f"rows[{i}]", row, 1) for i, row in enumerate(rows)]
        self.pointers = ffi.new("const uint64_t *[]", self._buffers)
        self.length = min((row.shape[0] for row in rows), default=0)

    def __len__(self) -> int:
        return len(self.rows)


def pack_rows(rows) -> PackedRows:
    """The rows argument of :func:`row_dots_range` and :func:`weighted_rowsum_range` for ``k``
    separate ``(d,)`` uint64 C-contiguous arrays, without copying them (a pointer array)."""
    return PackedRows(list(rows))


def _row_pointers(rows, k: int | None, hi: int):
    """``(pointer array, k)`` for a (k, d) array or :class:`PackedRows` whose rows hold at least ``hi`` elements."""
    if isinstance(rows, PackedRows):
        if k is not None and len(rows) != k:
            raise FieldShapeError("rows", (len(rows), rows.length), f"({k}, d) to match weights")
        if len(rows) and rows.length < hi:
            raise FieldShapeError("rows", (len(rows), rows.length), f"rows of at least {hi} elements")
        return rows.pointers, len(rows)
    base = _ptr("rows", rows, 2, (0 if k is None else k, hi))
    if k is not None and rows.shape[0] != k:
        raise FieldShapeError("rows", rows.shape, f"({k}, d) to match weights")
    width = rows.shape[1]
    return ffi.new("const uint64_t *[]", [base + i * width for i in range(rows.shape[0])]), rows.shape[0]


def row_dots_range(rows, a, b, squares, p, lo, hi):
    """Per row ``(<r_i, a>, <r_i, b>, <r_i, r_i> or 0)`` mod ``p`` over ``[lo, hi)`` in one pass
    (see :func:`ppbfl.field.numba_kernels.row_dots_range`); returns ``((3, k) sums, largest input)``."""
    lo, hi = _range(lo, hi)
    if hi - lo >= 1 << 32:
        raise FieldShapeError("range", (lo, hi), "fewer than 2^32 terms per call")
    pointers, k = _row_pointers(rows, None, hi)
    sums = np.empty((3, k), dtype=np.uint64)
    top = lib.pf_row_dots_range(
        pointers, k, _ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), int(bool(squares)),
        ffi.from_buffer("uint64_t[]", sums), int(p), lo, hi,
    )
    return sums, np.uint64(top)


def row_dots4_range(rows, a, b, c, squares, p, lo, hi):
    """:func:`row_dots_range` with a fourth vector ``c``: returns ``((4, k) sums, largest input)``,
    row 3 the dots with ``c`` (see :func:`ppbfl.field.numba_kernels.row_dots4_range`)."""
    lo, hi = _range(lo, hi)
    if hi - lo >= 1 << 32:
        raise FieldShapeError("range", (lo, hi), "fewer than 2^32 terms per call")
    pointers, k = _row_pointers(rows, None, hi)
    sums = np.empty((4, k), dtype=np.uint64)
    top = lib.pf_row_dots4_range(
        pointers, k, _ptr("a", a, 1, (hi,)), _ptr("b", b, 1, (hi,)), _ptr("c", c, 1, (hi,)), int(bool(squares)),
        ffi.from_buffer("uint64_t[]", sums), int(p), lo, hi,
    )
    return sums, np.uint64(top)


def _buffer(name: str, arr: object, dtype: type, ctype: str, size: int, *, writable: bool = False):
    """A ``ctype *`` into the 1-D C-contiguous ``dtype`` array ``arr`` of at least ``size`` elements."""
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
        raise FieldDTypeError(name, getattr(arr, "dtype", type(arr).__name__), f"a numpy.ndarray of {np.dtype(dtype).name}")
    if arr.ndim != 1 or not arr.flags.c_contiguous or arr.shape[0] < size:
        raise FieldShapeError(name, arr.shape, f"a C-contiguous 1-D array of at least {size} elements")
    if writable and not arr.flags.writeable:
        raise FieldShapeError(name, arr.shape, "a writable array")
    return ffi.from_buffer(f"{ctype}[]", arr, require_writable=writable)


def _row_bytes(d: int) -> int:
    return 8 * ((d + 63) // 64)


def ternary_prepare(signs, g, scratch):
    """Signed values of the validity projections (see :func:`ppbfl.defense.validity_kernels.prepare`):
    ``signs`` (row_bytes,) uint8, ``g`` (d,) int64, ``scratch`` (d,) uint64 receiving d uint32 (returns
    True: ``sum |g_i| < 2^31``) or d uint64 (returns False)."""
    d = int(g.shape[0])
    if d >= 1 << 32:
        raise FieldShapeError("g", g.shape, "fewer than 2^32 entries")
    return bool(lib.pf_ternary_prepare(
        _buffer("signs", signs, np.uint8, "uint8_t", _row_bytes(d)), d, _buffer("g", g, np.int64, "int64_t", d),
        _buffer("scratch", scratch, np.uint64, "uint64_t", d, writable=True),
    ))


def _project(name, masks, row_bytes, d, h, y, lo, hi, wide):
    lo, hi = _range(lo, hi)
    if int(row_bytes) < _row_bytes(int(d)):
        raise FieldShapeError("row_bytes", (int(row_bytes),), f"at least {_row_bytes(int(d))}")
    m = _buffer("masks", masks, np.uint8, "uint8_t", hi * int(row_bytes))
    out = _buffer("y", y, np.int64, "int64_t", hi, writable=True)
    values = _buffer("h", h, np.uint64, "uint64_t", int(d)) if wide else _buffer("h", h, np.uint32, "uint32_t", int(d))
    getattr(lib, name)(m, int(row_bytes), int(d), values, out, lo, hi)


def ternary_project32(masks, row_bytes, d, h, y, lo, hi):
    """``y[j] = sum_i mask_j[i] h_i`` in uint32 for rows ``[lo, hi)`` (see :mod:`ppbfl.defense.validity_kernels`)."""
    _project("pf_ternary_project32", masks, row_bytes, d, h, y, lo, hi, wide=False)


def ternary_project64(masks, row_bytes, d, h, y, lo, hi):
    """``y[j] = sum_i mask_j[i] h_i`` modulo ``2^64`` for rows ``[lo, hi)``."""
    _project("pf_ternary_project64", masks, row_bytes, d, h, y, lo, hi, wide=True)


def ternary_combine(stream, sigma, k, d, p, out, lo, hi):
    """``out[i] = sum_j sigma_j R[j, i] mod p`` for columns ``[lo, hi)`` (``lo`` a multiple of 2048;
    see :func:`ppbfl.defense.validity_kernels.combine`)."""
    lo, hi = _range(lo, hi)
    k, d = int(k), int(d)
    if lo % 2048 or hi > d or not 0 <= k <= 256:
        raise FieldShapeError("range", (lo, hi), f"lo a multiple of 2048, hi <= d = {d}, k = {k} <= 256")
    lib.pf_ternary_combine(
        _buffer("stream", stream, np.uint8, "uint8_t", (k + 1) * _row_bytes(d)), k, d, _ptr("sigma", sigma, 1, (k,)),
        _ptr("out", out, 1, (d,)), int(p), lo, hi,
    )


def weighted_rowsum_range(weights, rows, out, p, lo, hi):
    """``out[j] = sum_i weights[i] rows[i, j] mod p`` for ``j`` in ``[lo, hi)``; returns the largest row element.

    ``rows``: a (k, d) array or :func:`pack_rows` of k separate rows.
    """
    lo, hi = _range(lo, hi)
    w = _ptr("weights", weights, 1)
    k = weights.shape[0]
    if isinstance(rows, PackedRows):
        pointers, _ = _row_pointers(rows, k, hi)
        return lib.pf_weighted_rowsum_rows_range(w, k, pointers, _ptr("out", out, 1, (hi,)), int(p), lo, hi)
    r = _ptr("rows", rows, 2, (k, hi))
    if rows.shape[0] != k:
        raise FieldShapeError("rows", rows.shape, f"({k}, d) to match weights")
    return lib.pf_weighted_rowsum_range(w, k, r, rows.shape[1], _ptr("out", out, 1, (hi,)), int(p), lo, hi)


def matmul_range(matrix, rows, out, p, lo, hi):
    """``out[r, j] = sum_i matrix[r, i] rows[i, j] mod p`` for columns ``[lo, hi)``."""
    lo, hi = _range(lo, hi)
    mat = _ptr("matrix", matrix, 2)
    m, k = matrix.shape
    r = _ptr("rows", rows, 2, (k, hi))
    if rows.shape[0] != k:
        raise FieldShapeError("rows", rows.shape, f"({k}, d) to match matrix {matrix.shape}")
    o = _ptr("out", out, 2, (m, hi))
    if out.shape != (m, rows.shape[1]):
        raise FieldShapeError("out", out.shape, str((m, rows.shape[1])))
    lib.pf_matmul_range(mat, m, k, r, rows.shape[1], o, int(p), lo, hi)


def horner_share_range(secret, coeffs, points, out, p, col0, lo, hi):
    """Shamir evaluation of one block of columns (see :func:`ppbfl.field.numba_kernels.horner_share_range`)."""
    lo, hi = _range(lo, hi)
    col0 = int(col0)
    c = _ptr("coeffs", coeffs, 2, (0, hi))
    degree, width = coeffs.shape
    x = _ptr("points", points, 1)
    n = points.shape[0]
    o = _ptr("out", out, 2, (n, col0 + hi))
    if out.shape[0] != n:
        raise FieldShapeError("out", out.shape, f"({n}, d): one row per point")
    s = _ptr("secret", secret, 1, (col0 + hi,))
    if secret.shape[0] != out.shape[1]:
        raise FieldShapeError("secret", secret.shape, f"({out.shape[1]},) to match out")
    lib.pf_horner_share_range(s, c, degree, width, x, n, o, out.shape[1], int(p), col0, lo, hi)
