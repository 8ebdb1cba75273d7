"""FLAME's Gaussian noise on shares: a pseudorandom secret sharing (CDI) of a Gaussian vector.

For every set ``A`` of ``n - t + 1`` edge nodes with PRZS key ``k_A`` (:mod:`ppbfl.mpc.przs`), every
member derives the same Gaussian vector ``e_A ~ N(0, std^2 / C(n, t - 1) I)`` from
``FieldRNG(k_A, stream=counter)`` (Box--Muller on uniform field elements, each sample truncated at
:data:`TRUNCATE` standard deviations so the encoded value has a public bound) and node ``j`` adds
``enc(scale * e_A) f_A(j)`` to its share; ``f_A`` is the degree-``(t - 1)`` polynomial with
``f_A(0) = 1`` that vanishes on the ``t - 1`` nodes outside ``A``. Summed over ``A`` this is a
degree-``(t - 1)`` sharing of ``enc(scale * e)`` with ``e = sum_A e_A ~ N(0, std^2 I)`` (up to the
truncation and rounding): no message is needed, and any ``t`` shares reconstruct it.

Who knows ``e``: a set's members know ``e_A``; a coalition ``C`` of fewer than ``t`` nodes misses
every ``e_A`` with ``A`` disjoint from ``C`` (there is at least one), whose sum has variance
``std^2 C(n - |C|, n - t + 1) / C(n, t - 1)``. Whoever generated the keys knows ``e``: sound only
with member-generated set keys (docs/flame.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.prime_field import PrimeField
from ppbfl.mpc.przs import f_A

__all__ = ["TRUNCATE", "gaussian_from_key", "noise_bound", "noise_share", "set_count"]

TRUNCATE = 8.0
"""Each set's samples are clipped to ``+-TRUNCATE`` of its standard deviation (mass beyond: 1.2e-15)."""


def set_count(t: int, n: int) -> int:
    """Number of key sets: ``C(n, t - 1)`` (sets of ``n - t + 1`` nodes)."""
    return math.comb(n, t - 1)


def noise_bound(t: int, n: int, std: float, scale: float) -> int:
    """The largest ``|rint(scale * e)|`` :func:`noise_share` can share (an exact public bound)."""
    return set_count(t, n) * (math.ceil(TRUNCATE * std / math.sqrt(set_count(t, n)) * scale) + 1)


def gaussian_from_key(key: bytes, counter: int, d: int, field: PrimeField) -> np.ndarray:
    """``d`` standard normal float64 samples from ``FieldRNG(key, stream=counter)`` (Box--Muller on
    ``(x + 1/2) / p`` of ``2d`` uniform field elements), truncated at ``+-TRUNCATE``: (d,) float64."""
    x = FieldRNG(key, stream=counter, block=0, field=field).random(2 * d).astype(np.float64)
    u1 = (x[:d] + 0.5) / field.p
    u2 = (x[d:] + 0.5) / field.p
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    return np.clip(z, -TRUNCATE, TRUNCATE)


def noise_share(
    party: int, t: int, n: int, keys: Mapping[frozenset[int], bytes], counter: int, d: int, std: float, scale: float,
    field: PrimeField,
) -> np.ndarray:
    """Node ``party``'s share ((d,) uint64) of a degree-``(t - 1)`` sharing of ``rint(scale * e)``,
    ``e ~ N(0, std^2 I)`` (see the module docstring); ``keys``: its PRZS keys (set -> key)."""
    per_set = std / math.sqrt(set_count(t, n))
    total = np.zeros(d, dtype=np.uint64)
    for members, key in sorted(keys.items(), key=lambda item: sorted(item[0])):
        signed = np.rint(gaussian_from_key(key, counter, d, field) * per_set * scale).astype(np.int64)
        encoded = (signed % field.p).astype(np.uint64)  # Python-style modulo: negatives to p - |v|
        weight = f_A(members, n, party, field)
        total = ops.add(total, ops.scalar_mul(encoded, weight, field=field), field=field)
    return total
