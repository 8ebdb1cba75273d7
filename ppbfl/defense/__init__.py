"""Poisoning defence on shares: share-consistency check, secure cosine verification, neutralisation."""

from ppbfl.defense.consistency import (
    ConsistencyResult,
    challenge_coefficients,
    check_consistency,
    published_values,
)
from ppbfl.defense.cosine import SecureCosineFilter
from ppbfl.defense.errors import (
    AggregateRangeError,
    DefenseParameterError,
    InconsistentSharesError,
    UpdateRangeError,
)
from ppbfl.defense.records import RoundRecords, VerificationRecord
from ppbfl.defense.submission import (
    DeviceSubmission,
    codec_for_length,
    encode_update,
    share_update,
)

__all__ = [
    "AggregateRangeError",
    "ConsistencyResult",
    "DefenseParameterError",
    "DeviceSubmission",
    "InconsistentSharesError",
    "RoundRecords",
    "SecureCosineFilter",
    "UpdateRangeError",
    "VerificationRecord",
    "challenge_coefficients",
    "check_consistency",
    "codec_for_length",
    "encode_update",
    "published_values",
    "share_update",
]
