"""Parameters of the reputation model, the quarantine and the trust-scaled PoW (one pydantic model).

Every weight is given as a float and used as an integer in units of ``2^-16`` (:attr:`TrustConfig.q`),
so the update rule (:mod:`ppbfl.trust.reputation`) is integer arithmetic that any party, in any
language (including Solidity), recomputes bit for bit.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EVIDENCE_ONE", "TrustConfig", "load_trust_config"]

EVIDENCE_ONE = 1 << 16
"""Evidence fixed point: one observation = ``2^16``."""


class TrustConfig(BaseModel):
    """Reputation, quarantine and PoW parameters (frozen; unknown keys are refused).

    Evidence weights say how much one round's observation counts (positive ``r`` or negative
    ``s``, in observations). Defaults: a device caught with provably malformed shares
    (out-of-range, inconsistent, commitment mismatch, malformed) loses as much as four honest
    rounds gain; a cosine rejection counts as one negative observation; a dropout as a quarter
    (honest devices drop out, so dropouts alone should quarantine only a device that is almost
    never there); an IDS flag counts three, so a device flagged every round is quarantined
    even when its updates pass the cosine check.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    forgetting: float = Field(default=0.9, gt=0.0, le=1.0, description="lambda: evidence kept per round")
    initial_positive: float = Field(default=2.0, ge=0.0, le=1e6, description="evidence r a new device starts with")
    initial_negative: float = Field(default=0.0, ge=0.0, le=1e6, description="evidence s a new device starts with")
    accepted: float = Field(default=1.0, ge=0.0, le=1e6, description="r per round whose update passed verification")
    cosine_rejected: float = Field(default=1.0, ge=0.0, le=1e6, description="s per cosine rejection (negative, zero, <= tau)")
    zero_norm: float = Field(default=1.0, ge=0.0, le=1e6, description="s per all-zero update")
    malformed: float = Field(default=4.0, ge=0.0, le=1e6, description="s per out-of-range, inconsistent, malformed or mismatched upload")
    missing: float = Field(default=0.25, ge=0.0, le=1e6, description="s per missing upload / dropout")
    pow_failure: float = Field(default=2.0, ge=0.0, le=1e6, description="s per refused PoW stamp")
    ids_flag: float = Field(default=3.0, ge=0.0, le=1e6, description="s per IDS anomaly flag")
    quarantine_below: float = Field(default=0.3, ge=0.0, le=1.0, description="enter quarantine when trust < this")
    release_at: float = Field(default=0.5, ge=0.0, le=1.0, description="leave quarantine when trust >= this")
    pow_min_bits: int = Field(default=8, ge=0, le=64, description="PoW bits at trust 1")
    pow_max_bits: int = Field(default=22, ge=0, le=64, description="PoW bits at trust 0 (and in quarantine)")
    pow_full_trust: float = Field(default=0.9, ge=2**-15, le=1.0, description="trust from which the PoW is pow_min_bits")

    @model_validator(mode="after")
    def _ordered(self) -> TrustConfig:
        if self.release_at < self.quarantine_below:
            raise ValueError(f"release_at = {self.release_at} must be >= quarantine_below = {self.quarantine_below}")
        if self.pow_max_bits < self.pow_min_bits:
            raise ValueError(f"pow_max_bits = {self.pow_max_bits} must be >= pow_min_bits = {self.pow_min_bits}")
        return self

    @staticmethod
    def q15(value: float) -> int:
        """``value`` in Q1.15 (the contract's trust unit)."""
        return round(value * (1 << 15))

    @staticmethod
    def q(value: float) -> int:
        """``value`` in units of ``2^-16`` (round half to even, as Python's ``round``)."""
        return round(value * EVIDENCE_ONE)


def load_trust_config(values: dict[str, object] | None = None, *, prefix: str = "trust") -> TrustConfig:
    """A :class:`TrustConfig` from a mapping (a config file's ``trust`` section).

    Raises:
        ConfigError: naming the first offending key (``trust.forgetting``, ...).
    """
    from pydantic import ValidationError

    from ppbfl.errors import ConfigError

    try:
        return TrustConfig.model_validate(values or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{prefix}.{where}" if where else prefix, first["msg"]) from error
