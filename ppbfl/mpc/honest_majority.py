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

Per party: :func:`local_products` on its own share rows, plus its
:meth:`~ppbfl.mpc.przs.PartyPRZS.zero_share` for the round's counter; whoever collects the ``n``
masked values opens them with :func:`~ppbfl.mpc.opening.open_scalar` at degree ``2(t - 1)``.
:func:`ppbfl.mpc.testing.hm_dot_open` plays all parties at once (simulation only).
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import HonestMajorityError
from ppbfl.mpc.linear import check_shares
from ppbfl.sharing.shamir import check_threshold

__all__ = ["check_honest_majority", "local_products"]


def check_honest_majority(t: int, n: int, field: PrimeField = GF61) -> tuple[int, int]:
    """Validate ``1 <= t <= n < p`` and ``n >= 2t - 1``; raises :class:`HonestMajorityError`."""
    t, n = check_threshold(t, n, field)
    if n < 2 * t - 1:
        raise HonestMajorityError(t, n)
    return t, n


def local_products(x: np.ndarray, y: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Row-wise product-sums ``z_r = <x_r, y_r> mod p``: ``x, y`` (k, d) uint64, returns (k,) uint64.

    A party runs it on its own shares: row ``r`` is its share of the ``r``-th vector (one row per
    device at an edge node), so ``z_r`` is its point of the degree-``2(t - 1)`` product sharing.
    """
    xs = check_shares(x, "x", field)
    ys = xs if y is x else check_shares(y, "y", field, *xs.shape)
    return np.array([ops.dot(a, b, field=field) for a, b in zip(xs, ys)], dtype=np.uint64)
