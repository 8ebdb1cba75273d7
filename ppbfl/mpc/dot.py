"""One entry point for opened dot products on shares: honest-majority or Beaver mode."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.beaver import BeaverTranscript, beaver_dot, beaver_square
from ppbfl.mpc.errors import MPCParameterError
from ppbfl.mpc.honest_majority import check_honest_majority, hm_dot_open
from ppbfl.mpc.opening import Opened, open_scalar
from ppbfl.mpc.przs import ZeroSharer
from ppbfl.mpc.triples import TripleSource, TrustedDealer
from ppbfl.sharing.shamir import check_threshold

__all__ = ["DotMode", "SecureDot", "secure_dot"]

DotMode = Literal["honest_majority", "beaver"]


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
        if mode == "honest_majority":
            check_honest_majority(t, n, field)
            self.zero = ZeroSharer.setup(t, n, field=field) if zero is None else zero
            self.triples = None
        elif mode == "beaver":
            self.triples = TrustedDealer(t, n, field=field) if triple_source is None else triple_source
            if (self.triples.t, self.triples.n, self.triples.field) != (self.t, self.n, field):
                raise MPCParameterError("triple_source is for a different (t, n, field)")
            self.zero = None
        else:
            raise MPCParameterError(f"mode = {mode!r}: expected 'honest_majority' or 'beaver'")

    def dot(self, x: np.ndarray, y: np.ndarray) -> Opened:
        """Open ``<x, y> mod p``; ``x, y``: (n, d) uint64 share arrays."""
        if self.mode == "honest_majority":
            assert self.zero is not None
            return hm_dot_open(x, y, self.t, self.zero, field=self.field)
        assert self.triples is not None
        transcript = BeaverTranscript()
        z = beaver_dot(x, y, self.triples.beaver_triple(x.shape[1]), self.t, field=self.field, robust=self.robust, transcript=transcript)
        return _merge(open_scalar(z, self.t - 1, field=self.field), transcript)

    def square(self, x: np.ndarray) -> Opened:
        """Open ``<x, x> mod p``; ``x``: (n, d) uint64 share array."""
        if self.mode == "honest_majority":
            assert self.zero is not None
            return hm_dot_open(x, x, self.t, self.zero, field=self.field)
        assert self.triples is not None
        transcript = BeaverTranscript()
        z = beaver_square(x, self.triples.square_triple(x.shape[1]), self.t, field=self.field, robust=self.robust, transcript=transcript)
        return _merge(open_scalar(z, self.t - 1, field=self.field), transcript)


def secure_dot(x: np.ndarray, y: np.ndarray, t: int, mode: DotMode = "honest_majority", *, field: PrimeField = GF61) -> int:
    """Convenience: open ``<x, y> mod p`` (int in ``[0, p)``) with fresh keys/dealer. ``x, y``: (n, d) uint64."""
    return SecureDot(t, x.shape[0], mode, field=field).dot(x, y).value
