"""Opening (publicly reconstructing) shared values, with the parties that lied named."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.errors import FieldShapeError
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.sharing.robust import robust_reconstruct
from ppbfl.sharing.shamir import reconstruct

__all__ = ["Opened", "open_scalar", "open_vector", "party_points"]


def party_points(n: int) -> tuple[int, ...]:
    """The evaluation points ``1..n`` of parties ``1..n``."""
    return tuple(range(1, n + 1))


@dataclass(frozen=True)
class Opened:
    """An opened scalar: ``value`` (int in ``[0, p)``) and ``wrong_points`` (parties whose share was wrong)."""

    value: int
    wrong_points: tuple[int, ...]


def open_scalar(shares: np.ndarray, degree: int, *, field: PrimeField = GF61) -> Opened:
    """Open a shared scalar from all parties' shares, correcting up to ``floor((n - degree - 1) / 2)`` lies.

    ``shares``: (n,) uint64, party ``i + 1``'s share at index ``i``; ``degree``: the sharing
    polynomial's degree (``t - 1`` for a plain sharing, ``2(t - 1)`` for a product sharing).
    """
    values = field.elements(shares, "shares", ndim=1)
    result = robust_reconstruct(values.reshape(-1, 1), party_points(values.shape[0]), degree + 1, field=field)
    return Opened(int(result.secret[0]), result.wrong_points)


def open_vector(shares: np.ndarray, t: int, *, robust: bool = False, field: PrimeField = GF61) -> tuple[np.ndarray, tuple[int, ...]]:
    """Open a shared vector. ``shares``: (n, d) uint64; returns ((d,) uint64, wrong parties).

    With ``robust=False`` only the first ``t`` rows are interpolated (fast, no error detection);
    with ``robust=True`` :func:`~ppbfl.sharing.robust.robust_reconstruct` corrects and names liars.
    """
    values = field.elements(shares, "shares", ndim=2, check_range=robust)
    if values.shape[0] < 1:
        raise FieldShapeError("shares", values.shape, "(n, d) with n >= 1")
    points = party_points(values.shape[0])
    if robust:
        result = robust_reconstruct(values, points, t, field=field)
        return result.secret, result.wrong_points
    return reconstruct(values[:t], points[:t], t=t, field=field), ()
