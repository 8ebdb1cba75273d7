"""Vectorised (t, n) Shamir secret sharing over ``GF(p)``.

A secret vector ``s`` (d coordinates) is shared by drawing, per coordinate ``j``, a uniformly
random polynomial ``f_j`` of degree at most ``t - 1`` with ``f_j(0) = s_j``; party ``i``
(evaluation point ``x_i = i``, ``i = 1..n``) receives the vector ``(f_j(i))_j``. Any ``t``
shares determine ``f_j`` and so ``s_j`` by Lagrange interpolation at 0; any ``t - 1`` shares are
uniformly distributed and independent of ``s`` (perfect privacy).

Randomness comes from :class:`~ppbfl.field.csprng.FieldRNG` (ChaCha20), generated block by
block (in parallel, one block per task) so the extra memory of :func:`share` is a small
fraction of its output. Lagrange
coefficients are computed once per ``(field, points)`` and cached. Shares must travel over
secure channels: Shamir sharing hides the secret only from parties that see fewer than ``t``
shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ppbfl.errors import (
    EvaluationPointError,
    FieldShapeError,
    InsufficientSharesError,
    SharingParameterError,
)
from ppbfl.field.backend import get_backend
from ppbfl.field.csprng import PRG_BLOCK, SEED_BYTES, FieldRNG, new_seed
from ppbfl.field.ops import weighted_rowsum
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.field.threads import map_blocks

__all__ = [
    "share",
    "reconstruct",
    "lagrange_coefficients",
    "lagrange_matrix",
    "check_t",
    "check_threshold",
    "check_points",
]

def check_t(t: object) -> int:
    """Validate a threshold on its own: an int ``>= 1``.

    Raises:
        SharingParameterError: ``t`` is not an int or is below 1.
    """
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise SharingParameterError(f"t: expected an int, got {type(t).__name__}")
    if int(t) < 1:
        raise SharingParameterError(f"t = {t}: the threshold must be at least 1")
    return int(t)


def check_threshold(t: object, n: object, field: PrimeField) -> tuple[int, int]:
    """Validate threshold parameters: ints with ``1 <= t <= n < p``.

    Raises:
        SharingParameterError: naming the violated condition.
    """
    t = check_t(t)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise SharingParameterError(f"n: expected an int, got {type(n).__name__}")
    n = int(n)
    if t > n:
        raise SharingParameterError(f"t = {t} > n = {n}: the threshold cannot exceed the number of parties")
    if n >= field.p:
        raise SharingParameterError(f"n = {n} >= p = {field.p}: needs n distinct non-zero points in {field!r}")
    return t, n


def check_points(points: Sequence[int] | np.ndarray, field: PrimeField, name: str = "points") -> tuple[int, ...]:
    """Validate evaluation points: distinct ints in ``[1, p)`` (0 is the secret's point).

    Raises:
        EvaluationPointError: a point is zero, out of range, not an int, or repeated.
    """
    values = np.asarray(points).reshape(-1).tolist() if isinstance(points, np.ndarray) else list(points)
    checked = []
    for position, x in enumerate(values):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise EvaluationPointError(f"{name}[{position}] = {x!r} is not an int")
        if int(x) == 0:
            raise EvaluationPointError(f"{name}[{position}] = 0: point 0 holds the secret")
        if not 0 < int(x) < field.p:
            raise EvaluationPointError(f"{name}[{position}] = {x} is not in [1, p) for p = {field.p}")
        checked.append(int(x))
    seen: dict[int, int] = {}
    for position, x in enumerate(checked):
        if x in seen:
            raise EvaluationPointError(f"{name}[{position}] = {x} repeats {name}[{seen[x]}]")
        seen[x] = position
    return tuple(checked)


@lru_cache(maxsize=4096)
def _lagrange_matrix_cached(src: tuple[int, ...], dst: tuple[int, ...], p: int) -> np.ndarray:
    matrix = np.empty((len(dst), len(src)), dtype=np.uint64)
    for r, x in enumerate(dst):
        for i, xi in enumerate(src):
            num, den = 1, 1
            for m, xm in enumerate(src):
                if m != i:
                    num = num * (x - xm) % p
                    den = den * (xi - xm) % p
            matrix[r, i] = num * pow(den, -1, p) % p
    matrix.setflags(write=False)
    return matrix


def lagrange_matrix(
    src_points: Sequence[int], dst_points: Sequence[int], field: PrimeField = GF61
) -> np.ndarray:
    """Matrix mapping values at ``src_points`` to the interpolating polynomial's values at ``dst_points``.

    ``M[r, i] = L_i(dst_points[r])`` with ``L_i`` the Lagrange basis polynomial of
    ``src_points`` (degree ``len(src_points) - 1``). Returns a read-only (m, k) uint64 array,
    cached per ``(src_points, dst_points, p)``. ``src_points`` must be distinct and may include
    0; ``dst_points`` are any field elements.
    """
    src = tuple(int(x) % field.p for x in src_points)
    if len(set(src)) != len(src):
        raise EvaluationPointError(f"src_points {src} are not distinct")
    dst = tuple(int(x) % field.p for x in dst_points)
    return _lagrange_matrix_cached(src, dst, field.p)


def lagrange_coefficients(points: Sequence[int], field: PrimeField = GF61, at: int = 0) -> np.ndarray:
    """Lagrange coefficients ``lambda_i = L_i(at)`` for ``points``: (k,) uint64, read-only, cached.

    ``sum_i lambda_i f(points[i]) = f(at)`` for every polynomial ``f`` of degree ``< k``.
    """
    return lagrange_matrix(points, (at,), field)[0]


def share(
    secret: np.ndarray,
    t: int,
    n: int,
    *,
    field: PrimeField = GF61,
    rng: FieldRNG | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Shamir-share a vector among ``n`` parties with threshold ``t``.

    Args:
        secret: (d,) uint64 in ``[0, p)``.
        t: threshold: any ``t`` shares reconstruct, ``t - 1`` reveal nothing (``1 <= t <= n``).
        n: number of parties; party ``i`` gets evaluation point ``i`` (``n < p``).
        field: the prime field.
        rng: source of the polynomial coefficients (default: a fresh key from the OS).
        out: optional preallocated (n, d) uint64 C-contiguous output, not overlapping ``secret``.

    Returns:
        (n, d) uint64 in ``[0, p)``: row ``i - 1`` is party ``i``'s share vector.
    """
    t, n = check_threshold(t, n, field)
    values = field.elements(secret, "secret", ndim=1)
    d = values.shape[0]
    if out is None:
        out = np.empty((n, d), dtype=np.uint64)
    elif out.dtype != np.uint64 or out.shape != (n, d) or not out.flags.c_contiguous or not out.flags.writeable:
        raise FieldShapeError("out", out.shape, f"a writable C-contiguous ({n}, {d}) uint64 array")
    elif np.may_share_memory(out, values):
        raise FieldShapeError("out", out.shape, "an array that does not overlap the secret")
    if rng is not None and rng.field != field:
        raise SharingParameterError(f"rng samples {rng.field!r} but the sharing is over {field!r}")
    # one fresh key per call (from rng, else the OS); block b of coefficients comes from
    # sub-stream b, so blocks are generated and evaluated in parallel and the result does not
    # depend on the number of threads
    call_seed = new_seed() if rng is None else rng.random_bytes(SEED_BYTES)
    points = np.arange(1, n + 1, dtype=np.uint64)
    kernel = get_backend().horner_share_range

    def share_block(block: int) -> None:
        col0 = block * PRG_BLOCK
        width = min(PRG_BLOCK, d - col0)
        coeffs = FieldRNG(call_seed, block=block, field=field).random((t - 1, width))
        kernel(values, coeffs, points, out, field.modulus, np.uint64(col0), np.uint64(0), np.uint64(width))

    map_blocks(share_block, -(-d // PRG_BLOCK))
    return out


def reconstruct(
    shares: np.ndarray,
    points: Sequence[int],
    *,
    t: int | None = None,
    field: PrimeField = GF61,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Recover the secret vector from shares by Lagrange interpolation at 0.

    Args:
        shares: (k, d) uint64 in ``[0, p)``; row ``r`` is the share of party ``points[r]``.
        points: the k distinct non-zero evaluation points (party indices ``1..n``).
        t: the threshold, if known: then ``k >= t`` is required and only the first ``t``
            shares are read and combined. Without it all ``k`` shares are interpolated (correct
            for consistent shares of degree ``< k``). Use
            :func:`~ppbfl.sharing.robust.robust_reconstruct` to detect and correct wrong shares.

    Returns:
        (d,) uint64 secret in ``[0, p)``.
    """
    checked_points = check_points(points, field)
    values = field.elements(shares, "shares", ndim=2, check_range=False)  # checked as it is read
    if values.shape[0] != len(checked_points):
        raise FieldShapeError("shares", values.shape, f"({len(checked_points)}, d): one row per point")
    k = len(checked_points)
    if t is not None:
        t = check_t(t)
        if k < t:
            raise InsufficientSharesError(k, t)
        k = t
    if k == 0:
        raise InsufficientSharesError(0, 1)
    coefficients = lagrange_coefficients(checked_points[:k], field)
    return weighted_rowsum(coefficients, values[:k], field=field, out=out, rows_name="shares")
