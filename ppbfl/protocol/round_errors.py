"""Errors of the round state machine (the wire and transport errors live in :mod:`.errors`)."""

from __future__ import annotations

from ppbfl.errors import PPBFLError

__all__ = [
    "AnnouncementError", "CommitmentMismatchError", "NotEnoughEdgeNodesError", "OutOfPhaseError", "RoundFailedError", "SetupRuleError",
]


class OutOfPhaseError(PPBFLError):
    """A party received a request its state does not allow (e.g. verify before setup or uploads)."""

    def __init__(self, party: str, what: str) -> None:
        super().__init__(f"{party}: {what}")
        self.party, self.what = party, what


class CommitmentMismatchError(PPBFLError):
    """A device's upload does not match the commitment it posted on chain."""

    def __init__(self, party: str, device: int, why: str) -> None:
        super().__init__(f"{party}: upload of device {device} rejected: {why}")
        self.party, self.device, self.why = party, device, why


class NotEnoughEdgeNodesError(PPBFLError):
    """Fewer edge nodes answered than the step needs (``t`` to reconstruct; ``2t - 1`` or a dealer to verify)."""

    def __init__(self, step: str, online: tuple[int, ...], needed: int) -> None:
        super().__init__(f"{step}: {len(online)} edge nodes online {list(online)}, at least {needed} needed")
        self.step, self.online, self.needed = step, online, needed


class RoundFailedError(PPBFLError):
    """A round could not complete; ``reason`` says why and ``party`` names the culprit if known."""

    def __init__(self, round: int, reason: str, party: str | None = None) -> None:
        who = f" (party {party})" if party else ""
        super().__init__(f"round {round} failed: {reason}{who}")
        self.round, self.reason, self.party = round, reason, party


class AnnouncementError(PPBFLError):
    """A round announcement disagrees with the device's own configuration (names the field)."""

    def __init__(self, device: int, field: str, got: object, expected: str) -> None:
        self.device, self.field, self.got = device, field, got
        super().__init__(f"device {device}: round announcement field {field!r} = {got!r}, expected {expected}")


class SetupRuleError(OutOfPhaseError):
    """An edge node refuses a ``SetupEdge`` whose decision rule differs from its operator's
    (:class:`ppbfl.defense.rule.DecisionRule`); ``field`` names the first differing one."""

    def __init__(self, party: str, field: str, got: object, expected: object) -> None:
        super().__init__(party, f"bad setup: SetupEdge field {field!r} = {got!r}, but this node's operator configured {expected!r}")
        self.field, self.got, self.expected = field, got, expected
