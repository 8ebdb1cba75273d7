"""FLAME's public decision from a round's opened shares, as every edge node and the coordinator run it.

Rule ``"flame"`` (:mod:`ppbfl.defense.flame`): per device the node opens, like the cosine rule,
the share-consistency test and the validity value ``z``, then ``||g_i||^2`` (degree ``2(t - 1)``,
honest majority); then, for every pair of devices still in, ``<g_i, g_j>`` from the
:class:`~ppbfl.protocol.messages.GramShares` of every point (same degree). The opened Gram matrix
goes into the deterministic clustering; the kept devices get public weight 1 and clip factor
``c_i = min(1, S / ||g_i||)`` (fixed-point weight ``enc(c_i)``), the total weight is the number
kept, so the reconstructed aggregate is ``sum_kept c_i g_i / |kept|``. A device with public trust 0
(quarantined by the trust keeper) is rejected ``"zero trust"`` before clustering; FLAME weighs every
kept device alike, so other trust values do not change the aggregate.
"""

from __future__ import annotations

import numpy as np

from ppbfl.defense.decision import DeviceDecision, aggregation_weights, norm_reason, signed
from ppbfl.defense.flame import OUTSIDE_REASON, flame_select
from ppbfl.defense.submission import codec_for_length
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.messages import FlameAggregateRequest
from ppbfl.protocol.verification import RoundDecision, screen
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["clip_bound", "decide_flame_request", "pair_count", "pair_index"]


def pair_count(m: int) -> int:
    """Number of pairs ``i < j`` among ``m`` devices: ``m (m - 1) / 2``."""
    return m * (m - 1) // 2


def pair_index(i: int, j: int, m: int) -> int:
    """Position of the pair ``(i, j)``, ``0 <= i < j < m``, in the row-major upper triangle."""
    return i * m - i * (i + 1) // 2 + (j - i - 1)


def clip_bound(decision: RoundDecision, frac_bits: int) -> float:
    """FLAME's clip bound ``S`` of a decision: the median of ``||g_i||`` (from the opened ``||g_i||^2``)
    over the accepted devices, computed as :func:`ppbfl.defense.flame.flame_select` does; 0 if none."""
    kept = [d.norm2 for d in decision.decisions if d.accepted and d.norm2 is not None]
    if not kept:
        return 0.0
    return float(np.median(np.sqrt(np.array(kept, dtype=np.float64) * 2.0 ** (-2 * frac_bits))))


def decide_flame_request(request: FlameAggregateRequest, reference: np.ndarray, *, t: int, codec: FixedPointCodec) -> RoundDecision:
    """The FLAME decision a :class:`FlameAggregateRequest` implies (what every node and the
    coordinator compute, so honest parties agree by construction).

    ``reference``: the verify request's encoded reference ((d,) uint64; only its length is used:
    FLAME needs no reference). ``dot_ref`` of the result is all 0 (nothing opened).

    Raises:
        ReconstructionError: a scalar has more wrong shares than can be corrected.
    """
    points = tuple(int(x) for x in request.points)
    field = codec.field
    p = field.p
    degree = int(request.norm2_degree)
    m = request.norm2.shape[1]
    screening = screen(
        points, request.consistency, t, field=field, mismatched=request.rejected, proof_consistency=request.proof_consistency,
    )
    rejected = dict(screening.rejected)
    wrong: set[int] = set()

    def opened(values: np.ndarray) -> np.ndarray:
        result = robust_reconstruct(values, points, degree + 1, field=field)
        wrong.update(result.wrong_points)
        return result.secret

    live = [i for i in range(m) if i not in rejected]
    if live:
        for i, z in zip(live, opened(request.validity[:, live]).tolist()):
            if z != 0:
                rejected[i] = "out of range: the validity proof fails"
        live = [i for i in live if i not in rejected]
    norm2 = np.zeros(m, dtype=np.uint64)
    signed_norm2: dict[int, int] = {}
    if live:
        norm2[live] = opened(request.norm2[:, live])
        for i in live:
            signed_norm2[i] = signed(int(norm2[i]), p)
            why = norm_reason(signed_norm2[i])
            if why is not None:
                rejected[i] = why
        live = [i for i in live if i not in rejected]
    for i in live:  # quarantined devices (public trust 0) are not clustered; other trust values are not used
        if not request.trust[i] > 0:
            rejected[i] = "zero trust"
    live = [i for i in live if i not in rejected]
    selection = None
    if live:
        scale = 2.0 ** (-2 * codec.frac_bits)
        gram = np.diag([signed_norm2[i] * scale for i in live])
        pairs = [(a, b) for a in range(len(live)) for b in range(a + 1, len(live))]
        if pairs:
            columns = [pair_index(live[a], live[b], m) for a, b in pairs]
            for (a, b), value in zip(pairs, opened(request.gram[:, columns]).tolist()):
                gram[a, b] = gram[b, a] = signed(int(value), p) * scale
        selection = flame_select(gram)
    decisions: list[DeviceDecision] = []
    position = {i: k for k, i in enumerate(live)}
    kept = [live[k] for k in selection.kept] if selection is not None else []
    for i in range(m):
        if i in rejected:
            decisions.append(DeviceDecision(float("nan"), signed_norm2.get(i), 0.0, 1.0, rejected[i]))
        elif i in kept:
            assert selection is not None
            decisions.append(DeviceDecision(float("nan"), signed_norm2[i], 1.0, float(selection.clips[position[i]]), "accepted"))
        else:
            decisions.append(DeviceDecision(float("nan"), signed_norm2[i], 0.0, 1.0, OUTSIDE_REASON))
    weights = np.zeros(m, dtype=np.uint64)
    if kept:
        safe = codec_for_length(codec, reference.size)
        weights[kept] = aggregation_weights([1.0] * len(kept), [decisions[i].clip for i in kept], codec, safe.max_abs)
    return RoundDecision(
        norm2, np.zeros(m, dtype=np.uint64), tuple(decisions), weights, float(len(kept)), tuple(sorted(wrong)), dict(screening.suspects),
    )
