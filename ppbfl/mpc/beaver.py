"""Dot products and squared norms on shares with Beaver triples (any ``t <= n``).

For shared ``x, y`` (length ``d``) and a triple ``([a], [b], [c = <a, b>])`` the parties open
``eps = x - a`` and ``delta = y - b`` -- uniformly random vectors, because ``a, b`` are uniform
and used once -- and compute locally

    ``[z] = [c] + <eps, [b]> + <delta, [a]> + <eps, delta>``

(the public constant ``<eps, delta>`` is added to every party's share, which adds it to the
secret). Then ``z = <a, b> + <x - a, b> + <y - b, a> + <x - a, y - b> = <x, y>``.
For a square triple ``([a], [c = <a, a>])``: ``<x, x> = c + 2 <eps, a> + <eps, eps>``.
"""

from __future__ import annotations

import numpy as np

from ppbfl.field import ops
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import TripleShapeError
from ppbfl.mpc.linear import check_shares, dot_public, sub
from ppbfl.mpc.opening import open_vector
from ppbfl.mpc.triples import BeaverTriple, SquareTriple

__all__ = ["BeaverTranscript", "beaver_dot", "beaver_square", "square_from_opened"]


class BeaverTranscript:
    """What a Beaver multiplication opened (for the leakage tests): ``eps`` and ``delta`` (d,) uint64."""

    def __init__(self) -> None:
        self.eps: np.ndarray | None = None
        self.delta: np.ndarray | None = None
        self.wrong_points: tuple[int, ...] = ()


def _check_triple(triple: BeaverTriple | SquareTriple, shape: tuple[int, int], t: int, field: PrimeField) -> None:
    if triple.field != field or triple.t != t or triple.a.shape != shape or triple.c.shape != (shape[0],):
        raise TripleShapeError(
            f"triple {triple.id}: ({triple.a.shape}, t = {triple.t}, {triple.field!r}) does not match "
            f"operands {shape}, t = {t}, {field!r}"
        )


def beaver_dot(
    x: np.ndarray,
    y: np.ndarray,
    triple: BeaverTriple,
    t: int,
    *,
    field: PrimeField = GF61,
    robust: bool = False,
    transcript: BeaverTranscript | None = None,
) -> np.ndarray:
    """Shares of ``<x, y>`` using one Beaver triple (consumed; reuse raises ``TripleReuseError``).

    Args:
        x, y: (n, d) uint64 share arrays (threshold ``t``) over ``field``.
        triple: a fresh :class:`BeaverTriple` with (n, d) ``a, b`` and (n,) ``c``.
        t: the threshold.
        robust: open ``eps, delta`` with robust reconstruction (names lying parties).
        transcript: if given, receives the opened ``eps, delta``.

    Returns:
        (n,) uint64: party ``i + 1``'s share of ``<x, y> mod p`` (threshold ``t``).
    """
    xs = check_shares(x, "x", field)
    ys = check_shares(y, "y", field, *xs.shape)
    _check_triple(triple, xs.shape, t, field)
    triple.consume()
    eps, wrong_e = open_vector(sub(xs, triple.a, field=field), t, robust=robust, field=field)
    delta, wrong_d = open_vector(sub(ys, triple.b, field=field), t, robust=robust, field=field)
    if transcript is not None:
        transcript.eps, transcript.delta = eps, delta
        transcript.wrong_points = tuple(sorted(set(wrong_e) | set(wrong_d)))
    constant = ops.dot(eps, delta, field=field)
    z = ops.add(triple.c, dot_public(triple.b, eps, field=field), field=field)
    z = ops.add(z, dot_public(triple.a, delta, field=field), field=field)
    return ops.add(z, np.full(z.shape, constant, dtype=np.uint64), field=field)


def beaver_square(
    x: np.ndarray,
    triple: SquareTriple,
    t: int,
    *,
    field: PrimeField = GF61,
    robust: bool = False,
    transcript: BeaverTranscript | None = None,
) -> np.ndarray:
    """Shares of ``<x, x>`` using one square triple (consumed; reuse raises ``TripleReuseError``).

    ``x``: (n, d) uint64 shares; returns (n,) uint64 shares (threshold ``t``) of ``<x, x> mod p``.
    Opens only ``eps = x - a`` (uniformly random).
    """
    xs = check_shares(x, "x", field)
    _check_triple(triple, xs.shape, t, field)
    triple.consume()
    eps, wrong = open_vector(sub(xs, triple.a, field=field), t, robust=robust, field=field)
    if transcript is not None:
        transcript.eps, transcript.wrong_points = eps, wrong
    return square_from_opened(np.broadcast_to(eps, triple.a.shape), triple.a, triple.c, field=field)


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
