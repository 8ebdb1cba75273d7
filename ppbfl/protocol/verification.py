"""Opening a round's verification scalars and deciding, as every edge node and the aggregator do.

Each online edge node ``j`` contributed, per device ``i``: the consistency value
``s_ij = <lambda, g_i>_j + rho_ij``, its share of ``<g_i, r>`` and its share of ``||g_i||^2``.
:func:`decide_request` screens the devices (:func:`screen`: commitment mismatches, the
share-consistency test) and :func:`open_and_decide` opens the rest (robustly: a wrong value is corrected and its sender named while
enough nodes are online), runs the share-consistency test, and applies the public decision of
:mod:`ppbfl.defense.decision`. It is deterministic, so honest parties given the same shares reach
the same result; a node that reports different decisions is caught by comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.defense.consistency import check_consistency
from ppbfl.defense.decision import (
    DeviceDecision,
    aggregation_weights,
    decide_public_reference,
    encoded_norm2,
    reason_code,
)
from ppbfl.defense.submission import codec_for_length
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import PrimeField
from ppbfl.protocol.messages import AggregateRequest
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["RoundDecision", "Screening", "decide_request", "open_and_decide", "screen"]


@dataclass(frozen=True)
class RoundDecision:
    """The public outcome of a round's verification.

    Attributes:
        norm2, dot_ref: (m,) uint64 opened ``||g_i||^2`` and ``<g_i, r>`` (0 where not opened).
        decisions: one :class:`DeviceDecision` per device.
        weights: (m,) uint64 public fixed-point aggregation weights ``enc(w_i c_i)`` (0 if rejected).
        total_weight: ``sum_i w_i`` (float) over accepted devices.
        wrong_points: edge nodes caught sending wrong scalar shares.
        suspects: device -> points named by a failed consistency check.
    """

    norm2: np.ndarray
    dot_ref: np.ndarray
    decisions: tuple[DeviceDecision, ...]
    weights: np.ndarray
    total_weight: float
    wrong_points: tuple[int, ...]
    suspects: dict[int, tuple[int, ...]]

    @property
    def reason_codes(self) -> list[int]:
        """The decisions' reason codes (:data:`ppbfl.defense.decision.REASON_CODES`)."""
        return [reason_code(d.reason) for d in self.decisions]


def _open(values: np.ndarray, points: tuple[int, ...], degree: int, codec: FixedPointCodec) -> tuple[np.ndarray, set[int]]:
    result = robust_reconstruct(values, points, degree + 1, field=codec.field)
    return result.secret, set(result.wrong_points)


@dataclass(frozen=True)
class Screening:
    """Devices out before any scalar is opened: ``rejected`` (column -> reason) and, for a failed
    consistency check, ``suspects`` (column -> points whose values disagree with the rest)."""

    rejected: dict[int, str]
    suspects: dict[int, tuple[int, ...]]


def screen(
    points: Sequence[int], consistency: np.ndarray, t: int, *, field: PrimeField, mismatched: Sequence[int] = (),
    proof_consistency: np.ndarray | None = None,
) -> Screening:
    """Reject the ``mismatched`` columns (``"commitment mismatch"``), then every column of the (k, m)
    ``consistency`` values (row ``r`` from node ``points[r]``) that fails the share-consistency test,
    then every column whose validity proof's bits (``proof_consistency``, (k, m)) fail it."""
    points = tuple(int(x) for x in points)
    m = consistency.shape[1]
    rejected = {i: "commitment mismatch" for i in mismatched if 0 <= i < m}
    suspects: dict[int, tuple[int, ...]] = {}
    checks = [(consistency, "inconsistent shares")]
    if proof_consistency is not None:
        checks.append((proof_consistency, "inconsistent shares: validity proof"))
    for i in range(m):
        for values, reason in checks:
            if i in rejected:
                break
            check = check_consistency(values[:, i], t, points=points, field=field)
            if not check.consistent:
                rejected[i] = reason
                suspects[i] = check.suspects
    return Screening(rejected, suspects)


