"""Poisoning defence on shares: share-consistency check, secure cosine verification, neutralisation."""

from ppbfl.defense.consistency import ConsistencyResult, challenge_coefficients, check_consistency, published_values
from ppbfl.defense.cosine import SecureCosineFilter
from ppbfl.defense.errors import AggregateRangeError, DefenseParameterError, InconsistentSharesError, UpdateEncodingError
from ppbfl.defense.records import RoundRecords, VerificationRecord
from ppbfl.defense.submission import DeviceSubmission, codec_for_length, encode_update, share_update

__all__ = [
    "SecureCosineFilter", "VerificationRecord", "RoundRecords",
    "DeviceSubmission", "share_update", "encode_update", "codec_for_length",
    "challenge_coefficients", "published_values", "check_consistency", "ConsistencyResult",
    "DefenseParameterError", "UpdateEncodingError", "InconsistentSharesError", "AggregateRangeError",
]
