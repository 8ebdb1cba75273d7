"""Typed errors of :mod:`ppbfl.mpc` (all derive from :class:`~ppbfl.errors.PPBFLError`)."""

from __future__ import annotations

from ppbfl.errors import PPBFLError

__all__ = ["CounterReuseError", "HonestMajorityError", "MPCParameterError", "TripleReuseError", "TripleShapeError"]


class TripleReuseError(PPBFLError, RuntimeError):
    """A Beaver/square triple was consumed a second time (triples are single-use)."""

    def __init__(self, triple_id: int) -> None:
        self.triple_id = triple_id
        super().__init__(f"triple {triple_id} was already consumed: triples are single-use")


class TripleShapeError(PPBFLError, ValueError):
    """A triple does not match the operands (number of parties, vector length or threshold)."""


class HonestMajorityError(PPBFLError, ValueError):
    """Honest-majority multiplication needs ``n >= 2t - 1`` parties."""

    def __init__(self, t: int, n: int) -> None:
        self.t = t
        self.n = n
        super().__init__(f"honest-majority mode needs n >= 2t - 1 = {2 * t - 1} parties, got n = {n} (t = {t})")


class CounterReuseError(PPBFLError, RuntimeError):
    """A pseudorandom zero-sharing counter was used twice with the same keys (the masks would repeat)."""

    def __init__(self, counter: int, party: int | None = None) -> None:
        self.counter = counter
        self.party = party
        who = "" if party is None else f" by party {party}"
        super().__init__(f"PRZS counter {counter} was already used{who}: counters must never repeat for a key set")


class MPCParameterError(PPBFLError, ValueError):
    """Bad MPC parameters or operand shapes (names the argument)."""
