"""Trust-scaled light PoW: the difficulty a device must meet next round, as the contract derives it.

``PPBFLRounds`` (with ``setPowRange(min, max)``) checks a device's stamp against
``max - floor((max - min) * min(T, F) / F)`` bits, ``T`` its stored Q1.15 trust (0 in quarantine)
and ``F`` the trust from which the lightest stamp applies (``pow_full_trust``; default 0.9, just
below an always-honest device's steady trust 11/12 with the default forgetting). The expected work
doubles with each bit: at the defaults (8 .. 22 bits) a trusted device hashes ~2^8 nonces
(milliseconds) and a quarantined one ~2^22 (seconds; see docs/trust.md for the measured table).
"""

from __future__ import annotations

from ppbfl.errors import ConfigError
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.reputation import TRUST_ONE

__all__ = ["pow_bits_for"]


def pow_bits_for(trust_q15: int, config: TrustConfig) -> int:
    """PoW bits for Q1.15 trust ``trust_q15`` in ``[0, 2^15]`` (the contract's ``_powBits``).

    Raises:
        ConfigError: ``trust_q15`` out of range.
    """
    if not 0 <= trust_q15 <= TRUST_ONE:
        raise ConfigError("trust", f"{trust_q15!r} is not a Q1.15 trust in [0, {TRUST_ONE}]")
    full = config.q15(config.pow_full_trust)
    return config.pow_max_bits - (config.pow_max_bits - config.pow_min_bits) * min(trust_q15, full) // full
