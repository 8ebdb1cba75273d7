"""One device's trust record of one round, and its canonical bytes (the Merkle leaf).

Leaf of a record: ``keccak256`` of the 103 bytes (big-endian, no padding)::

    uint64 round | uint32 device | uint8 reason | uint8 powFailed | uint16 idsFlags
    | float64 cosine (IEEE 754; NaN when not computed, as 0x7ff8000000000000)
    | float64 weight | uint64 positiveBefore | uint64 negativeBefore | uint8 quarantinedBefore
    | uint64 positiveAfter | uint64 negativeAfter | uint8 quarantinedAfter
    | uint16 trustBefore | uint16 trustAfter | uint8 powBits | bytes32 commitment (zero: none)

Trust is Q1.15 as on chain; evidence counts are in units of ``2^-16`` (:mod:`ppbfl.trust.reputation`).
Round and device are inside the leaf, so a proof cannot be replayed for another round or device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.chain.keccak import keccak256_rows
from ppbfl.errors import ConfigError
from ppbfl.trust.reputation import DeviceTrust, Evidence

__all__ = ["LEAF_DTYPE", "TrustRecord", "pack_records", "record_leaves"]

LEAF_DTYPE = np.dtype([
    ("round", ">u8"), ("device", ">u4"), ("reason", "u1"), ("pow_failed", "u1"), ("ids_flags", ">u2"),
    ("cosine", ">f8"), ("weight", ">f8"), ("positive_before", ">u8"), ("negative_before", ">u8"), ("quarantined_before", "u1"),
    ("positive_after", ">u8"), ("negative_after", ">u8"), ("quarantined_after", "u1"),
    ("trust_before", ">u2"), ("trust_after", ">u2"), ("pow_bits", "u1"), ("commitment", "S32"),
])
"""The packed layout a leaf hashes (``itemsize`` 103 bytes)."""

_EVIDENCE_MAX = (1 << 63) - 1  # the stores keep counts in signed BIGINT columns


@dataclass(frozen=True)
class TrustRecord:
    """What round ``round`` did to ``device``'s trust.

    ``evidence``: the public observation; ``cosine`` (nan if not computed) and ``weight`` (the
    float aggregation weight) of its decision; ``before`` / ``after``: reputation states;
    ``pow_bits``: the difficulty it must meet next round; ``commitment``: the 32-byte share
    commitment it posted (None: none).
    """

    round: int
    device: int
    evidence: Evidence
    cosine: float
    weight: float
    before: DeviceTrust
    after: DeviceTrust
    pow_bits: int
    commitment: bytes | None = None

    def __post_init__(self) -> None:
        checks = (
            ("round", self.round, 1, 1 << 64), ("device", self.device, 0, 1 << 32), ("pow_bits", self.pow_bits, 0, 65),
            ("before.positive", self.before.positive, 0, _EVIDENCE_MAX), ("before.negative", self.before.negative, 0, _EVIDENCE_MAX),
            ("after.positive", self.after.positive, 0, _EVIDENCE_MAX), ("after.negative", self.after.negative, 0, _EVIDENCE_MAX),
        )
        for name, value, low, high in checks:
            if not low <= value < high:
                raise ConfigError(f"record.{name}", f"device {self.device}, round {self.round}: {value!r} not in [{low}, {high})")
        if self.commitment is not None and len(self.commitment) != 32:
            raise ConfigError("record.commitment", f"device {self.device}, round {self.round}: {len(self.commitment)} bytes, expected 32")
        if math.isinf(self.weight) or math.isnan(self.weight) or math.isinf(self.cosine):
            raise ConfigError("record.weight", f"device {self.device}, round {self.round}: weight {self.weight!r}, cosine {self.cosine!r}")

    @property
    def leaf(self) -> bytes:
        """The 32-byte Merkle leaf of this record."""
        return record_leaves([self])[0].tobytes()


def record_leaves(records: Sequence[TrustRecord]) -> np.ndarray:
    """``(len(records), 32) uint8`` leaves, hashed in one batch."""
    packed = pack_records(records)
    return keccak256_rows(packed.view(np.uint8).reshape(len(records), LEAF_DTYPE.itemsize))


def pack_records(records: Sequence[TrustRecord]) -> np.ndarray:
    """``(len(records),)`` array of :data:`LEAF_DTYPE`: the bytes each leaf hashes."""
    packed = np.zeros(len(records), dtype=LEAF_DTYPE)
    for k, x in enumerate(records):
        packed[k] = (
            x.round, x.device, x.evidence.reason, x.evidence.pow_failed, x.evidence.ids_flags,
            math.nan if math.isnan(x.cosine) else x.cosine, x.weight,
            x.before.positive, x.before.negative, x.before.quarantined,
            x.after.positive, x.after.negative, x.after.quarantined,
            x.before.trust, x.after.trust, x.pow_bits, x.commitment or bytes(32),
        )
    return packed