def decide_request(
    request: AggregateRequest, reference: np.ndarray, *, t: int, tau: float, codec: FixedPointCodec, rescale: bool = False,
) -> RoundDecision:
    """The decision an :class:`AggregateRequest` implies: what every edge node and the aggregator
    compute from the same request, so honest parties agree by construction.

    ``reference``: the encoded public reference ((d,) uint64); fixes ``||r||^2`` and ``d``.
    ``rescale``: FLTrust's norm rescaling (the setup's :attr:`SetupEdge.rescale`, :func:`open_and_decide`).

    Raises:
        ReconstructionError: a scalar has more wrong shares than can be corrected.
    """
    screening = screen(
        request.points, request.consistency, t, field=codec.field, mismatched=request.rejected,
        proof_consistency=request.proof_consistency,
    )
    return open_and_decide(
        request.points, request.dot_ref, request.norm2, request.norm2_degree, reference, request.trust, screening,
        t=t, tau=tau, codec=codec, validity=request.validity, rescale=rescale,
    )


def open_and_decide(
    points: Sequence[int],
    dot_ref: np.ndarray,
    norm2: np.ndarray,
    norm2_degree: int,
    reference: np.ndarray,
    trust: np.ndarray,
    screening: Screening,
    *,
    t: int,
    tau: float,
    codec: FixedPointCodec,
    validity: np.ndarray | None = None,
    rescale: bool = False,
) -> RoundDecision:
    """Open the (k, m) share matrices (row ``r`` from node ``points[r]``) and decide every device.

    ``validity``: (k, m) shares of each device's validity value ``z`` (degree ``norm2_degree``;
    :mod:`ppbfl.defense.validity`): a device whose ``z`` opens to anything but 0 is rejected as
    ``"out of range"`` before its norm and cosine are opened.

    ``rescale``: weight each accepted update by ``w_i ||r|| / ||g_i||`` (FLTrust: every update
    scaled to the reference norm) instead of clipping it, ``w_i min(1, ||r|| / ||g_i||)``. The
    factor is a function of the already-opened ``||g_i||^2`` and the public ``r``: nothing more
    is opened. The weights' no-wrap check then bounds each update's entries by its opened norm
    (:func:`~ppbfl.defense.decision.aggregation_weights`).

    Args:
        norm2_degree: ``2(t - 1)`` for honest-majority shares, ``t - 1`` for Beaver shares.
        reference: the encoded public reference ((d,) uint64); fixes ``||r||^2`` and ``d``.
        trust: (m,) float64 in ``[0, 1]``.
        screening: the devices already out (:func:`screen`); their scalars are not opened.

    Raises:
        ReconstructionError: a scalar has more wrong shares than can be corrected.
    """
    points = tuple(int(x) for x in points)
    p = codec.field.p
    m = dot_ref.shape[1]
    rejected = dict(screening.rejected)
    wrong: set[int] = set()
    live = [i for i in range(m) if i not in rejected]
    if validity is not None and live:
        opened_z, bad = _open(validity[:, live], points, norm2_degree, codec)
        wrong |= bad
        for i, z in zip(live, opened_z.tolist()):
            if z != 0:
                rejected[i] = "out of range: the validity proof fails"
        live = [i for i in live if i not in rejected]
    opened_norm2 = np.zeros(m, dtype=np.uint64)
    opened_dot = np.zeros(m, dtype=np.uint64)
    if live:
        opened_norm2[live], bad = _open(norm2[:, live], points, norm2_degree, codec)
        wrong |= bad
        opened_dot[live], bad = _open(dot_ref[:, live], points, t - 1, codec)
        wrong |= bad
    ref_norm2 = encoded_norm2(reference, p)
    decisions = []
    for i in range(m):
        if i in rejected:
            decisions.append(DeviceDecision(float("nan"), None, 0.0, 1.0, rejected[i]))
        else:
            decisions.append(decide_public_reference(
                int(opened_norm2[i]), int(opened_dot[i]), ref_norm2, float(trust[i]), tau, p, rescale=rescale,
            ))
    accepted = [i for i, d in enumerate(decisions) if d.accepted]
    weights = np.zeros(m, dtype=np.uint64)
    if accepted:
        safe = codec_for_length(codec, reference.size)
        weights[accepted] = aggregation_weights(
            [decisions[i].weight for i in accepted], [decisions[i].clip for i in accepted], codec, safe.max_abs,
            norms2=[int(opened_norm2[i]) for i in accepted] if rescale else None,
        )
    total = float(sum(decisions[i].weight for i in accepted))
    return RoundDecision(opened_norm2, opened_dot, tuple(decisions), weights, total, tuple(sorted(wrong)), dict(screening.suspects))
