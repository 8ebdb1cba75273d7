"""Seed-compressed Shamir sharing: ``t - 1`` share vectors replaced by 32-byte seeds.

A degree-``(t-1)`` polynomial is fixed by ``t`` values. Instead of drawing random
coefficients, the dealer draws the shares of ``t - 1`` chosen parties (the *seeded points*)
as PRG outputs of fresh 32-byte seeds, and the secret is the value at 0; the shares of the
other ``n - t + 1`` parties (the *dense points*) follow by Lagrange interpolation. The
seeded shares are uniform and independent of the secret, exactly as in ordinary Shamir
sharing, so privacy is unchanged, while the dealer uploads ``n - t + 1`` vectors and
``t - 1`` seeds instead of ``n`` vectors. Each seeded party expands its seed locally with
:func:`~ppbfl.field.csprng.expand_seed`; the result is bit-identical to what the dealer used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.errors import EvaluationPointError, FieldShapeError
from ppbfl.field.backend import get_backend
from ppbfl.field.csprng import PRG_BLOCK, FieldRNG, check_seed, expand_seed, new_seed
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.field.threads import map_blocks
from ppbfl.sharing.shamir import check_points, check_threshold, lagrange_matrix

__all__ = ["CompressedShares", "share_compressed"]


@dataclass(frozen=True)
class CompressedShares:
    """A seed-compressed Shamir sharing of a ``d``-vector among parties ``1..n``.

    Attributes:
        t, n: threshold and number of parties.
        dense_points: the ``n - t + 1`` parties whose share vectors are explicit.
        dense: (n - t + 1, d) uint64: ``dense[r]`` is the share of ``dense_points[r]``.
        seeds: seeded party -> 32-byte seed (``t - 1`` entries).
        stream: PRG stream id used for every seed (domain separation, e.g. the round).
        field: the prime field.
    """

    t: int
    n: int
    dense_points: tuple[int, ...]
    dense: np.ndarray
    seeds: dict[int, bytes]
    stream: int
    field: PrimeField

    @property
    def length(self) -> int:
        """Vector length ``d``."""
        return int(self.dense.shape[1])

    def share_for(self, point: int) -> np.ndarray:
        """Share vector of party ``point``: (d,) uint64, expanding its seed if it is seeded."""
        if point in self.seeds:
            return expand_seed(self.seeds[point], self.length, stream=self.stream, field=self.field)
        if point not in self.dense_points:
            raise EvaluationPointError(f"point {point} is not a party of this sharing (1..{self.n})")
        return self.dense[self.dense_points.index(point)]

    def expand(self) -> np.ndarray:
        """All ``n`` share vectors: (n, d) uint64, row ``i - 1`` for party ``i``."""
        return np.stack([self.share_for(i) for i in range(1, self.n + 1)])


def share_compressed(
    secret: np.ndarray,
    t: int,
    n: int,
    *,
    seeded_points: Sequence[int] | None = None,
    seeds: Sequence[bytes] | None = None,
    stream: int = 0,
    field: PrimeField = GF61,
) -> CompressedShares:
    """Shamir-share ``secret`` with ``t - 1`` of the ``n`` share vectors derived from seeds.

    Args:
        secret: (d,) uint64 in ``[0, p)``.
        t, n: threshold and number of parties (``1 <= t <= n < p``).
        seeded_points: the ``t - 1`` parties that receive a seed (default: ``n-t+2 .. n``).
        seeds: their 32-byte seeds (default: fresh from the OS CSPRNG). Pass seeds only for
            reproducible tests; reusing a seed with the same stream repeats the randomness.
        stream: PRG stream id (e.g. the round number).

    Returns:
        :class:`CompressedShares`; its :meth:`~CompressedShares.expand` is a valid
        ``(t, n)`` Shamir sharing of ``secret``.
    """
    t, n = check_threshold(t, n, field)
    values = field.elements(secret, "secret", ndim=1)
    d = values.shape[0]
    if seeded_points is None:
        seeded = tuple(range(n - t + 2, n + 1))
    else:
        seeded = check_points(seeded_points, field, "seeded_points")
        if len(seeded) != t - 1 or not all(1 <= x <= n for x in seeded):
            raise EvaluationPointError(
                f"seeded_points {seeded}: expected {t - 1} distinct parties in 1..{n}"
            )
    if seeds is None:
        seed_list = [new_seed() for _ in seeded]
    else:
        seed_list = list(seeds)
        if len(seed_list) != len(seeded):
            raise FieldShapeError("seeds", (len(seed_list),), f"({len(seeded)},): one seed per seeded point")
    dense_points = tuple(x for x in range(1, n + 1) if x not in seeded)
    # rows: the secret (value at 0) followed by the seeded parties' PRG shares
    matrix = lagrange_matrix((0,) + seeded, dense_points, field)
    for s in seed_list:
        check_seed(s)
    dense = np.empty((len(dense_points), d), dtype=np.uint64)
    kernel = get_backend().matmul_range

    def dense_block(block: int) -> None:
        col0 = block * PRG_BLOCK
        width = min(PRG_BLOCK, d - col0)
        rows = np.empty((t, width), dtype=np.uint64)
        rows[0] = values[col0 : col0 + width]
        for r, seed in enumerate(seed_list, start=1):
            FieldRNG(seed, stream=stream, block=block, field=field).fill(rows[r])
        target = np.empty((len(dense_points), width), dtype=np.uint64)
        kernel(matrix, rows, target, field.modulus, np.uint64(0), np.uint64(width))
        dense[:, col0 : col0 + width] = target

    map_blocks(dense_block, -(-d // PRG_BLOCK))
    return CompressedShares(t, n, dense_points, dense, {x: bytes(s) for x, s in zip(seeded, seed_list)}, stream, field)
