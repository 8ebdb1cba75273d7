"""Poisoning defence on shares: share-consistency check and the public decision rule.

The round that runs them on shares is the protocol's (:mod:`ppbfl.protocol`); the one-call
convenience is :class:`ppbfl.fl.federation.SecureCosineFilter`.
"""

from ppbfl.defense.consistency import (
    ConsistencyResult,
    challenge_coefficients,
    check_consistency,
    published_values,
)
from ppbfl.defense.errors import (
    AggregateRangeError,
    DefenseParameterError,
    InconsistentSharesError,
    UpdateRangeError,
)
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
    "UpdateRangeError",
    "challenge_coefficients",
    "check_consistency",
    "codec_for_length",
    "encode_update",
    "published_values",
    "share_update",
]
