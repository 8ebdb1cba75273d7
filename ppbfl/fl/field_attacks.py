"""Attacks below the float level: a device that knows the protocol crafts field elements.

:func:`out_of_range_shift` is the attack of issue 13 (input validity on shares). The secure
cosine defence opens ``<g, r>`` and ``||g||^2`` **modulo p**. A device may share any field vector,
so it can add a perturbation ``delta`` with huge entries, chosen so that both opened scalars are
exactly those of an honest-looking update ``g``:

    <g + delta, r> = <g, r>   and   ||g + delta||^2 = ||g||^2   (mod p)

It passes every check that looks only at the opened scalars (the cosine, the norm clip,
Cauchy-Schwarz, the sign of the norm) with the honest update's weight, while its contribution
to the aggregate carries entries of order ``p / 2`` (decoded: up to ``~2^60 / 2^(2f)``). Only a
check on the shares themselves (a range or norm proof) stops it.

The construction: ``delta`` is non-zero on three coordinates ``a, b, c`` with ``delta_a = X``
(the chosen magnitude); the linear condition fixes ``delta_b`` from ``delta_c``, and the norm
condition is then a quadratic in ``delta_c`` over ``GF(p)``, solved with a modular square root
(``p = 3 mod 4``); coordinates (then ``X + 1, X + 2, ...``) are retried until the discriminant
is a square (each try succeeds about half the time).

In the experiment grid (attack ``out_of_range``, :class:`ppbfl.fl.attacks.OutOfRange`) the
malicious devices build their honest-looking ``g`` from their trained update and know the public
reference:

* against the secure rule they are :class:`OutOfRangeDevice` clients that share the crafted field
  vector through the protocol (and prove with their honest update's projections, the attacker's
  best move: its real projections are far out of the range);
* the plaintext rules receive :func:`effective_update`, the decoded vector the same device
  effectively contributes (``centred(g + delta) / 2^f``): what an aggregator that computed on
  these field elements without a range check would add, in floats, where no modular trick hides
  it. The codec is the secure rule's for the cell (same ``d``, ``m`` and ``max_abs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from ppbfl.defense.submission import codec_for_length
from ppbfl.defense.validity import centred
from ppbfl.errors import FieldShapeError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.protocol.device import Device
from ppbfl.sharing.seeded import CompressedShares, share_compressed

__all__ = ["FieldAttackRound", "OutOfRangeDevice", "craft", "effective_update", "out_of_range_shift"]


_CANDIDATES = 8


def _sqrt_mod(x: int, p: int) -> int | None:
    """A square root of ``x`` modulo a prime ``p = 3 mod 4``, or None if ``x`` is not a square."""
    root = pow(x, (p + 1) // 4, p)
    return root if root * root % p == x % p else None


def out_of_range_shift(
    g: np.ndarray, r: np.ndarray, *, magnitude: int = 1 << 50, field: PrimeField = GF61, start: int = 0,
    max_tries: int = 4096,
) -> np.ndarray:
    """``g + delta`` (uint64 (d,)) with the same ``<., r>`` and ``||.||^2`` as ``g`` modulo ``p``.

    Args:
        g: (d,) uint64 field elements (an honest-looking encoded update), d >= 3.
        r: (d,) uint64 encoded public reference.
        magnitude: ``delta_a`` (as a field element; the smallest of ``magnitude, magnitude + 1, ...``
            that gives a solution).
        field: the prime field (``p = 3 mod 4``).
        start: first coordinate tried for ``a``.
        max_tries: coordinate triples tried before giving up (for each ``a``, the first 8 candidates
            for ``b`` and ``c``; each try succeeds about half the time on generic vectors, while
            degenerate ones, e.g. every entry equal, fail for whole families of triples).

    Raises:
        FieldShapeError: ``g`` and ``r`` are not both (d,) with d >= 3.
        PPBFLError: no solution (``r`` has fewer than two non-zero entries, ``p`` is not 3 mod 4, or
            none within ``max_tries``).
    """
    p = field.p
    g = np.asarray(g, dtype=np.uint64)
    r = np.asarray(r, dtype=np.uint64)
    if g.ndim != 1 or r.shape != g.shape or g.size < 3:
        raise FieldShapeError("g, r", g.shape, "two (d,) vectors with d >= 3")
    if p % 4 != 3:
        raise PPBFLError(f"out_of_range_shift needs p = 3 mod 4, got p = {p}")
    d = g.size
    gi = [int(v) for v in g]
    ri = [int(v) for v in r]
    nonzero = [b for b in range(d) if ri[b] != 0]
    if not nonzero:
        raise PPBFLError("out_of_range_shift: no solution (the reference needs two non-zero entries)")
    tries = 0
    for k in range(64):
        x = (magnitude + k) % p
        for offset in range(d):
            a = (start + offset) % d
            for b in islice((b for b in nonzero if b != a), _CANDIDATES):
                inv_rb = pow(ri[b], p - 2, p)
                alpha = -ri[a] * x * inv_rb % p
                for c in islice((c for c in range(d) if c not in (a, b)), _CANDIDATES):
                    tries += 1
                    if tries > max_tries:
                        raise PPBFLError(f"out_of_range_shift: no solution in {max_tries} tries")
                    beta = -ri[c] * inv_rb % p
                    qa = (1 + beta * beta) % p
                    qb = 2 * (alpha * beta + gi[b] * beta + gi[c]) % p
                    qc = (2 * gi[a] * x + x * x + 2 * gi[b] * alpha + alpha * alpha) % p
                    if qa == 0:
                        if qb == 0:
                            continue
                        z = -qc * pow(qb, p - 2, p) % p
                    else:
                        root = _sqrt_mod((qb * qb - 4 * qa * qc) % p, p)
                        if root is None:
                            continue
                        z = (-qb + root) * pow(2 * qa, p - 2, p) % p
                    y = (alpha + beta * z) % p
                    out = g.copy()
                    for index, delta in ((a, x), (b, y), (c, z)):
                        out[index] = np.uint64((gi[index] + delta) % p)
                    return out
    raise PPBFLError("out_of_range_shift: no solution (the reference needs two non-zero entries)")


def craft(update: np.ndarray, reference: np.ndarray, codec: FixedPointCodec, *, magnitude: int = 1 << 50) -> np.ndarray:
    """The field vector an ``out_of_range`` device shares: its float (d,) ``update`` encoded (clipped
    into the codec's no-wrap bound for ``d``, so it looks honest), shifted by :func:`out_of_range_shift`
    against the encoded float (d,) ``reference``. Returns (d,) uint64.

    Raises:
        FieldShapeError: the shapes differ or d < 3; PPBFLError: no shift exists (see :func:`out_of_range_shift`).
    """
    values = np.asarray(update, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if values.ndim != 1 or ref.shape != values.shape:
        raise FieldShapeError("update, reference", values.shape, f"two (d,) vectors, got {values.shape} and {ref.shape}")
    safe = codec_for_length(codec, values.size)
    bound = float(safe.max_abs or 0.0)
    # what an attacker shares looks honest whatever its training gave: finite, inside the bound
    g = safe.encode(np.clip(np.nan_to_num(values, nan=0.0), -bound, bound))
    r = safe.encode(np.clip(np.nan_to_num(ref, nan=0.0), -bound, bound))
    return out_of_range_shift(g, r, magnitude=magnitude, field=codec.field)


def effective_update(update: np.ndarray, reference: np.ndarray, codec: FixedPointCodec, *, magnitude: int = 1 << 50) -> np.ndarray:
    """The plaintext analogue of :func:`craft`: the decoded (d,) float64 vector ``centred(craft) / 2^f``
    the device contributes when its field elements are taken at face value; the update itself when
    no shift exists (e.g. the reference is 0 or not finite once a model has diverged: the attacker
    then has nothing to hide and sends what it trained)."""
    try:
        crafted = craft(update, reference, codec, magnitude=magnitude)
    except PPBFLError:
        return np.asarray(update, dtype=np.float64)
    return centred(crafted, codec.field.p).astype(np.float64) / codec.scale


@dataclass
class FieldAttackRound:
    """What the simulated ``out_of_range`` devices know in the current round: the public float (d,)
    ``reference`` (set by the secure rule before each round) and the attack's ``magnitude``."""

    magnitude: int = 1 << 50
    reference: np.ndarray | None = None


class OutOfRangeDevice(Device):
    """A protocol client that shares :func:`craft` of its update instead of the update. Its proof is
    built from its honest encoded update (kept by :meth:`Device.share`), so the edge nodes see a
    well-formed proof of the wrong vector and reject it "out of range".

    Built as ``OutOfRangeDevice(index, t, n, codec, knowledge=..., **device_kwargs)``.
    """

    def __init__(self, *args: Any, knowledge: FieldAttackRound, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.knowledge = knowledge

    def share(self, round: int, update: np.ndarray) -> tuple[CompressedShares, np.ndarray]:
        """Share the crafted field vector (with the mask an honest device makes), or the honest
        sharing when no shift exists for the round's reference; see :meth:`Device.share`.

        Raises:
            PPBFLError: the round's reference is not set.
        """
        if self.knowledge.reference is None:
            raise PPBFLError(f"device {self.index}: the out_of_range attack needs the round's reference")
        sharing, mask = super().share(round, update)
        try:
            crafted = craft(update, self.knowledge.reference, self.codec, magnitude=self.knowledge.magnitude)
        except PPBFLError:  # no shift exists for this reference: behave as the honest device would
            return sharing, mask
        return share_compressed(crafted, self.t, self.n, stream=round, field=self.codec.field), mask
