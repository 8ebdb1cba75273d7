"""Typed errors of :mod:`ppbfl.defense` (all derive from :class:`~ppbfl.errors.PPBFLError`)."""

from __future__ import annotations

from ppbfl.errors import PPBFLError

__all__ = ["AggregateRangeError", "DefenseParameterError", "InconsistentSharesError", "UpdateEncodingError"]


class DefenseParameterError(PPBFLError, ValueError):
    """Bad filter parameters or inputs (names the argument)."""


class UpdateEncodingError(PPBFLError, ValueError):
    """A device's update cannot be encoded without risking a wrap-around of its inner products."""

    def __init__(self, device: int, index: int, value: float, max_abs: float) -> None:
        self.device = device
        self.index = index
        self.value = value
        self.max_abs = max_abs
        super().__init__(
            f"device {device}: update[{index}] = {value!r} is outside |x| <= {max_abs!r}, the bound under "
            f"which its inner products cannot wrap modulo p; it is not encoded (clip or rescale it first)"
        )


class InconsistentSharesError(PPBFLError, ValueError):
    """A device's shares do not lie on one polynomial of degree ``t - 1`` (share-consistency check)."""

    def __init__(self, device: int, suspects: tuple[int, ...] = ()) -> None:
        self.device = device
        self.suspects = suspects
        extra = f"; the values of edge node(s) {suspects} disagree with the rest" if suspects else ""
        super().__init__(f"device {device}: shares are not a consistent degree-(t-1) sharing{extra}")


class AggregateRangeError(PPBFLError, ValueError):
    """The weighted aggregate could wrap modulo p for in-range updates (too many devices for the field)."""
