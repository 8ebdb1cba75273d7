"""A round's public record -> per-device :class:`~ppbfl.trust.reputation.Evidence`.

The record is what the chain holds or anyone can check: each verified device's decision reason
(posted and agreed by ``t`` edge nodes, :data:`~ppbfl.defense.decision.REASON_CODES`), the devices
left out (no commitment on chain, or an upload that did not reach every online edge node), the
devices whose PoW stamp the contract refused, and the IDS's anomaly flags.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ppbfl.defense.decision import REASON_CODES, reason_code
from ppbfl.errors import ConfigError
from ppbfl.protocol.round import RoundResult
from ppbfl.trust.reputation import Evidence

__all__ = ["round_evidence"]

_MISSING = REASON_CODES["missing upload"]


def round_evidence(
    result: RoundResult, *, pow_failures: Collection[int] = (), ids_flags: Mapping[int, int] | None = None,
) -> dict[int, Evidence]:
    """Evidence of every device in ``result`` (verified or missing), plus devices named only in
    ``pow_failures`` (the contract refused their stamp, so they are missing too) or ``ids_flags``
    (device -> number of anomaly flags this round, >= 0).

    Raises:
        ConfigError: a decision reason without a code, or a negative flag count (naming the device).
    """
    flags = dict(ids_flags or {})
    for i, count in flags.items():
        if not isinstance(count, int) or count < 0:
            raise ConfigError("ids_flags", f"device {i}: {count!r} is not a count >= 0")
    reasons: dict[int, int] = {}
    for i, decision in zip(result.devices, result.decision.decisions):
        try:
            reasons[i] = reason_code(decision.reason)
        except KeyError:
            raise ConfigError("decision.reason", f"device {i}: {decision.reason!r} has no reason code") from None
    for i, why in result.missing.items():
        reasons.setdefault(i, REASON_CODES["missing proof"] if why.startswith("missing proof") else _MISSING)
    pow_failed = set(pow_failures)
    everyone = set(reasons) | pow_failed | set(flags)
    return {
        i: Evidence(reasons.get(i, _MISSING), i in pow_failed, flags.get(i, 0)) for i in sorted(everyone)
    }
