"""Validated arithmetic on arrays of field elements.

Every function takes ``uint64`` arrays reduced into ``[0, p)`` (checked; a bad argument
raises :class:`~ppbfl.errors.FieldDTypeError`, :class:`~ppbfl.errors.FieldShapeError` or
:class:`~ppbfl.errors.FieldRangeError` naming it) and returns fully reduced ``uint64``
results. ``field`` defaults to ``GF(2^61 - 1)``. Where ``out`` is accepted it may alias an input.
The range check costs no extra pass: the kernels report the largest input they read and the
error is raised after the call, when only the output has been written. When ``out`` aliases an
input the inputs are checked first, so a bad call never modifies its inputs; a caller's
separate ``out`` holds unspecified values after an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ppbfl.errors import FieldDTypeError, FieldShapeError
from ppbfl.field.backend import get_backend
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.field.threads import split_call

__all__ = ["add", "dot", "inverse", "mul", "muladd", "neg", "row_dots", "scalar_mul", "sub", "weighted_rowsum"]


def _same_shape(first: np.ndarray, *others: tuple[str, np.ndarray]) -> None:
    for name, arr in others:
        if arr.shape != first.shape:
            raise FieldShapeError(name, arr.shape, f"{first.shape} (same as the first operand)")


def _output(out: np.ndarray | None, shape: tuple[int, ...], field: PrimeField) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.uint64)
    out_checked = field.elements(out, "out", check_range=False)
    if out_checked is not out:
        raise FieldShapeError("out", out.shape, "a C-contiguous uint64 array")
    if out.shape != shape:
        raise FieldShapeError("out", out.shape, str(shape))
    if not out.flags.writeable:
        raise FieldShapeError("out", out.shape, "a writable array")
    return out


def _run_validated(
    field: PrimeField, inputs: dict[str, np.ndarray], out: np.ndarray | None, kernel, total: int, *args
) -> list:
    """Run ``kernel`` over ``[0, total)`` and guarantee every array in ``inputs`` is ``< p``.

    Range kernels return the largest input they read (as the last element of a tuple, or
    alone), so the check rides along the computation. Only when ``out`` aliases an input are
    the inputs checked first (the call would otherwise overwrite them before raising).
    """
    aliased = out is not None and any(np.may_share_memory(out, arr) for arr in inputs.values())
    if aliased:
        for name, arr in inputs.items():
            field.elements(arr, name)
    results = split_call(kernel, total, *args)
    tops = [r[-1] if isinstance(r, tuple) else r for r in results]
    if not aliased and tops and max(int(x) for x in tops) >= field.p:
        for name, arr in inputs.items():
            field.elements(arr, name)  # raises FieldRangeError naming the first bad index
    return results


def _elementwise(kernel_name: str, field: PrimeField, out: np.ndarray | None, **arrays: object) -> np.ndarray:
    names = list(arrays)
    checked = [field.elements(arrays[n], n, ndim=1, check_range=False) for n in names]
    _same_shape(checked[0], *zip(names[1:], checked[1:]))
    result = _output(out, checked[0].shape, field)
    kernel = getattr(get_backend(), kernel_name)
    _run_validated(field, dict(zip(names, checked)), out, kernel, result.shape[0], *checked, result, field.modulus)
    return result


def add(a: np.ndarray, b: np.ndarray, *, field: PrimeField = GF61, out: np.ndarray | None = None) -> np.ndarray:
    """``a + b mod p``. ``a, b``: (d,) uint64 in ``[0, p)``; returns (d,) uint64."""
    return _elementwise("add_range", field, out, a=a, b=b)


def sub(a: np.ndarray, b: np.ndarray, *, field: PrimeField = GF61, out: np.ndarray | None = None) -> np.ndarray:
    """``a - b mod p``. ``a, b``: (d,) uint64 in ``[0, p)``; returns (d,) uint64."""
    return _elementwise("sub_range", field, out, a=a, b=b)


def neg(a: np.ndarray, *, field: PrimeField = GF61, out: np.ndarray | None = None) -> np.ndarray:
    """``-a mod p``. ``a``: (d,) uint64 in ``[0, p)``; returns (d,) uint64."""
    return _elementwise("neg_range", field, out, a=a)


def mul(a: np.ndarray, b: np.ndarray, *, field: PrimeField = GF61, out: np.ndarray | None = None) -> np.ndarray:
    """``a * b mod p`` element-wise. ``a, b``: (d,) uint64 in ``[0, p)``; returns (d,) uint64."""
    return _elementwise("mul_range", field, out, a=a, b=b)


def muladd(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, *, field: PrimeField = GF61, out: np.ndarray | None = None
) -> np.ndarray:
    """``a * b + c mod p`` element-wise. ``a, b, c``: (d,) uint64 in ``[0, p)``; returns (d,)."""
    return _elementwise("muladd_range", field, out, a=a, b=b, c=c)


def scalar_mul(
    a: np.ndarray, s: int, *, field: PrimeField = GF61, out: np.ndarray | None = None
) -> np.ndarray:
    """``s * a mod p``. ``a``: (d,) uint64 in ``[0, p)``; ``s``: int in ``[0, p)``; returns (d,)."""
    scalar = field.scalar(s, "s")
    a_checked = field.elements(a, "a", ndim=1, check_range=False)
    result = _output(out, a_checked.shape, field)
    _run_validated(
        field, {"a": a_checked}, out, get_backend().scalar_mul_range,
        result.shape[0], a_checked, scalar, result, field.modulus,
    )
    return result


def dot(a: np.ndarray, b: np.ndarray, *, field: PrimeField = GF61) -> int:
    """``sum_i a[i] * b[i] mod p``. ``a, b``: (d,) uint64 in ``[0, p)``; returns an int in ``[0, p)``."""
    a_checked = field.elements(a, "a", ndim=1, check_range=False)
    b_checked = field.elements(b, "b", ndim=1, check_range=False)
    _same_shape(a_checked, ("b", b_checked))
    partials = _run_validated(
        field, {"a": a_checked, "b": b_checked}, None, get_backend().dot_range,
        a_checked.shape[0], a_checked, b_checked, field.modulus,
    )
    return sum(int(value) for value, _ in partials) % field.p


def _row_operand(
    rows: np.ndarray | Sequence[np.ndarray], name: str, field: PrimeField, d: int | None = None
) -> tuple[object, dict[str, np.ndarray], int, int]:
    """Validate ``rows`` ((k, d) array, or k separate (d,) arrays) without copying them.

    Returns ``(kernel argument, {error name: array}, k, d)``: a 2-D array is passed as is, a
    sequence is packed by the backend (:func:`~ppbfl.field.numba_kernels.pack_rows`). Values
    are not range-checked here (the kernels report the largest one they read).
    """
    if isinstance(rows, np.ndarray):
        r = field.elements(rows, name, ndim=2, check_range=False)
        if d is not None and r.shape[1] != d:
            raise FieldShapeError(name, r.shape, f"(k, {d})")
        return r, {name: r}, r.shape[0], r.shape[1]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise FieldDTypeError(name, type(rows).__name__, "a (k, d) uint64 array or a sequence of (d,) uint64 arrays")
    checked = [field.elements(row, f"{name}[{i}]", ndim=1, check_range=False) for i, row in enumerate(rows)]
    if d is None:
        if not checked:
            raise FieldShapeError(name, (0,), "at least one row (d is taken from the rows)")
        d = checked[0].shape[0]
    for i, row in enumerate(checked):
        if row.shape != (d,):
            raise FieldShapeError(f"{name}[{i}]", row.shape, f"({d},) (same as the other operands)")
    return get_backend().pack_rows(checked), {f"{name}[{i}]": row for i, row in enumerate(checked)}, len(checked), d


def row_dots(
    rows: np.ndarray | Sequence[np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    squares: bool = True,
    field: PrimeField = GF61,
    rows_name: str = "rows",
) -> np.ndarray:
    """For every row ``r_i``: ``<r_i, a>``, ``<r_i, b>``, ``<r_i, r_i>`` and, when ``c`` is given,
    ``<r_i, c>``, mod ``p``, in one pass over the rows.

    The fused form of ``dot(r_i, a)``, ``dot(r_i, b)``, ``dot(r_i, r_i)`` (and ``dot(r_i, c)``) for
    each row (one read of each row instead of three or four, and no copy of separate rows into one
    matrix).

    Args:
        rows: a (k, d) uint64 array or a sequence of k (d,) uint64 arrays (not copied), in ``[0, p)``.
        a, b: (d,) uint64 in ``[0, p)``.
        c: optional (d,) uint64 in ``[0, p)``.
        squares: compute ``<r_i, r_i>``; when False that row of the result is 0.
        rows_name: the argument name used in errors (entries are named ``rows_name[i]``).

    Returns:
        (3, k) uint64 in ``[0, p)`` ((4, k) with ``c``): row 0 the dots with ``a``, row 1 with
        ``b``, row 2 the squares, row 3 the dots with ``c``.
    """
    a_checked = field.elements(a, "a", ndim=1, check_range=False)
    b_checked = field.elements(b, "b", ndim=1, check_range=False)
    _same_shape(a_checked, ("b", b_checked))
    d = a_checked.shape[0]
    packed, inputs, _, _ = _row_operand(rows, rows_name, field, d)
    backend = get_backend()
    if c is None:
        partials = _run_validated(
            field, {**inputs, "a": a_checked, "b": b_checked}, None, backend.row_dots_range,
            d, packed, a_checked, b_checked, bool(squares), field.modulus,
        )
    else:
        c_checked = field.elements(c, "c", ndim=1, check_range=False)
        _same_shape(a_checked, ("c", c_checked))
        partials = _run_validated(
            field, {**inputs, "a": a_checked, "b": b_checked, "c": c_checked}, None, backend.row_dots4_range,
            d, packed, a_checked, b_checked, c_checked, bool(squares), field.modulus,
        )
    total = partials[0][0]
    for sums, _ in partials[1:]:
        total = (total + sums) % field.modulus  # each term < p < 2^62: no overflow
    return total


def weighted_rowsum(
    weights: np.ndarray,
    rows: np.ndarray | Sequence[np.ndarray],
    *,
    field: PrimeField = GF61,
    out: np.ndarray | None = None,
    rows_name: str = "rows",
) -> np.ndarray:
    """``sum_i weights[i] * rows[i] mod p``.

    ``weights``: (k,) uint64 in ``[0, p)``; ``rows``: (k, d) uint64 in ``[0, p)``, or a sequence of
    k (d,) uint64 arrays (used in place, not stacked; ``k >= 1``); returns (d,).
    ``rows_name`` is the argument name used in errors (e.g. ``shares`` for reconstruction).
    """
    w = field.elements(weights, "weights", ndim=1)
    r, inputs, k, d = _row_operand(rows, rows_name, field)
    if k != w.shape[0]:
        raise FieldShapeError(rows_name, (k, d), f"({w.shape[0]}, d) to match weights")
    result = _output(out, (d,), field)
    aliased = out is not None and (
        np.may_share_memory(result, w) or any(np.may_share_memory(result, row) for row in inputs.values())
    )
    # the kernel accumulates into its output row by row: an aliased output is computed aside
    target = np.empty_like(result) if aliased else result
    _run_validated(field, inputs, None, get_backend().weighted_rowsum_range, d, w, r, target, field.modulus)
    if aliased:
        result[:] = target
    return result


def matmul_unchecked(matrix: np.ndarray, rows: np.ndarray, out: np.ndarray, field: PrimeField) -> np.ndarray:
    """``out = matrix @ rows mod p`` without validation (callers validated already).

    ``matrix``: (m, k) uint64; ``rows``: (k, d) uint64; ``out``: (m, d) uint64, C-contiguous.
    """
    split_call(get_backend().matmul_range, rows.shape[1], matrix, rows, out, field.modulus)
    return out


def inverse(x: int, *, field: PrimeField = GF61) -> int:
    """Multiplicative inverse of the scalar ``x`` in ``GF(p)``; raises ``NotInvertibleError`` for 0."""
    return field.inverse(x)
