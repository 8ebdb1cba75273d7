"""Square triples for Beaver squared norms, as the dealer party deals them.

The dealer (a separate, non-colluding party, DESIGN §2) samples ``count`` random vectors ``a_r``
of length ``d``, Shamir-shares each ``a_r`` and ``c_r = <a_r, a_r>``, and hands party ``j`` only
its own shares. It learns nothing about the data (triples are independent of it), but it knows
``a``: a dealer colluding with edge nodes breaks privacy. Each edge node spends a triple once
(:func:`~ppbfl.mpc.beaver.square_from_opened`); reuse would open ``x - a`` and ``x' - a`` for the
same ``a``, revealing ``x - x'``.

For FLAME's Gram matrix the dealer also deals the **pair products** ``c_rs = <a_r, a_s>`` of the
same vectors, ``r < s`` (``pairs=True``): with ``eps_r = x_r - a_r`` opened once per slot, every
party then has degree-``(t - 1)`` shares of every ``<x_r, x_s>`` by local operations
(:func:`~ppbfl.mpc.beaver.gram_from_opened`), without a second opening.

The in-process source whose triples keep every party's shares (with single-use ids) is
:class:`ppbfl.mpc.testing.TrustedDealer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import MPCParameterError
from ppbfl.sharing.shamir import check_threshold, share

__all__ = ["SquareTripleShares", "check_length", "deal_square_triples", "pair_products"]


@dataclass(frozen=True)
class SquareTripleShares:
    """One party's shares of ``k`` square triples: ``a`` (k, d) uint64 shares of the random vectors
    ``a_r``, ``c`` (k,) uint64 shares of ``<a_r, a_r> mod p`` (threshold ``t``); ``pairs``
    (k (k - 1) / 2,) uint64 shares of ``<a_r, a_s> mod p`` for ``r < s``, row-major over the upper
    triangle (empty when the dealer was not asked for them)."""

    a: np.ndarray
    c: np.ndarray
    pairs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


def check_length(d: object) -> int:
    """``d`` as a positive int vector length, else :class:`~ppbfl.mpc.errors.MPCParameterError`."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise MPCParameterError(f"d = {d!r}: expected a positive vector length")
    return int(d)


def pair_products(vectors: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """``<v_r, v_s> mod p`` for every pair ``r < s`` of the rows of ``vectors`` ((k, d) uint64 in
    ``[0, p)``), row-major over the upper triangle: (k (k - 1) / 2,) uint64 (one field matmul)."""
    k = vectors.shape[0]
    if k < 2:
        return np.zeros(0, dtype=np.uint64)
    rows = np.ascontiguousarray(vectors, dtype=np.uint64)
    products = ops.matmul_unchecked(rows, np.ascontiguousarray(rows.T), np.empty((k, k), dtype=np.uint64), field)
    return np.ascontiguousarray(products[np.triu_indices(k, 1)])


def deal_square_triples(
    count: int, d: int, t: int, n: int, *, rng: FieldRNG | None = None, field: PrimeField = GF61, pairs: bool = False,
) -> list[SquareTripleShares]:
    """The dealer's work: ``count`` fresh square triples of length ``d`` for a ``(t, n)`` tier.

    Returns ``n`` :class:`SquareTripleShares`, entry ``j - 1`` for party ``j`` ((count, d) and
    (count,) uint64 over ``field``). ``rng``: a FieldRNG over ``field`` (default: an OS-seeded key).
    ``pairs``: also share the pair products ``<a_r, a_s>``, ``r < s`` (:attr:`SquareTripleShares.pairs`,
    (count (count - 1) / 2,) per party: FLAME's Gram matrix in Beaver mode).

    Raises:
        MPCParameterError: ``count < 0``, ``d < 1`` or an ``rng`` over another field;
        SharingParameterError: bad ``(t, n)``.
    """
    t, n = check_threshold(t, n, field)
    d = check_length(d)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise MPCParameterError(f"count = {count!r}: expected an int >= 0")
    if rng is not None and rng.field != field:
        raise MPCParameterError(f"rng samples {rng.field!r} but the triples are over {field!r}")
    rng = FieldRNG(field=field) if rng is None else rng
    a = np.empty((n, count, d), dtype=np.uint64)
    c = np.empty((n, count), dtype=np.uint64)
    vectors = np.empty((count, d), dtype=np.uint64)
    for r in range(count):
        vectors[r] = rng.random(d)
        a[:, r] = share(vectors[r], t, n, field=field, rng=rng)
        square = np.array([ops.dot(vectors[r], vectors[r], field=field)], dtype=np.uint64)
        c[:, r] = share(square, t, n, field=field, rng=rng)[:, 0]
    products = pair_products(vectors, field=field) if pairs else np.zeros(0, dtype=np.uint64)
    shared = share(products, t, n, field=field, rng=rng) if products.size else np.zeros((n, 0), dtype=np.uint64)
    return [SquareTripleShares(a[j], c[j], shared[j]) for j in range(n)]
