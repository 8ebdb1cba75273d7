"""Beaver triples for dot products and squares, with single-use enforcement.

One interface (:class:`TripleSource`), several providers (CrypTen's design): the in-process
:class:`TrustedDealer` here; an OT/HE-based generator or a networked dealer would implement the
same two methods. A dealer learns nothing about the data (triples are independent of it), but it
knows ``a, b``: a dealer colluding with edge nodes breaks privacy, so it must be a separate,
non-colluding party (DESIGN §2).

Triples carry an ``id`` and are **single-use**: a second consumption raises
:class:`~ppbfl.mpc.errors.TripleReuseError` naming the id. Reuse would open ``x - a`` and
``x' - a`` for the same ``a``, revealing ``x - x'``. The consumed ids are recorded in a ledger
shared by every triple of a source (so copies of a triple object are caught too).
"""

from __future__ import annotations

import abc
import itertools
import threading
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import MPCParameterError, TripleReuseError
from ppbfl.sharing.shamir import check_threshold, share

__all__ = ["BeaverTriple", "SquareTriple", "TripleLedger", "TripleSource", "TrustedDealer"]


class TripleLedger:
    """Thread-safe set of consumed triple ids (one per source)."""

    def __init__(self) -> None:
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def consume(self, triple_id: int) -> None:
        """Mark ``triple_id`` consumed; raise :class:`TripleReuseError` if it already was."""
        with self._lock:
            if triple_id in self._used:
                raise TripleReuseError(triple_id)
            self._used.add(triple_id)

    def is_consumed(self, triple_id: int) -> bool:
        """True once ``triple_id`` has been consumed."""
        return triple_id in self._used


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class _SingleUse:
    """Single-use bookkeeping shared by the triple kinds (their ``id`` in their source's ``ledger``)."""

    id: int
    ledger: TripleLedger

    def consume(self) -> None:
        """Mark this triple used; raises :class:`TripleReuseError` (naming the id) the second time."""
        self.ledger.consume(self.id)

    @property
    def consumed(self) -> bool:
        """True once the triple has been consumed."""
        return self.ledger.is_consumed(self.id)


@dataclass(frozen=True)
class BeaverTriple(_SingleUse):
    """Shares of a vector triple ``(a, b, c = <a, b>)`` over ``field``.

    Attributes:
        id: the triple's id (unique within its source).
        t: the sharing threshold.
        a, b: (n, d) uint64 share arrays of uniformly random vectors (read-only).
        c: (n,) uint64 shares of the scalar ``<a, b> mod p`` (read-only).
        field: the prime field.
    """

    id: int
    t: int
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    field: PrimeField = GF61
    ledger: TripleLedger = dataclass_field(default_factory=TripleLedger, repr=False, compare=False)


@dataclass(frozen=True)
class SquareTriple(_SingleUse):
    """Shares of a square triple ``(a, c = <a, a>)``: (n, d) and (n,) uint64, read-only."""

    id: int
    t: int
    a: np.ndarray
    c: np.ndarray
    field: PrimeField = GF61
    ledger: TripleLedger = dataclass_field(default_factory=TripleLedger, repr=False, compare=False)


class TripleSource(abc.ABC):
    """Where Beaver and square triples come from (dealer, OT/HE generator, preprocessing file)."""

    t: int
    n: int
    field: PrimeField

    @abc.abstractmethod
    def beaver_triple(self, d: int) -> BeaverTriple:
        """A fresh triple for one length-``d`` dot product."""

    @abc.abstractmethod
    def square_triple(self, d: int) -> SquareTriple:
        """A fresh triple for one length-``d`` squared norm ``<x, x>``."""


class TrustedDealer(TripleSource):
    """An offline dealer that samples triples with a CSPRNG and Shamir-shares them.

    Args:
        t, n: threshold and number of parties (``1 <= t <= n < p``).
        rng: a :class:`~ppbfl.field.csprng.FieldRNG` over ``field`` (default: a fresh OS-seeded key).
        field: the prime field.
    """

    def __init__(self, t: int, n: int, rng: FieldRNG | None = None, *, field: PrimeField = GF61) -> None:
        self.t, self.n = check_threshold(t, n, field)
        self.field = field
        if rng is not None and rng.field != field:
            raise MPCParameterError(f"rng samples {rng.field!r} but the dealer works over {field!r}")
        self._rng = FieldRNG(field=field) if rng is None else rng
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self.ledger = TripleLedger()

    def _check_d(self, d: int) -> int:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise MPCParameterError(f"d = {d!r}: expected a positive vector length")
        return int(d)

    def _share_scalar(self, c: int) -> np.ndarray:
        return share(np.array([c], dtype=np.uint64), self.t, self.n, field=self.field, rng=self._rng)[:, 0].copy()

    def beaver_triple(self, d: int) -> BeaverTriple:
        """Random ``a, b`` (d,), ``c = <a, b>``, each Shamir-shared; returns a :class:`BeaverTriple`."""
        d = self._check_d(d)
        with self._lock:
            a = self._rng.random(d)
            b = self._rng.random(d)
            c = ops.dot(a, b, field=self.field)
            triple = BeaverTriple(
                next(self._ids), self.t,
                _readonly(share(a, self.t, self.n, field=self.field, rng=self._rng)),
                _readonly(share(b, self.t, self.n, field=self.field, rng=self._rng)),
                _readonly(self._share_scalar(c)), self.field, self.ledger,
            )
        return triple

    def square_triple(self, d: int) -> SquareTriple:
        """Random ``a`` (d,), ``c = <a, a>``, Shamir-shared; returns a :class:`SquareTriple`."""
        d = self._check_d(d)
        with self._lock:
            a = self._rng.random(d)
            c = ops.dot(a, a, field=self.field)
            triple = SquareTriple(
                next(self._ids), self.t,
                _readonly(share(a, self.t, self.n, field=self.field, rng=self._rng)),
                _readonly(self._share_scalar(c)), self.field, self.ledger,
            )
        return triple
