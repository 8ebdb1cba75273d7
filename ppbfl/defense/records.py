"""Per-device verification records and the round summary returned by the cosine filter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field

__all__ = ["RoundRecords", "VerificationRecord"]


@dataclass(frozen=True)
class VerificationRecord:
    """The filter's decision about one device.

    Attributes:
        device: the device's index in the input list.
        cosine: cosine similarity to the reference (NaN when not computed).
        norm: ``||g||`` decoded (NaN when not computed).
        weight: ``w = max(0, cos) * trust`` if accepted, else 0.
        clip: ``c = min(1, ||r|| / ||g||)`` (1.0 when not computed).
        accepted: whether the update enters the aggregate (``weight > 0``).
        reason: ``"accepted"``, ``"negative cosine"``, ``"zero cosine"``, ``"cosine <= tau"``, ``"zero trust"``,
            ``"zero norm"``, ``"inconsistent shares"``, ``"malformed shares: ..."``,
            ``"out-of-range shares: ..."``.
        suspects: edge nodes whose values disagreed (consistency check), if any.
    """

    device: int
    cosine: float
    norm: float
    weight: float
    clip: float
    accepted: bool
    reason: str
    suspects: tuple[int, ...] = ()


@dataclass
class RoundRecords:
    """All records of one round (iterable / indexable like a list of :class:`VerificationRecord`).

    Attributes:
        devices: one record per input device, in input order.
        reference: ``"public"`` or ``"medoid"``.
        medoid: the device used as reference in medoid mode, else None.
        reference_norm: ``||r||``.
        all_rejected: True when every weight is 0 (the aggregate is then all zeros).
        note: a human-readable summary line.
        wrong_edge_nodes: edge nodes that sent a wrong share in some opening (corrected and named).
        consistency_checked: whether the share-consistency check ran.
        opened: every opened field element, for the audit trail (``"dot_ref"``, ``"norm2"``, ``"gram"``).
    """

    devices: list[VerificationRecord]
    reference: str
    medoid: int | None
    reference_norm: float
    all_rejected: bool
    note: str
    wrong_edge_nodes: tuple[int, ...] = ()
    consistency_checked: bool = False
    opened: dict[str, dict] = dataclass_field(default_factory=dict)

    def __iter__(self) -> Iterator[VerificationRecord]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def __getitem__(self, i: int) -> VerificationRecord:
        return self.devices[i]

    @property
    def accepted(self) -> list[int]:
        """Indices of the accepted devices."""
        return [r.device for r in self.devices if r.accepted]
