"""Typed errors of :mod:`ppbfl.defense` (all derive from :class:`~ppbfl.errors.PPBFLError`).

An update outside the encodable bound raises :class:`~ppbfl.errors.UpdateRangeError`, re-exported here.
"""

from __future__ import annotations

from ppbfl.errors import PPBFLError, UpdateRangeError

__all__ = ["AggregateRangeError", "DefenseParameterError", "InconsistentSharesError", "UpdateRangeError"]


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
