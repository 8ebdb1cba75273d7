"""Dot products on shares with an honest majority (``n >= 2t - 1``), no dealer.

Each party ``i`` computes its local product-sum ``z_i = sum_j x_ij y_ij``: the points of the
product polynomial ``sum_j f_j(X) g_j(X)`` of degree ``2(t - 1)``, whose value at 0 is ``<x, y>``.
These points are *not* safe to publish (the product of two random polynomials is not a random
polynomial), so each party adds its share of a fresh pseudorandom sharing of zero of degree
``2(t - 1)`` (:mod:`ppbfl.mpc.przs`); the sum is a uniformly re-randomised degree-``2(t - 1)``
sharing of ``<x, y>`` (pseudorandomly, for any ``t - 1`` parties), and it is opened by Lagrange
interpolation from ``2t - 1`` points (all ``n`` are used, correcting up to
``floor((n - 2t + 1) / 2)`` wrong values and naming their senders).

Communication: one field element per party per dot product, whatever ``d`` is. The output is
an opened (public) scalar, not a sharing: this is the "open one scalar" step of DESIGN §4.3.
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import HonestMajorityError, MPCParameterError
from ppbfl.mpc.linear import check_shares
from ppbfl.mpc.opening import Opened, open_scalar
from ppbfl.mpc.przs import ZeroSharer
from ppbfl.sharing.shamir import check_threshold

__all__ = ["HMTranscript", "check_honest_majority", "hm_dot_open", "hm_square_open", "local_products"]


class HMTranscript:
    """What an honest-majority dot product published: ``masked`` (n,) uint64, one value per party."""

    def __init__(self) -> None:
        self.masked: np.ndarray | None = None


def check_honest_majority(t: int, n: int, field: PrimeField = GF61) -> tuple[int, int]:
    """Validate ``1 <= t <= n < p`` and ``n >= 2t - 1``; raises :class:`HonestMajorityError`."""
    t, n = check_threshold(t, n, field)
    if n < 2 * t - 1:
        raise HonestMajorityError(t, n)
    return t, n


def local_products(x: np.ndarray, y: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Each party's local product-sum ``z_i = <x_i, y_i> mod p``. ``x, y``: (n, d); returns (n,) uint64."""
    xs = check_shares(x, "x", field)
    ys = xs if y is x else check_shares(y, "y", field, *xs.shape)
    return np.array([ops.dot(a, b, field=field) for a, b in zip(xs, ys)], dtype=np.uint64)


def hm_dot_open(
    x: np.ndarray,
    y: np.ndarray,
    t: int,
    zero: ZeroSharer,
    *,
    field: PrimeField = GF61,
    transcript: HMTranscript | None = None,
) -> Opened:
    """Open ``<x, y>`` from threshold-``t`` sharings ``x, y`` ((n, d) uint64) with an honest majority.

    ``zero``: the parties' PRZS states (same ``t, n, field``), consuming one fresh counter.
    Returns :class:`~ppbfl.mpc.opening.Opened` (``value`` in ``[0, p)``, ``wrong_points``).

    Raises:
        HonestMajorityError: ``n < 2t - 1``.
    """
    xs = check_shares(x, "x", field)
    t, n = check_honest_majority(t, xs.shape[0], field)
    if (zero.t, zero.n, zero.field) != (t, n, field):
        raise MPCParameterError(f"zero sharer is for (t={zero.t}, n={zero.n}, {zero.field!r}), not (t={t}, n={n}, {field!r})")
    z = local_products(xs, y if y is not x else xs, field=field)
    masked = ops.add(z, zero.next(1)[:, 0], field=field)
    if transcript is not None:
        transcript.masked = masked
    return open_scalar(masked, 2 * (t - 1), field=field)


def hm_square_open(
    x: np.ndarray, t: int, zero: ZeroSharer, *, field: PrimeField = GF61, transcript: HMTranscript | None = None
) -> Opened:
    """Open ``<x, x>`` (a squared norm); ``x``: (n, d) uint64 shares. See :func:`hm_dot_open`."""
    return hm_dot_open(x, x, t, zero, field=field, transcript=transcript)
