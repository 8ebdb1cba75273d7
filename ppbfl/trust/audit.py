"""Check a trust store against the chain: the anchored roots and the agreed decisions.

``commitTrust`` is the coordinator's transaction, so the chain does not by itself stop a relay
from anchoring records it made up. Anyone can catch it: every record's evidence must be what the
chain recorded (the reason code agreed by ``t`` edge nodes, or "missing upload" for a device of the
round without a decision), its ``before`` must be the device's previous ``after``, its ``after``
the update rule applied to them (and the trust ``commitTrust`` wrote), and the round's leaves must
fold to the anchored root.

PoW refusals are on chain too (the contract's per-round record of the devices' own refused
stamps): each record's ``pow_failed`` must be that record. IDS flags are not on chain: they are
checked for arithmetic, not for truth (a round's IDS flags rest on the anchored root's t signers,
each of whom checked the edge nodes' signed reports, :mod:`ppbfl.trust.ids_reports`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ppbfl.chain.merkle import root_of_leaves
from ppbfl.chain.rounds import RoundsContract
from ppbfl.defense.decision import REASON_CODES
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.record import TrustRecord, record_leaves
from ppbfl.trust.reputation import DeviceTrust, initial_state, update
from ppbfl.trust.store import TrustStore

__all__ = ["audit_records", "audit_store"]

_MISSING = REASON_CODES["missing upload"]


def audit_records(
    records: Sequence[TrustRecord], previous: Mapping[int, DeviceTrust], agreed: Mapping[int, int], devices_in_round: int,
    anchor: bytes, config: TrustConfig, committed: Mapping[int, int] | None = None, refused: Collection[int] | None = None,
) -> list[str]:
    """Problems with one round's ``records`` (empty: consistent).

    ``previous``: each device's state after the round before (absent: a new device);
    ``agreed``: device -> reason code agreed on chain; ``devices_in_round``: devices ``0..k-1``
    registered when the round opened; ``anchor``: the root the contract holds for the round;
    ``committed``: device -> Q1.15 trust the round's ``commitTrust`` wrote (None: not checked);
    ``refused``: the devices whose PoW stamp the contract refused in the round (None: not checked).
    """
    problems = []
    ordered = sorted(records, key=lambda x: x.device)
    if not ordered or root_of_leaves([leaf.tobytes() for leaf in record_leaves(ordered)]) != anchor:
        problems.append("the records do not fold to the anchored root")
    seen = {x.device for x in ordered}
    absent = sorted(set(range(devices_in_round)) - seen)
    if absent:
        problems.append(f"devices {absent[:8]} of the round have no record")
    start = initial_state(config)
    for x in ordered:
        reason = agreed.get(x.device, _MISSING)
        if x.evidence.reason != reason:
            problems.append(f"device {x.device}: evidence reason {x.evidence.reason}, the chain agreed {reason}")
        if refused is not None and x.evidence.pow_failed != (x.device in refused):
            problems.append(f"device {x.device}: pow_failed {x.evidence.pow_failed}, the chain's refusal record says {x.device in refused}")
        before = previous.get(x.device, start)
        if x.before != before:
            problems.append(f"device {x.device}: before {x.before} is not its previous state {before}")
        if x.after != update(x.before, x.evidence, config):
            problems.append(f"device {x.device}: after {x.after} does not follow from its evidence")
        if committed is not None and committed.get(x.device) != x.after.weight_trust:
            problems.append(f"device {x.device}: the chain holds trust {committed.get(x.device)}, the record {x.after.weight_trust}")
    return problems


def audit_store(store: TrustStore, contract: RoundsContract, config: TrustConfig) -> dict[int, list[str]]:
    """Round -> problems, for every stored round (chain device ids = device indices, as
    :class:`~ppbfl.protocol.ledger.ChainLedger` registers them)."""
    states: dict[int, DeviceTrust] = {}
    report = {}
    for r in store.rounds():
        state = contract.round_state(r)
        agreed = {d.device_id: d.reason for d in contract.decisions(r)} if state.decisions_hash != bytes(32) else {}
        records = store.records(r)
        committed = contract.committed_trust(r)
        refused = set(contract.pow_refusals(r))
        report[r] = audit_records(records, states, agreed, state.device_count, state.anchor, config, committed, refused)
        states = {**states, **{x.device: x.after for x in records}}
    return report
