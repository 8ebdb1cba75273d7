"""Share-consistency check (DESIGN §3): are a device's ``n`` share vectors one degree-``(t-1)`` sharing?

The device shares its update ``g`` ((n, d) shares) and a uniformly random mask scalar ``rho``
((n,) shares, same threshold). After the shares are committed, public random coefficients
``lambda`` ((d,) field elements) are derived from a seed fixed after the commitments
(:func:`challenge_coefficients`), and each edge node ``i`` publishes

    ``s_i = <lambda, [g]_i> + [rho]_i``.

If every column of ``[g]`` and ``[rho]`` lies on a polynomial of degree ``< t``, so does
``s``. If some column does not, the syndrome of ``s`` is a non-zero affine function of
``lambda`` (the mask's own inconsistency is fixed before ``lambda`` is drawn), so it vanishes
with probability at most ``1/p``. The ``n`` published values are a threshold-``t`` sharing of
``<lambda, g> + rho``, and since ``rho`` and the mask polynomial's other coefficients are uniform,
they are uniformly random points of a random degree-``(t-1)`` polynomial: nothing about ``g``
leaks. Each device needs a fresh ``rho`` per check.

Attribution caveat: a failing check means the device's shares *or* some edge node's published
value are wrong; the two are indistinguishable from the values alone. ``suspects`` names the
points whose values disagree with the rest when the others still agree (Reed–Solomon decoding of
``s``); an edge node named for many devices is more likely the liar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.errors import FieldShapeError, ReconstructionError
from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.ops import matmul_unchecked
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.linear import check_shares, dot_public
from ppbfl.mpc.opening import party_points
from ppbfl.sharing.robust import robust_reconstruct
from ppbfl.sharing.shamir import check_points, lagrange_matrix

__all__ = ["CHALLENGE_STREAM", "ConsistencyResult", "challenge_coefficients", "check_consistency", "published_values"]

CHALLENGE_STREAM = 0x6C616D626461  # "lambda": the FieldRNG stream of the consistency coefficients


def challenge_coefficients(seed: bytes, d: int, *, field: PrimeField = GF61) -> np.ndarray:
    """Public coefficients ``lambda``: (d,) uint64 from ``FieldRNG(seed, stream=CHALLENGE_STREAM)``.

    ``seed`` (32 bytes) must be fixed only after every device's shares are committed (e.g. a
    block hash after the commitment deadline): a device that knew ``lambda`` in advance could
    choose its mask to cancel an inconsistency.
    """
    return FieldRNG(seed, stream=CHALLENGE_STREAM, field=field).random(d)


@dataclass(frozen=True)
class ConsistencyResult:
    """Outcome for one device: ``consistent``, the published values ``s`` ((n,) uint64), ``suspects``."""

    consistent: bool
    published: np.ndarray
    suspects: tuple[int, ...]


def published_values(shares: np.ndarray, mask_shares: np.ndarray, lam: np.ndarray, *, field: PrimeField = GF61) -> np.ndarray:
    """What the edge nodes publish: ``s_i = <lambda, g_i> + rho_i``; (n, d), (n,), (d,) -> (n,) uint64."""
    g = check_shares(shares, "shares", field)
    rho = field.elements(mask_shares, "mask_shares", ndim=1)
    if rho.shape[0] != g.shape[0]:
        raise FieldShapeError("mask_shares", rho.shape, f"({g.shape[0]},): one mask share per party")
    return ops.add(dot_public(g, lam, field=field), rho, field=field)


def check_consistency(
    published: np.ndarray, t: int, *, points: tuple[int, ...] | None = None, field: PrimeField = GF61
) -> ConsistencyResult:
    """Are the published values ((k,) uint64, value ``i`` from party ``points[i]``; default the
    parties ``1..k``) on one polynomial of degree ``< t``?

    Syndrome test: interpolate from the first ``t`` values to the other ``k - t`` points and
    compare. With ``k <= t`` every vector is consistent (no redundancy to check).
    """
    s = field.elements(published, "published", ndim=1)
    k = s.shape[0]
    points = party_points(k) if points is None else check_points(points, field, "points")
    if len(points) != k:
        raise FieldShapeError("published", s.shape, f"({len(points)},): one value per point")
    if k <= t:
        return ConsistencyResult(True, s, ())
    predicted = np.empty((k - t, 1), dtype=np.uint64)
    matmul_unchecked(lagrange_matrix(points[:t], points[t:], field), s[:t].reshape(-1, 1), predicted, field)
    if np.array_equal(predicted[:, 0], s[t:]):
        return ConsistencyResult(True, s, ())
    try:
        suspects = robust_reconstruct(s.reshape(-1, 1), points, t, field=field).wrong_points
    except ReconstructionError:
        suspects = ()
    return ConsistencyResult(False, s, suspects)
