"""One round's trust step as a pure function: evidence -> records (before/after states) and their root.

The coordinator's :class:`~ppbfl.trust.keeper.TrustKeeper` and every edge node's
:class:`~ppbfl.trust.witness.TrustWitness` call the same :func:`round_records`, so t nodes that
saw the same round compute the same records, root and trust words bit for bit (integer rule,
:mod:`ppbfl.trust.reputation`), and sign them (:class:`~ppbfl.chain.votes.TrustVote`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

from ppbfl.chain.merkle import root_of_leaves
from ppbfl.defense.decision import REASON_CODES, DeviceDecision, reason_code
from ppbfl.errors import ConfigError
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.pow import pow_bits_for
from ppbfl.trust.record import TrustRecord, record_leaves
from ppbfl.trust.reputation import DeviceTrust, Evidence, initial_state, update

__all__ = ["agreed_evidence", "records_root", "round_records"]

_MISSING = Evidence(REASON_CODES["missing upload"])


def agreed_evidence(
    devices: Collection[int], decided: Mapping[int, DeviceDecision], refused: Collection[int] = (),
) -> dict[int, Evidence]:
    """The evidence every edge node agrees on: each verified device's decision reason (``decided``:
    device -> the decision the node signed), ``"missing upload"`` for every other of ``devices``
    (no verified upload: dropped, refused PoW or failed proof alike), and ``pow_failed`` for the
    devices in ``refused`` (the round's PoW refusals on chain: ``commitTrust`` takes the vote only
    if they are exactly the contract's). No IDS evidence.

    Raises:
        ConfigError: a decision reason without a code, or a refused device not in ``devices`` (naming it).
    """
    pow_failed = set(refused)
    unknown = sorted(pow_failed - set(devices))
    if unknown:
        raise ConfigError("refused", f"devices {unknown[:8]} are not registered")
    evidence: dict[int, Evidence] = {}
    for i in sorted(set(devices) | set(decided)):
        if i in decided:
            try:
                evidence[i] = Evidence(reason_code(decided[i].reason), i in pow_failed)
            except KeyError:
                raise ConfigError("decision.reason", f"device {i}: {decided[i].reason!r} has no reason code") from None
        else:
            evidence[i] = Evidence(_MISSING.reason, i in pow_failed)
    return evidence


def round_records(
    round: int, states: Mapping[int, DeviceTrust], evidence: Mapping[int, Evidence], decided: Mapping[int, DeviceDecision],
    commitments: Mapping[int, bytes], config: TrustConfig,
) -> list[TrustRecord]:
    """The records of ``round`` for every device in ``states`` or ``evidence`` (ascending): each
    updated from its state (new devices: :func:`initial_state`) with its evidence (none: missing
    upload), with its decision's cosine and weight (``decided``) and its chain ``commitments``."""
    start = initial_state(config)
    records = []
    for i in sorted(set(states) | set(evidence)):
        seen = evidence.get(i, _MISSING)
        before = states.get(i, start)
        after = update(before, seen, config)
        decision = decided.get(i)
        records.append(TrustRecord(
            round, i, seen, math.nan if decision is None else decision.cosine, 0.0 if decision is None else decision.weight,
            before, after, pow_bits_for(after.weight_trust, config), commitments.get(i),
        ))
    return records


def records_root(records: Sequence[TrustRecord]) -> bytes:
    """The Merkle root of ``records`` as the store computes it (leaves sorted by device)."""
    ordered = sorted(records, key=lambda x: x.device)
    return root_of_leaves([leaf.tobytes() for leaf in record_leaves(ordered)])
