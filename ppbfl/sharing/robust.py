"""Robust reconstruction: recover the secret and name the parties that sent wrong shares.

With ``k`` shares of a threshold-``t`` sharing, each coordinate's shares form a Reed–Solomon
codeword with minimum distance ``k - t + 1``, so up to ``e = floor((k - t) / 2)`` wrong shares
per coordinate are corrected and more than that (up to ``k - t``) are detected.

Three steps, cheapest first:

1. **Syndrome.** Interpolate from the first ``t`` shares to the other ``k - t`` points (one
   Lagrange matrix product over all coordinates); coordinates whose shares all agree are
   consistent and are reconstructed by ordinary Lagrange interpolation.
2. **Suspects.** A lying edge node usually corrupts many coordinates. The first inconsistent
   coordinate is decoded by Berlekamp–Welch; the parties it names are *suspects*. Every
   inconsistent coordinate whose shares outside the suspects are consistent is decoded
   from those (if at most ``e`` parties are excluded, that codeword is the unique one within
   distance ``e``).
3. **Berlekamp–Welch** on whatever remains, coordinate by coordinate.

Guarantee: with at most ``e`` wrong shares per coordinate the secret is exact and every party
that sent a wrong share is named. With more, :class:`~ppbfl.errors.ReconstructionError` is
raised whenever the shares are not within distance ``e`` of some codeword; as for any code,
parties able to alter more than ``e`` shares of a coordinate can steer it to another
codeword, which is why the threat model bounds the liars by ``e``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.errors import FieldShapeError, InsufficientSharesError, ReconstructionError
from ppbfl.field.ops import matmul_unchecked, weighted_rowsum
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.sharing.shamir import (
    check_points,
    check_t,
    lagrange_coefficients,
    lagrange_matrix,
)

__all__ = ["RobustReconstruction", "robust_reconstruct"]


@dataclass(frozen=True)
class RobustReconstruction:
    """Result of :func:`robust_reconstruct`.

    Attributes:
        secret: (d,) uint64, the decoded secret.
        wrong_points: sorted points (parties) that sent at least one wrong share coordinate.
        wrong_coordinates: number of coordinates in which some share was wrong.
    """

    secret: np.ndarray
    wrong_points: tuple[int, ...]
    wrong_coordinates: int


def _inconsistent(values: np.ndarray, points: tuple[int, ...], t: int, field: PrimeField) -> np.ndarray:
    """(d,) bool: True for the columns of ``values`` (k, d) not on one polynomial of degree ``< t``."""
    k, d = values.shape
    if k == t:
        return np.zeros(d, dtype=bool)
    predicted = np.empty((k - t, d), dtype=np.uint64)
    matmul_unchecked(lagrange_matrix(points[:t], points[t:], field), values[:t], predicted, field)
    return (predicted != values[t:]).any(axis=0)


def robust_reconstruct(
    shares: np.ndarray, points: Sequence[int], t: int, *, field: PrimeField = GF61
) -> RobustReconstruction:
    """Reconstruct a shared vector while correcting and locating wrong shares.

    Args:
        shares: (k, d) uint64 in ``[0, p)``; row ``r`` from party ``points[r]``.
        points: k distinct non-zero evaluation points.
        t: the sharing threshold (``k >= t``).

    Returns:
        :class:`RobustReconstruction` with the secret and the parties that sent wrong shares.

    Raises:
        InsufficientSharesError: ``k < t``.
        ReconstructionError: a coordinate has more wrong shares than ``floor((k - t) / 2)``.
    """
    checked_points = check_points(points, field)
    t = check_t(t)
    values = field.elements(shares, "shares", ndim=2)
    k, d = values.shape
    if k != len(checked_points):
        raise FieldShapeError("shares", values.shape, f"({len(checked_points)}, d): one row per point")
    if k < t:
        raise InsufficientSharesError(k, t, "robust reconstruction")
    secret = weighted_rowsum(lagrange_coefficients(checked_points[:t], field), values[:t], field=field)
    remaining = _inconsistent(values, checked_points, t, field)
    bad_count = int(remaining.sum())
    if bad_count == 0:
        return RobustReconstruction(secret, (), 0)
    e = (k - t) // 2
    wrong = np.zeros(k, dtype=bool)
    xs = np.asarray(checked_points, dtype=np.uint64)

    def decode(which: np.ndarray) -> np.ndarray:
        """Berlekamp–Welch on the columns ``which``; returns their (k, m) error mask or raises."""
        # Numba, imported on this slow path only (devices and clean rounds never need it)
        from ppbfl.sharing.rs_decode import berlekamp_welch_columns

        m = which.size
        out_secret = np.empty(m, np.uint64)
        out_errors = np.zeros((k, m), np.bool_)
        out_ok = np.zeros(m, np.bool_)
        columns = np.ascontiguousarray(values[:, which])
        berlekamp_welch_columns(xs, columns, t, e, field.modulus, out_secret, out_errors, out_ok)
        if not out_ok.all():
            failed = tuple(int(c) for c in which[np.flatnonzero(~out_ok)[:16]])
            raise ReconstructionError(
                f"{int((~out_ok).sum())} coordinate(s) have more than e = {e} wrong shares "
                f"(k = {k}, t = {t}); first: {failed}",
                failed,
            )
        secret[which] = out_secret
        wrong[:] |= out_errors.any(axis=1)
        return out_errors

    first = np.flatnonzero(remaining)[:1]
    suspects = np.flatnonzero(decode(first)[:, 0])
    remaining[first] = False
    if 0 < suspects.size <= e and remaining.any():
        # whole-vector passes without the suspects: no column gathers
        trusted = [i for i in range(k) if i not in suspects]
        trusted_points = tuple(checked_points[i] for i in trusted)
        rows = values[trusted]
        explained = remaining & ~_inconsistent(rows, trusted_points, t, field)
        decoded = weighted_rowsum(lagrange_coefficients(trusted_points[:t], field), rows[:t], field=field)
        secret[explained] = decoded[explained]
        suspect_points = tuple(checked_points[i] for i in suspects)
        predicted = np.empty((suspects.size, d), np.uint64)
        matmul_unchecked(lagrange_matrix(trusted_points[:t], suspect_points, field), rows[:t], predicted, field)
        wrong[suspects] |= ((predicted != values[suspects]) & explained).any(axis=1)
        remaining &= ~explained
    if remaining.any():
        decode(np.flatnonzero(remaining))
    wrong_points = tuple(sorted(checked_points[i] for i in np.flatnonzero(wrong)))
    return RobustReconstruction(secret, wrong_points, bad_count)
