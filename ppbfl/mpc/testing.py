"""Simulation and test helpers: every party's shares in one process.

Nothing here is what a party runs. Each helper holds all ``n`` parties' shares at once as an
``(n, d)`` array (row ``i - 1`` = party ``i``) and plays every party, so the tests, the benchmarks
and the plaintext-side experiments can run an MPC step in one call:

* :class:`TrustedDealer` -- an in-process :class:`TripleSource` whose triples hold every party's
  shares, with single-use ids (:class:`BeaverTriple`, :class:`SquareTriple`, :class:`TripleLedger`);
* :func:`beaver_dot` / :func:`beaver_square` -- a Beaver multiplication, opening ``eps, delta``;
* :class:`ZeroSharer` -- all parties' :class:`~ppbfl.mpc.przs.PartyPRZS` states with a counter;
* :func:`hm_dot_open` / :func:`hm_square_open` -- an opened honest-majority dot product;
* :class:`SecureDot` / :func:`secure_dot` -- either mode behind one interface.

A deployment runs the per-party API of :mod:`ppbfl.mpc` instead (each edge node on its own share:
:func:`~ppbfl.mpc.honest_majority.local_products` plus its
:meth:`~ppbfl.mpc.przs.PartyPRZS.zero_share`, :func:`~ppbfl.mpc.beaver.square_from_opened` on the
triples :func:`~ppbfl.mpc.triples.deal_square_triples` dealt it), as :mod:`ppbfl.protocol` does.
All arrays are uint64 elements of ``field`` (default GF(2^61 - 1)).
"""

from __future__ import annotations

import abc
import itertools
import threading
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Literal

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.beaver import square_from_opened
from ppbfl.mpc.errors import MPCParameterError, TripleReuseError, TripleShapeError
from ppbfl.mpc.honest_majority import check_honest_majority, local_products
from ppbfl.mpc.linear import check_shares, dot_public, sub
from ppbfl.mpc.opening import Opened, open_scalar, open_vector
from ppbfl.mpc.przs import PRZSKeys
from ppbfl.mpc.triples import check_length, deal_square_triples
from ppbfl.sharing.shamir import check_threshold, share

__all__ = [
    "BeaverTranscript",
    "BeaverTriple",
    "DotMode",
    "HMTranscript",
    "SecureDot",
    "SquareTriple",
    "TripleLedger",
    "TripleSource",
    "TrustedDealer",
    "ZeroSharer",
    "beaver_dot",
    "beaver_square",
    "hm_dot_open",
    "hm_square_open",
    "secure_dot",
]

DotMode = Literal["honest_majority", "beaver"]


# --- triples holding every party's shares -------------------------------------------------------


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
    """Single-use bookkeeping shared by the triple kinds (their ``id`` in their source's ``ledger``).

    Reuse would open ``x - a`` and ``x' - a`` for the same ``a``, revealing ``x - x'``; the ledger
    is shared by every triple of a source, so copies of a triple object are caught too.
    """

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
    """Every party's shares of a vector triple ``(a, b, c = <a, b>)`` over ``field``.

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
    """Every party's shares of a square triple ``(a, c = <a, a>)``: (n, d) and (n,) uint64, read-only."""

    id: int
    t: int
    a: np.ndarray
    c: np.ndarray
    field: PrimeField = GF61
    ledger: TripleLedger = dataclass_field(default_factory=TripleLedger, repr=False, compare=False)


