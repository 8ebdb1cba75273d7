"""Typed errors of :mod:`ppbfl.defense` (all derive from :class:`~ppbfl.errors.PPBFLError`).

An update outside the encodable bound raises :class:`~ppbfl.errors.UpdateRangeError`, re-exported here.
"""

from __future__ import annotations

from ppbfl.errors import PPBFLError, UpdateRangeError

__all__ = ["AggregateRangeError", "DefenseParameterError", "InconsistentSharesError", "UpdateNormError", "UpdateRangeError"]


class DefenseParameterError(PPBFLError, ValueError):
    """Bad filter parameters or inputs (names the argument)."""


class InconsistentSharesError(PPBFLError, ValueError):
    """A device's shares do not lie on one polynomial of degree ``t - 1`` (share-consistency check)."""

    def __init__(self, device: int, suspects: tuple[int, ...] = ()) -> None:
        self.device = device
        self.suspects = suspects
        extra = f"; the values of edge node(s) {suspects} disagree with the rest" if suspects else ""
        super().__init__(f"device {device}: shares are not a consistent degree-(t-1) sharing{extra}")


class AggregateRangeError(PPBFLError, ValueError):
    """The weighted aggregate could wrap modulo p for in-range updates (too many devices for the field)."""


class UpdateNormError(PPBFLError, ValueError):
    """A device's encoded update is above the input-validity check's L2 bound: the check would reject
    it with more than the stated ``2^-40`` probability (``norm``, ``bound``: encoded units)."""

    def __init__(self, device: int, norm: float, bound: float, frac_bits: int) -> None:
        self.device, self.norm, self.bound = device, norm, bound
        scale = 2.0**frac_bits
        super().__init__(
            f"device {device}: update L2 norm {norm / scale:.6g} is above the validity bound {bound / scale:.6g} "
            f"(ValidityParams.honest_l2 at {frac_bits} fractional bits); clip the update to it"
        )
