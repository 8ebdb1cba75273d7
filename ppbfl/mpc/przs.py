"""Pseudorandom zero-sharing (PRZS; Cramer, Damgård, Ishai, TCC 2005), as in MPyC's ``thresha``.

Setup (once): a 32-byte key ``r_A`` for every set ``A`` of ``n - t + 1`` parties; party ``i`` holds
the keys of the sets that contain it. Any ``t - 1`` parties ``C`` miss the key of ``A = complement(C)``.

For a counter ``c`` (a unique common input; never reused with the same keys), party ``i``'s share is

    ``z_i = sum_{A containing i} f_A(i) * sum_{k=1}^{t-1} PRF(r_A, c, k) * i^k``

where ``f_A`` is the degree-``(t - 1)`` polynomial with ``f_A(0) = 1`` and ``f_A(j) = 0`` for the
``t - 1`` parties ``j`` outside ``A``, and ``PRF(r_A, c, k)`` are field elements of
``FieldRNG(r_A, stream=c, block=k)``. Each term is the polynomial ``R_A(x) f_A(x)`` with
``R_A(x) = sum_k PRF_k x^k`` (degree ``t - 1``, ``R_A(0) = 0``) evaluated at ``i``; parties outside
``A`` have ``f_A(i) = 0`` so they need not know ``r_A``. Hence ``z`` lies on a polynomial of degree
``<= 2(t - 1)`` with value 0 at 0, and the term of the missing key makes it pseudorandom to ``C``.

Key distribution: :meth:`PRZSKeys.setup` draws all keys from the OS CSPRNG in one place (a trusted
setup, for single-process simulations and tests). Deployed edge nodes agree each set's key among
its members instead (:mod:`ppbfl.protocol.przs_setup`: the set's lowest member draws it and seals
it to the others) and each builds its :class:`PartyPRZS` from its own keys. There are
``C(n, t - 1)`` sets, so this is for the small ``n`` of an edge tier. Each party holds its own
:class:`PartyPRZS` (:meth:`PRZSKeys.for_party`); :class:`ppbfl.mpc.testing.ZeroSharer` holds all
of them in one process (simulation only).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np

from ppbfl.field import ops
from ppbfl.field.csprng import SEED_BYTES, FieldRNG
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.errors import CounterReuseError, MPCParameterError
from ppbfl.sharing.shamir import check_threshold

__all__ = ["PRZSKeys", "PartyPRZS", "f_A"]


def f_A(members: frozenset[int], n: int, x: int, field: PrimeField) -> int:
    """``f_A(x) = prod_{j not in A} (j - x) / j mod p``: 1 at 0, 0 at the parties outside ``A``."""
    p = field.p
    value = 1
    for j in range(1, n + 1):
        if j not in members:
            value = value * (j - x) % p * pow(j, -1, p) % p
    return value


@dataclass(frozen=True)
class PRZSKeys:
    """All PRZS keys of a ``(t, n)`` edge tier: ``keys[A]`` (32 bytes) for each ``|A| = n - t + 1``."""

    t: int
    n: int
    keys: Mapping[frozenset[int], bytes]
    field: PrimeField = GF61
    used: dict[int, set[int]] = dataclass_field(default_factory=dict, repr=False, compare=False)
    """Counters used so far, per party: every :class:`PartyPRZS` from :meth:`for_party` shares it,
    so no two zero-sharers built on these keys can reuse a counter."""
    lock: threading.Lock = dataclass_field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def setup(cls, t: int, n: int, *, field: PrimeField = GF61) -> PRZSKeys:
        """Draw every key from the OS CSPRNG (:func:`secrets.token_bytes`) -- a trusted setup."""
        t, n = check_threshold(t, n, field)
        sets = itertools.combinations(range(1, n + 1), n - t + 1)
        return cls(t, n, {frozenset(a): secrets.token_bytes(SEED_BYTES) for a in sets}, field)

    def for_party(self, i: int) -> PartyPRZS:
        """Party ``i``'s view: only the keys of the sets containing ``i``."""
        if not 1 <= i <= self.n:
            raise MPCParameterError(f"party {i}: expected 1..{self.n}")
        with self.lock:
            used = self.used.setdefault(i, set())
        return PartyPRZS(i, self.t, self.n, {a: k for a, k in self.keys.items() if i in a}, self.field, used, self.lock)


@dataclass
class PartyPRZS:
    """One party's PRZS state: its keys and the counters it has used (a counter is used once)."""

    party: int
    t: int
    n: int
    keys: Mapping[frozenset[int], bytes]
    field: PrimeField = GF61
    used: set[int] = dataclass_field(default_factory=set)
    lock: threading.Lock = dataclass_field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if any(self.party not in a for a in self.keys):
            raise MPCParameterError(f"party {self.party} was given a key of a set it is not in")
        self._weights = {a: f_A(a, self.n, self.party, self.field) for a in self.keys}

    def zero_share(self, counter: int, count: int = 1) -> np.ndarray:
        """This party's shares of ``count`` fresh sharings of 0 (degree ``2(t - 1)``): (count,) uint64.

        Raises:
            CounterReuseError: ``counter`` was used before by this party.
        """
        if isinstance(counter, bool) or not isinstance(counter, int) or not 0 <= counter < (1 << 64):
            raise MPCParameterError(f"counter = {counter!r}: expected an int in [0, 2^64)")
        with self.lock:
            if counter in self.used:
                raise CounterReuseError(counter, self.party)
            self.used.add(counter)
        f = self.field
        total = np.zeros(count, dtype=np.uint64)
        i = self.party
        for a, key in self.keys.items():
            # R_A(i) = sum_k PRF(r_A, c, k) i^k, for count sharings at once
            r_at_i = np.zeros(count, dtype=np.uint64)
            for k in range(1, self.t):
                prf = FieldRNG(key, stream=counter, block=k, field=f).random(count)
                r_at_i = ops.add(r_at_i, ops.scalar_mul(prf, pow(i, k, f.p), field=f), field=f)
            total = ops.add(total, ops.scalar_mul(r_at_i, self._weights[a], field=f), field=f)
        return total
