"""Linear operations on Shamir share arrays: local, no communication.

A *share array* of a length-``d`` secret vector is an ``(n, d)`` uint64 array in ``[0, p)``
whose row ``i`` is party ``i + 1``'s share vector (the layout of :func:`ppbfl.sharing.share`).
Every function here is applied by each party to its own row; the simulation applies it to all
rows at once. Because Shamir sharing is linear, the results are sharings (same threshold) of:

* :func:`add` / :func:`sub` -- ``x + y`` / ``x - y``;
* :func:`scalar_mul` -- ``s * x`` for a public field element ``s``;
* :func:`dot_public` -- the scalar ``<x, v>`` for a public vector ``v``, as ``(n,)`` shares;
* :func:`weighted_sum` -- ``sum_k w_k x_k`` for public field weights ``w``;
* :func:`add_public` -- ``x + c`` for a public vector ``c`` (added to every share).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ppbfl.errors import FieldShapeError
from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["add", "add_public", "check_shares", "dot_public", "scalar_mul", "sub", "weighted_sum"]


def check_shares(x: object, name: str, field: PrimeField = GF61, n: int | None = None, d: int | None = None) -> np.ndarray:
    """Validate an ``(n, d)`` uint64 share array in ``[0, p)``; return it C-contiguous."""
    a = field.elements(x, name, ndim=2)
    if (n is not None and a.shape[0] != n) or (d is not None and a.shape[1] != d):
        raise FieldShapeError(name, a.shape, f"({n if n is not None else 'n'}, {d if d is not None else 'd'})")
    return a


def add(x: np.ndarray, y: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Shares of ``x + y``. ``x, y``: (n, d) uint64 share arrays over ``field``; returns (n, d)."""
    a = check_shares(x, "x", field)
    b = check_shares(y, "y", field, *a.shape)
    return ops.add(a.reshape(-1), b.reshape(-1), field=field).reshape(a.shape)


def sub(x: np.ndarray, y: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Shares of ``x - y``. ``x, y``: (n, d) uint64 share arrays over ``field``; returns (n, d)."""
    a = check_shares(x, "x", field)
    b = check_shares(y, "y", field, *a.shape)
    return ops.sub(a.reshape(-1), b.reshape(-1), field=field).reshape(a.shape)


def scalar_mul(x: np.ndarray, s: int, *, field: PrimeField = GF61) -> np.ndarray:
    """Shares of ``s * x`` for a public field element ``s`` (int in ``[0, p)``). ``x``: (n, d); returns (n, d)."""
    a = check_shares(x, "x", field)
    return ops.scalar_mul(a.reshape(-1), s, field=field).reshape(a.shape)


def add_public(x: np.ndarray, c: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Shares of ``x + c`` for a public vector ``c``: every party adds ``c`` to its share.

    ``x``: (n, d) uint64 shares; ``c``: (d,) uint64 in ``[0, p)``; returns (n, d). (Adding the
    same constant to every point of a polynomial adds it to the value at 0.)
    """
    a = check_shares(x, "x", field)
    v = field.elements(c, "c", ndim=1)
    if v.shape[0] != a.shape[1]:
        raise FieldShapeError("c", v.shape, f"({a.shape[1]},)")
    return np.stack([ops.add(row, v, field=field) for row in a])


def dot_public(x: np.ndarray, v: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Shares of the scalar ``<x, v>`` for a public vector ``v``.

    ``x``: (n, d) uint64 shares; ``v``: (d,) uint64 in ``[0, p)``. Returns (n,) uint64: entry
    ``i`` is party ``i + 1``'s share ``<x_i, v> mod p`` (same threshold as ``x``).
    """
    a = check_shares(x, "x", field)
    w = field.elements(v, "v", ndim=1)
    if w.shape[0] != a.shape[1]:
        raise FieldShapeError("v", w.shape, f"({a.shape[1]},)")
    return np.array([ops.dot(row, w, field=field) for row in a], dtype=np.uint64)


def weighted_sum(
    sharings: Sequence[np.ndarray] | np.ndarray, weights: np.ndarray, *, field: PrimeField = GF61
) -> np.ndarray:
    """Shares of ``sum_k weights[k] * x_k`` for public field weights.

    ``sharings``: k share arrays of identical shape (n, d) (or one (k, n, d) array), uint64;
    ``weights``: (k,) uint64 in ``[0, p)``. Returns (n, d) uint64.
    """
    if isinstance(sharings, np.ndarray) and sharings.ndim == 3:
        stacked = field.elements(sharings, "sharings", ndim=3)
    else:
        rows = list(sharings)
        if not rows:
            raise FieldShapeError("sharings", (0,), "at least one (n, d) share array")
        first = check_shares(rows[0], "sharings[0]", field)
        checked = [first] + [check_shares(s, f"sharings[{i}]", field, *first.shape) for i, s in enumerate(rows[1:], 1)]
        stacked = np.stack(checked)
    w = field.elements(weights, "weights", ndim=1)
    k, n, d = stacked.shape
    if w.shape[0] != k:
        raise FieldShapeError("weights", w.shape, f"({k},): one weight per sharing")
    return ops.weighted_rowsum(w, stacked.reshape(k, n * d), field=field).reshape(n, d)