class TripleSource(abc.ABC):
    """Where the simulation's Beaver and square triples come from (CrypTen's provider interface)."""

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
    """An in-process dealer: samples triples with a CSPRNG and Shamir-shares them, keeping every share.

    The square triples are those of :func:`~ppbfl.mpc.triples.deal_square_triples` (the dealer
    party's computation), gathered into one (n, d) array. A dealer learns nothing about the data,
    but it knows ``a, b``: in a deployment it is a separate, non-colluding party (DESIGN §2).

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

    def beaver_triple(self, d: int) -> BeaverTriple:
        """Random ``a, b`` (d,), ``c = <a, b>``, each Shamir-shared; returns a :class:`BeaverTriple`."""
        d = check_length(d)
        f = self.field
        with self._lock:
            a = self._rng.random(d)
            b = self._rng.random(d)
            c = np.array([ops.dot(a, b, field=f)], dtype=np.uint64)
            return BeaverTriple(
                next(self._ids), self.t,
                _readonly(share(a, self.t, self.n, field=f, rng=self._rng)),
                _readonly(share(b, self.t, self.n, field=f, rng=self._rng)),
                _readonly(share(c, self.t, self.n, field=f, rng=self._rng)[:, 0].copy()), f, self.ledger,
            )

    def square_triple(self, d: int) -> SquareTriple:
        """Random ``a`` (d,), ``c = <a, a>``, Shamir-shared; returns a :class:`SquareTriple`."""
        with self._lock:
            dealt = deal_square_triples(1, d, self.t, self.n, rng=self._rng, field=self.field)
            return SquareTriple(
                next(self._ids), self.t,
                _readonly(np.stack([party.a[0] for party in dealt])),
                _readonly(np.array([party.c[0] for party in dealt], dtype=np.uint64)), self.field, self.ledger,
            )


# --- Beaver multiplication by all parties at once ----------------------------------------------


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

    The parties open ``eps = x - a`` and ``delta = y - b`` (uniform, since ``a, b`` are uniform and
    used once) and compute ``[z] = [c] + <eps, [b]> + <delta, [a]> + <eps, delta>``, which is
    ``<x, y>``.

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
    Opens only ``eps = x - a`` (uniformly random); every party then runs
    :func:`~ppbfl.mpc.beaver.square_from_opened`.
    """
    xs = check_shares(x, "x", field)
    _check_triple(triple, xs.shape, t, field)
    triple.consume()
    eps, wrong = open_vector(sub(xs, triple.a, field=field), t, robust=robust, field=field)
    if transcript is not None:
        transcript.eps, transcript.wrong_points = eps, wrong
    return square_from_opened(np.broadcast_to(eps, triple.a.shape), triple.a, triple.c, field=field)


# --- honest-majority dot products by all parties at once ---------------------------------------


class ZeroSharer:
    """All ``n`` parties' PRZS states in one process, with an automatic counter.

    ``next(count)`` returns (n, count) uint64: row ``i - 1`` is party ``i``'s share, each column a
    fresh pseudorandom sharing of 0 of degree ``2(t - 1)``.
    """

    def __init__(self, keys: PRZSKeys, start: int = 0) -> None:
        self.t, self.n, self.field = keys.t, keys.n, keys.field
        self.parties = [keys.for_party(i) for i in range(1, keys.n + 1)]
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    @classmethod
    def setup(cls, t: int, n: int, *, field: PrimeField = GF61) -> ZeroSharer:
        """Fresh keys (:meth:`PRZSKeys.setup`) and counter 0."""
        return cls(PRZSKeys.setup(t, n, field=field))

    def at(self, counter: int, count: int = 1) -> np.ndarray:
        """Every party's shares for an explicit ``counter``: (n, count) uint64 (counter reuse raises)."""
        return np.stack([party.zero_share(counter, count) for party in self.parties])

    def next(self, count: int = 1) -> np.ndarray:
        """Every party's shares for the next unused counter: (n, count) uint64."""
        with self._lock:
            counter = next(self._counter)
        return self.at(counter, count)


class HMTranscript:
    """What an honest-majority dot product published: ``masked`` (n,) uint64, one value per party."""

    def __init__(self) -> None:
        self.masked: np.ndarray | None = None


def hm_dot_open(
    x: np.ndarray,
    y: np.ndarray,
    t: int,
    zero: ZeroSharer,
    *,
    field: PrimeField = GF61,
    transcript: HMTranscript | None = None,
) -> Opened:
    """Open ``<x, y>`` from threshold-``t`` sharings ``x, y`` ((n, d) uint64) with an honest majority.

    Every party adds a fresh PRZS zero share to its local product-sum
    (:func:`~ppbfl.mpc.honest_majority.local_products`); the degree-``2(t - 1)`` sharing is opened
    from all ``n`` values, correcting up to ``floor((n - 2t + 1) / 2)`` wrong ones.
    ``zero``: the parties' PRZS states (same ``t, n, field``), consuming one fresh counter.
    Returns :class:`~ppbfl.mpc.opening.Opened` (``value`` in ``[0, p)``, ``wrong_points``).

    Raises:
        HonestMajorityError: ``n < 2t - 1``.
    """
    xs = check_shares(x, "x", field)
    t, n = check_honest_majority(t, xs.shape[0], field)
    if (zero.t, zero.n, zero.field) != (t, n, field):
        raise MPCParameterError(f"zero sharer is for (t={zero.t}, n={zero.n}, {zero.field!r}), not (t={t}, n={n}, {field!r})")
    z = local_products(xs, y if y is not x else xs, field=field)
    masked = ops.add(z, zero.next(1)[:, 0], field=field)
    if transcript is not None:
        transcript.masked = masked
    return open_scalar(masked, 2 * (t - 1), field=field)


