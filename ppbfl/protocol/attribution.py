"""Disputes between an edge node's word and a device's committed upload: who leaves the round.

An edge node can speak against a device in four ways: it does not hold the device's upload (or its
validity proof), the upload it holds does not match the device's on-chain commitment, or its
consistency value (``<lambda, g_j> + rho_j``) is off the polynomial of the other nodes' values.
Each is either true (the device equivocated, dealt the node a bad share or never sent it) or the
node lies, and nothing a third party can see tells which: uploads are not signed by the device
(a node can make up leaves whose root is not the commitment), non-delivery leaves no trace, and
a consistency value can only be recomputed from the node's share, whose opening would hand a share
of a possibly honest device to the relay.

So a dispute is settled by numbers, never by a node's word alone (:func:`settle`). At most
``e = floor((k - t) / 2)`` of the ``k`` online nodes lie (DESIGN §2), so a claim made by more than
``e`` nodes has an honest node behind it and the device is out. A claim made by at most ``e``
nodes may be a lie: those nodes leave the round (the others hold the device's committed upload, so
its update is well defined without them) and the device stays. Dropped nodes come out of one
budget of ``e`` per round, spent greedily on the node named in the most disputes (a liar who
speaks against many devices goes first), and the round always keeps at least ``t`` nodes.

What this gives: no honest device is excluded by the word of at most ``e`` nodes, and an edge node
that disputes honest devices only takes itself out of the round. What it does not give: naming.
A dropped node is not reported as a liar (on chain or in ``RoundResult.liars``), because a
malicious device can produce every one of these disputes against an honest node; the price is
that such a device can take up to ``e`` honest nodes out of one round. Naming needs evidence a
third party can check: device-signed uploads for mismatch claims, and device-signed consistency
values for the consistency check (docs/security.md, "Edge nodes").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ppbfl.defense.consistency import check_consistency
from ppbfl.field.prime_field import GF61, PrimeField

__all__ = ["MISMATCH", "Dispute", "Settlement", "settle", "verify_disputes"]

MISMATCH = "commitment mismatch"
"""The reason of a device whose upload some node shows not to match its on-chain commitment."""


@dataclass(frozen=True)
class Dispute:
    """Edge nodes ``nodes`` speak against device ``device``: ``claim`` says what they say (it becomes
    part of a dropped node's reason) and ``reason`` is the device's reason if the claim stands."""

    device: int
    nodes: tuple[int, ...]
    claim: str
    reason: str


@dataclass(frozen=True)
class Settlement:
    """Outcome of :func:`settle`: ``dropped`` (node -> why it leaves the round) and ``upheld`` (the
    disputes that stand: their devices are out)."""

    dropped: dict[int, str] = field(default_factory=dict)
    upheld: tuple[Dispute, ...] = ()


def settle(disputes: Sequence[Dispute], online: Sequence[int], t: int, budget: int) -> Settlement:
    """Decide ``disputes`` among the ``online`` nodes of a threshold-``t`` round.

    A dispute whose nodes are all dropped no longer excludes its device. Nodes are dropped one at
    a time, the one in the most open disputes first (ties: the lowest index), while fewer than
    ``budget`` nodes were dropped, at least ``t`` stay online, and the node is in a dispute that
    dropping at most the remaining budget can resolve. A dispute with more than ``budget`` nodes
    stands at once.

    Args:
        disputes: the round's disputes (``nodes`` subsets of ``online``; empty ones are ignored).
        online: the nodes taking part (``k`` of them).
        t: the threshold.
        budget: how many nodes may still be dropped this round (callers pass what is left of
            ``floor((k0 - t) / 2)``, ``k0`` the nodes online when the round's disputes began).
    """
    alive = list(online)
    open_ = [d for d in disputes if d.nodes]
    dropped: dict[int, list[Dispute]] = {}
    while len(dropped) < budget and len(alive) - len(dropped) > t:
        left = budget - len(dropped)
        counts = Counter(
            j for d in open_ for j in d.nodes
            if j not in dropped and len(set(d.nodes) - set(dropped)) <= left
        )
        if not counts:
            break
        node = min(counts, key=lambda j: (-counts[j], j))
        dropped[node] = [d for d in open_ if node in d.nodes]
    upheld = tuple(d for d in open_ if not set(d.nodes) <= set(dropped))
    reasons = {}
    for j, against in dropped.items():
        claims: dict[str, list[int]] = {}
        for d in against:
            claims.setdefault(d.claim, []).append(d.device)
        said = "; ".join(f"{claim}: devices {devices[:16]}" for claim, devices in claims.items())
        reasons[j] = f"{said} (disputes nobody can settle: dropped for this round, the devices stay)"
    return Settlement(reasons, upheld)


def verify_disputes(
    devices: Sequence[int], mismatched: Mapping[int, Sequence[int]], points: Sequence[int], consistency: np.ndarray,
    proof_consistency: np.ndarray, t: int, *, field: PrimeField = GF61,
) -> list[Dispute]:
    """The disputes of the verify step, one per device at most.

    Args:
        devices: the verified devices, in column order (m of them).
        mismatched: node -> the columns it reports as not matching their commitment.
        points: the nodes whose values are the rows of ``consistency`` / ``proof_consistency``.
        consistency, proof_consistency: (k, m) uint64 in ``[0, p)``: each node's consistency value
            of each device's update and of its validity proof.
        t: the threshold (the values are a degree-``(t - 1)`` sharing when everyone is honest).

    A device some nodes report as mismatched is disputed by those nodes (reason ``MISMATCH``);
    otherwise one whose consistency values fail the test but decode within ``floor((k - t) / 2)``
    errors (:func:`~ppbfl.defense.consistency.check_consistency`'s ``suspects``) is disputed by
    the suspects. Values that do not decode raise no dispute: the device is rejected by the screen.
    """
    points = tuple(int(j) for j in points)
    disputes = []
    for k, device in enumerate(devices):
        claimants = tuple(j for j in points if k in mismatched.get(j, ()))
        if claimants:
            disputes.append(Dispute(device, claimants, "claims a commitment mismatch", MISMATCH))
            continue
        for values, claim, reason in (
            (consistency, "consistency value off the device's polynomial", "inconsistent shares"),
            (proof_consistency, "validity-proof consistency value off the device's polynomial", "inconsistent shares: validity proof"),
        ):
            check = check_consistency(values[:, k], t, points=points, field=field)
            if not check.consistent:
                if check.suspects:
                    disputes.append(Dispute(device, check.suspects, claim, reason))
                break
    return disputes
