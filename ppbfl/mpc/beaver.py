"""Beaver squared norms: what each party computes once ``eps = x - a`` is opened.

For a shared ``x`` (length ``d``) and a square triple ``([a], [c = <a, a>])`` dealt by
:func:`~ppbfl.mpc.triples.deal_square_triples`, each party masks its share (``x_j - a_j``,
:func:`~ppbfl.mpc.linear.sub`), ``eps = x - a`` is opened -- a uniformly random vector, because ``a``
is uniform and used once -- and each party finishes locally with :func:`square_from_opened`:

    ``[z] = [c] + 2 <eps, [a]> + <eps, eps>``

(the public constant ``<eps, eps>`` is added to every party's share, which adds it to the secret),
so ``z = <a, a> + 2 <x - a, a> + <x - a, x - a> = <x, x>``. With the dealer's pair products
``[c_rs] = [<a_r, a_s>]`` of the same triples, the same opened ``eps`` give every inner product of
two shared vectors (:func:`gram_from_opened`, FLAME's Gram matrix):

    ``[<x_r, x_s>] = [c_rs] + <eps_r, [a_s]> + <[a_r], eps_s> + <eps_r, eps_s>``

(degree ``t - 1``, like the squares; nothing more is opened). Dot products ``<x, y>`` with
``(a, b, c = <a, b>)`` triples are :func:`ppbfl.mpc.testing.beaver_dot` (simulation only).
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import expand_seed
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["gram_from_opened", "masked_projections", "square_from_opened"]


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


def gram_from_opened(eps: np.ndarray, a: np.ndarray, pairs: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """One party's shares of ``<x_r, x_s>`` for every pair ``r < s`` of ``k`` Beaver slots.

    ``eps``: (k, d) opened ``x_r - a_r``; ``a``: (k, d) this party's shares of the triples' ``a_r``;
    ``pairs``: (k (k - 1) / 2,) its shares of ``<a_r, a_s>`` (row-major upper triangle, as dealt by
    :func:`~ppbfl.mpc.triples.deal_square_triples` with ``pairs=True``). Returns (k (k - 1) / 2,)
    uint64 shares (threshold ``t``, same order): ``pairs + <eps_r, a_s> + <a_r, eps_s> + <eps_r, eps_s>``,
    two ``k x d`` by ``d x k`` field matmuls.
    """
    k = eps.shape[0]
    if k < 2:
        return np.zeros(0, dtype=np.uint64)
    eps = np.ascontiguousarray(eps, dtype=np.uint64)
    cross = ops.matmul_unchecked(eps, np.ascontiguousarray(np.asarray(a, dtype=np.uint64).T), np.empty((k, k), dtype=np.uint64), field)
    constant = ops.matmul_unchecked(eps, np.ascontiguousarray(eps.T), np.empty((k, k), dtype=np.uint64), field)
    upper = np.triu_indices(k, 1)
    mixed = ops.add(cross[upper], np.ascontiguousarray(cross.T[upper]), field=field)  # <eps_r, a_s> + <eps_s, a_r>
    return ops.add(ops.add(mixed, constant[upper], field=field), np.asarray(pairs, dtype=np.uint64), field=field)


def masked_projections(eps: np.ndarray, proof_eps: np.ndarray, seed: bytes, *, field: PrimeField = GF61) -> np.ndarray:
    """``<eps_r, rho> + <proof_eps_r, rho'>`` for every row ``r`` ((k, d) and (k, K) uint64), with
    ``rho = expand_seed(seed, d)`` and ``rho' = expand_seed(seed, K, stream=1)``: (k,) uint64.

    Linear, so applied to a party's shares of ``eps`` it gives its shares of the projection of the
    opened ``eps``: a check that a relayed ``eps`` is the opening of the parties' shares, sound up
    to ``1/p`` per row when ``seed`` is a hash of the relayed ``eps`` (fixed after it)."""
    out = np.zeros(eps.shape[0], dtype=np.uint64)
    for part, (rows, stream) in enumerate(((eps, 0), (proof_eps, 1))):
        if rows.shape[0] and rows.shape[1]:
            rho = expand_seed(seed, rows.shape[1], stream=stream, field=field)
            dots = ops.row_dots(list(rows), rho, rho, squares=False, field=field, rows_name=("eps", "proof_eps")[part])[0]
            out = ops.add(out, dots, field=field)
    return out
