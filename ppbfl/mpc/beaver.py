"""Beaver squared norms: what each party computes once ``eps = x - a`` is opened.

For a shared ``x`` (length ``d``) and a square triple ``([a], [c = <a, a>])`` dealt by
:func:`~ppbfl.mpc.triples.deal_square_triples`, each party masks its share (``x_j - a_j``,
:func:`~ppbfl.mpc.linear.sub`), ``eps = x - a`` is opened -- a uniformly random vector, because ``a``
is uniform and used once -- and each party finishes locally with :func:`square_from_opened`:

    ``[z] = [c] + 2 <eps, [a]> + <eps, eps>``

(the public constant ``<eps, eps>`` is added to every party's share, which adds it to the secret),
so ``z = <a, a> + 2 <x - a, a> + <x - a, x - a> = <x, x>``. Dot products ``<x, y>`` with
``(a, b, c = <a, b>)`` triples are :func:`ppbfl.mpc.testing.beaver_dot` (simulation only).
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["square_from_opened"]


def square_from_opened(eps: np.ndarray, a: np.ndarray, c: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """Finish Beaver squares: ``z_r = c_r + 2 <eps_r, a_r> + <eps_r, eps_r>`` for every row ``r``.

    ``eps``: (k, d) opened ``x - a``; ``a``: (k, d) shares of the triples' ``a``; ``c``: (k,)
    shares of ``<a, a>``. Rows are either the parties of one triple (same ``eps`` in every row)
    or one party's shares of ``k`` triples. Returns (k,) uint64 shares of ``<x, x>`` (threshold ``t``).
    """
    cross = np.array([ops.dot(e, x, field=field) for e, x in zip(eps, a)], dtype=np.uint64)
    constant = np.array([ops.dot(e, e, field=field) for e in eps], dtype=np.uint64)
    z = ops.add(c, ops.add(cross, cross, field=field), field=field)
    return ops.add(z, constant, field=field)
