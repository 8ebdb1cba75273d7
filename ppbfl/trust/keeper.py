"""The per-round trust step a harness calls after each round: update, store, anchor, set PoW.

:class:`TrustKeeper` holds the reputation states (resumed from the store), gives the round the
trust to weight devices with (:meth:`TrustKeeper.round_trust`, 0 for quarantined devices), and
after the round (:meth:`TrustKeeper.after_round`) turns its public record into evidence, updates
every device, writes the records and their Merkle root to the store, and -- with a chain -- sends
one ``commitTrust`` transaction that anchors the root and sets the new trust, from which the
contract derives each device's PoW difficulty for the next round (``setPowRange`` is sent once,
when the keeper is made).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ppbfl.defense.decision import REASON_CODES
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.round import RoundResult
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.evidence import round_evidence
from ppbfl.trust.pow import pow_bits_for
from ppbfl.trust.record import TrustRecord
from ppbfl.trust.reputation import TRUST_ONE, DeviceTrust, Evidence, initial_state, update
from ppbfl.trust.store import TrustStore

__all__ = ["RoundTrust", "TrustKeeper"]

_MISSING = Evidence(REASON_CODES["missing upload"])


@dataclass(frozen=True)
class RoundTrust:
    """What :meth:`TrustKeeper.after_round` did: the stored ``root``, the ``records``, devices now
    ``quarantined``, and the gas of the ``commitTrust`` transaction (0 without a chain)."""

    round: int
    root: bytes
    records: tuple[TrustRecord, ...]
    quarantined: tuple[int, ...]
    gas: int

    def trust(self, device: int) -> float:
        """Reputation of ``device`` after the round (float in [0, 1])."""
        return next(x.after.trust for x in self.records if x.device == device) / TRUST_ONE


class TrustKeeper:
    """Reputation of ``devices`` kept in ``store`` (and on chain with ``ledger``).

    Args:
        devices: the device indices of the federation.
        config: the model's parameters.
        store: the off-chain store (resumed: devices with records start from their latest state).
        ledger: the chain ledger of the rounds (None: no anchoring, no on-chain PoW).
    """

    def __init__(self, devices: Collection[int], config: TrustConfig | None = None, *, store: TrustStore | None = None,
                 ledger: ChainLedger | None = None) -> None:
        self.config = TrustConfig() if config is None else config
        self.store = TrustStore() if store is None else store
        self.ledger = ledger
        start = initial_state(self.config)
        stored = self.store.latest_states()
        self.states: dict[int, DeviceTrust] = {i: stored.get(i, start) for i in sorted(devices)}
        self.last: RoundTrust | None = None
        """What the latest :meth:`after_round` did."""
        if ledger is not None:
            ledger.contract.set_pow_range(self.config.pow_min_bits, self.config.pow_max_bits, self.config.q15(self.config.pow_full_trust))

    def round_trust(self) -> dict[int, float]:
        """Device -> the trust the next round weights it with (Q1.15 as a float; 0 in quarantine)."""
        return {i: s.weight_trust / TRUST_ONE for i, s in self.states.items()}

    def reputation(self) -> dict[int, float]:
        """Device -> its reputation now (float in [0, 1]; quarantined devices keep theirs)."""
        return {i: s.trust / TRUST_ONE for i, s in self.states.items()}

    @property
    def quarantined(self) -> tuple[int, ...]:
        """Devices in quarantine now."""
        return tuple(i for i, s in self.states.items() if s.quarantined)

    def after_round(
        self, result: RoundResult, *, pow_failures: Collection[int] = (), ids_flags: Mapping[int, int] | None = None,
    ) -> RoundTrust:
        """Update, store and (with a ledger) anchor round ``result.round``.

        ``pow_failures``: devices whose stamp the contract refused (also taken from ``result.missing``
        reasons naming ``BadPow``); ``ids_flags``: device -> anomaly flags from the IDS.

        Raises:
            ConfigError: as :func:`~ppbfl.trust.evidence.round_evidence`; TrustStoreError: the round is already stored;
            ChainRevertError: the contract refused the commitment.
        """
        refused = set(pow_failures) | {i for i, why in result.missing.items() if "BadPow" in why}
        evidence = round_evidence(result, pow_failures=refused, ids_flags=ids_flags)
        decisions = dict(zip(result.devices, result.decision.decisions))
        commitments = self.ledger.commitments(result.round, self.states) if self.ledger is not None else {}
        start = initial_state(self.config)
        records = []
        for i in sorted(set(self.states) | set(evidence)):
            seen = evidence.get(i, _MISSING)  # a registered device the round never heard from did not upload
            before = self.states.get(i, start)
            after = update(before, seen, self.config)
            decision = decisions.get(i)
            records.append(TrustRecord(
                result.round, i, seen, math.nan if decision is None else decision.cosine,
                0.0 if decision is None else decision.weight, before, after,
                pow_bits_for(after.weight_trust, self.config), commitments.get(i),
            ))
            self.states[i] = after
        root = self.store.add_round(result.round, records)
        gas = 0
        if self.ledger is not None:
            ids = [self.ledger.device_ids[x.device] for x in records]
            gas = self.ledger.contract.commit_trust(result.round, root, ids, [x.after.weight_trust for x in records])
        self.last = RoundTrust(result.round, root, tuple(records), self.quarantined, gas)
        return self.last
