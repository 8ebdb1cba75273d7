"""Beta reputation with exponential forgetting, quarantine with hysteresis (DESIGN §7).

The model is the beta reputation system of Jøsang & Ismail (2002, "The Beta Reputation System",
15th Bled eCommerce Conference), as used for federated-learning worker reputation on a blockchain
by Kang et al. (2019, "Incentive Mechanism for Reliable Federated Learning: A Joint Optimization
Approach to Combining Reputation and Contract Theory", IEEE IoT Journal 6(6)): a device's record is
a pair of evidence counts ``(r, s)`` (positive, negative observations); its reputation is the
expected value of ``Beta(r + 1, s + 1)``::

    trust = (r + 1) / (r + s + 2)

and old evidence fades with the forgetting factor ``lambda`` (Jøsang & Ismail §4)::

    r_t = lambda * r_{t-1} + r(round t),    s_t = lambda * s_{t-1} + s(round t)

so with no news trust returns to 1/2, and a device that behaved badly long ago is judged on what it
does now (the way back). Quarantine has hysteresis: a device enters it when ``trust <
quarantine_below`` and leaves it when ``trust >= release_at``. A quarantined device keeps taking
part: its update is still verified but weighted 0 (reason ``"zero trust"``), and an update that
passed verification counts as positive evidence, which is how it earns its way back.

No one's word: the update is integer arithmetic (evidence in units of ``2^-16``, trust in Q1.15 as
the contract stores it, floor division) over the public round record (reason codes, as posted and
agreed on chain; missing devices; PoW refusals; IDS flags), so every edge node, auditor or
contract recomputes the same trust bit for bit (:func:`replay`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ppbfl.defense.decision import REASON_CODES
from ppbfl.errors import ConfigError
from ppbfl.trust.config import EVIDENCE_ONE, TrustConfig

__all__ = [
    "TRUST_ONE",
    "DeviceTrust",
    "Evidence",
    "evidence_weights",
    "initial_state",
    "initial_trust",
    "replay",
    "trust_q15",
    "update",
    "update_all",
]

TRUST_ONE = 1 << 15
"""Trust fixed point: Q1.15 (the contract's ``TRUST_ONE``)."""

_POSITIVE = {REASON_CODES["accepted"], REASON_CODES["zero trust"]}
_COSINE = {  # rejected by the similarity rule: the cosine to the reference, or FLAME's clustering
    REASON_CODES["negative cosine"], REASON_CODES["zero cosine"], REASON_CODES["cosine <= tau"], REASON_CODES["outside majority cluster"],
}
_MALFORMED = {
    REASON_CODES["malformed shares"], REASON_CODES["inconsistent shares"],
    REASON_CODES["out-of-range shares"], REASON_CODES["commitment mismatch"], REASON_CODES["out of range"],
}


@dataclass(frozen=True)
class Evidence:
    """What one round showed about one device (all public).

    ``reason``: the :data:`~ppbfl.defense.decision.REASON_CODES` code of its decision (``"missing
    upload"`` for a dropout); ``pow_failed``: its PoW stamp was refused; ``ids_flags``: anomaly
    flags the IDS raised for it this round (>= 0).
    """

    reason: int
    pow_failed: bool = False
    ids_flags: int = 0

    def __post_init__(self) -> None:
        if self.reason not in REASON_CODES.values():
            raise ConfigError("evidence.reason", f"{self.reason!r} is not a REASON_CODES code")
        if not 0 <= self.ids_flags < 1 << 16:
            raise ConfigError("evidence.ids_flags", f"{self.ids_flags!r} is not in [0, 2^16)")


@dataclass(frozen=True)
class DeviceTrust:
    """One device's reputation state: evidence ``positive`` / ``negative`` (ints, units of
    ``2^-16`` observations) and whether it is ``quarantined``."""

    positive: int
    negative: int
    quarantined: bool = False

    @property
    def trust(self) -> int:
        """Reputation in Q1.15: ``floor(2^15 (r + 1) / (r + s + 2))``."""
        return trust_q15(self.positive, self.negative)

    @property
    def weight_trust(self) -> int:
        """Q1.15 trust the round weights the device with (0 in quarantine)."""
        return 0 if self.quarantined else self.trust


def trust_q15(positive: int, negative: int) -> int:
    """``floor(2^15 (r + 1) / (r + s + 2))`` for evidence ``r, s`` in units of ``2^-16`` (ints >= 0)."""
    return (positive + EVIDENCE_ONE) * TRUST_ONE // (positive + negative + 2 * EVIDENCE_ONE)


def initial_state(config: TrustConfig) -> DeviceTrust:
    """The state of a device never seen before (``initial_positive``, ``initial_negative``)."""
    state = DeviceTrust(config.q(config.initial_positive), config.q(config.initial_negative))
    return DeviceTrust(state.positive, state.negative, state.trust < _q15(config.quarantine_below))


def initial_trust(config: TrustConfig) -> float:
    """The trust a new device is weighted with, as a float ``q / 2^15`` (exact: the Q1.15 word of
    :func:`initial_state`, 0 if it starts quarantined); what its chain registration should carry
    (``ChainLedger(..., trust=initial_trust(config))``) so that round 1's PoW difficulty, derived
    by the contract from the stored trust, follows the model (3/4 with the defaults, not 1)."""
    return initial_state(config).weight_trust / TRUST_ONE


def _q15(value: float) -> int:
    return round(value * TRUST_ONE)


def evidence_weights(evidence: Evidence, config: TrustConfig) -> tuple[int, int]:
    """``(r, s)`` of one round's ``evidence`` in units of ``2^-16`` (see :class:`TrustConfig`)."""
    positive = negative = 0
    if evidence.reason in _POSITIVE:
        positive = config.q(config.accepted)
    elif evidence.reason in _COSINE:
        negative = config.q(config.cosine_rejected)
    elif evidence.reason in _MALFORMED:
        negative = config.q(config.malformed)
    elif evidence.reason == REASON_CODES["zero norm"]:
        negative = config.q(config.zero_norm)
    elif evidence.reason in (REASON_CODES["missing upload"], REASON_CODES["missing proof"]):
        negative = config.q(config.missing)
    if evidence.pow_failed:
        negative += config.q(config.pow_failure)
    negative += evidence.ids_flags * config.q(config.ids_flag)
    return positive, negative


def update(state: DeviceTrust, evidence: Evidence | None, config: TrustConfig) -> DeviceTrust:
    """One round: forget (``floor(lambda r)``, ``floor(lambda s)``), add ``evidence`` (None: the
    device was not in the round), then apply the quarantine thresholds (hysteresis)."""
    keep = config.q(config.forgetting)
    positive = state.positive * keep // EVIDENCE_ONE
    negative = state.negative * keep // EVIDENCE_ONE
    if evidence is not None:
        r, s = evidence_weights(evidence, config)
        positive, negative = positive + r, negative + s
    trust = trust_q15(positive, negative)
    quarantined = trust < _q15(config.release_at if state.quarantined else config.quarantine_below)
    return DeviceTrust(positive, negative, quarantined)


def update_all(
    states: Mapping[int, DeviceTrust], evidence: Mapping[int, Evidence], config: TrustConfig
) -> dict[int, DeviceTrust]:
    """One round for every device in ``states`` or ``evidence`` (new devices start at :func:`initial_state`)."""
    start = initial_state(config)
    return {i: update(states.get(i, start), evidence.get(i), config) for i in sorted(set(states) | set(evidence))}


def replay(rounds: Iterable[Mapping[int, Evidence]], config: TrustConfig) -> dict[int, DeviceTrust]:
    """The states after the given rounds' evidence, in order, from nothing: what anyone holding
    the public round records recomputes."""
    states: dict[int, DeviceTrust] = {}
    for evidence in rounds:
        states = update_all(states, evidence, config)
    return states