def hm_square_open(
    x: np.ndarray, t: int, zero: ZeroSharer, *, field: PrimeField = GF61, transcript: HMTranscript | None = None
) -> Opened:
    """Open ``<x, x>`` (a squared norm); ``x``: (n, d) uint64 shares. See :func:`hm_dot_open`."""
    return hm_dot_open(x, x, t, zero, field=field, transcript=transcript)


# --- either mode behind one interface ----------------------------------------------------------


def _merge(opened: Opened, transcript: BeaverTranscript) -> Opened:
    """``opened`` with the parties caught lying while opening ``eps, delta`` added."""
    return Opened(opened.value, tuple(sorted(set(opened.wrong_points) | set(transcript.wrong_points))))


class SecureDot:
    """Opened dot products ``<x, y>`` / squared norms ``<x, x>`` of threshold-``t`` sharings.

    Args:
        t, n: threshold and number of parties.
        mode: ``"honest_majority"`` (``n >= 2t - 1``; PRZS keys from :meth:`ZeroSharer.setup` unless
            ``zero`` is given) or ``"beaver"`` (any ``t <= n``; triples from ``triple_source``, by
            default a :class:`TrustedDealer` with an OS-seeded key).
        field: the prime field.
        robust: Beaver mode opens ``eps, delta`` with robust reconstruction (names lying parties).
    """

    def __init__(
        self,
        t: int,
        n: int,
        mode: DotMode = "honest_majority",
        *,
        triple_source: TripleSource | None = None,
        zero: ZeroSharer | None = None,
        field: PrimeField = GF61,
        robust: bool = True,
    ) -> None:
        self.t, self.n = check_threshold(t, n, field)
        self.field = field
        self.mode = mode
        self.robust = robust
        self.zero: ZeroSharer | None = None
        self.triples: TripleSource | None = None
        if mode == "honest_majority":
            check_honest_majority(t, n, field)
            self.zero = ZeroSharer.setup(t, n, field=field) if zero is None else zero
        elif mode == "beaver":
            self.triples = TrustedDealer(t, n, field=field) if triple_source is None else triple_source
            if (self.triples.t, self.triples.n, self.triples.field) != (self.t, self.n, field):
                raise MPCParameterError("triple_source is for a different (t, n, field)")
        else:
            raise MPCParameterError(f"mode = {mode!r}: expected 'honest_majority' or 'beaver'")

    def dot(self, x: np.ndarray, y: np.ndarray) -> Opened:
        """Open ``<x, y> mod p``; ``x, y``: (n, d) uint64 share arrays."""
        if self.zero is not None:
            return hm_dot_open(x, y, self.t, self.zero, field=self.field)
        assert self.triples is not None
        transcript = BeaverTranscript()
        z = beaver_dot(x, y, self.triples.beaver_triple(x.shape[1]), self.t, field=self.field, robust=self.robust, transcript=transcript)
        return _merge(open_scalar(z, self.t - 1, field=self.field), transcript)

    def square(self, x: np.ndarray) -> Opened:
        """Open ``<x, x> mod p``; ``x``: (n, d) uint64 share array."""
        if self.zero is not None:
            return hm_dot_open(x, x, self.t, self.zero, field=self.field)
        assert self.triples is not None
        transcript = BeaverTranscript()
        z = beaver_square(x, self.triples.square_triple(x.shape[1]), self.t, field=self.field, robust=self.robust, transcript=transcript)
        return _merge(open_scalar(z, self.t - 1, field=self.field), transcript)


def secure_dot(x: np.ndarray, y: np.ndarray, t: int, mode: DotMode = "honest_majority", *, field: PrimeField = GF61) -> int:
    """Convenience: open ``<x, y> mod p`` (int in ``[0, p)``) with fresh keys/dealer. ``x, y``: (n, d) uint64."""
    return SecureDot(t, x.shape[0], mode, field=field).dot(x, y).value
