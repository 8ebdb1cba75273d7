"""FLAME's public decision from a round's opened shares, as every edge node and the coordinator run it.

Rule ``"flame"`` (:mod:`ppbfl.defense.flame`): per device the node opens, like the cosine rule,
the share-consistency test and the validity value ``z``, then ``||g_i||^2`` (degree ``2(t - 1)``
in honest-majority mode, ``t - 1`` from Beaver triples); then, for every pair of devices still in,
``<g_i, g_j>`` from the :class:`~ppbfl.protocol.messages.GramShares` of every point (same degree:
the request's ``norm2_degree``). The opened Gram matrix
goes into the deterministic clustering; the kept devices get public weight 1 and clip factor
``c_i = min(1, S / ||g_i||)`` (fixed-point weight ``enc(c_i)``), the total weight is the number
kept, so the reconstructed aggregate is ``sum_kept c_i g_i / |kept|``. A device with public trust 0
(quarantined by the trust keeper) is rejected ``"zero trust"`` before clustering; FLAME weighs every
kept device alike, so other trust values do not change the aggregate.

Clustering the local models (``flame_space = "models"``, the FLAME paper's Algorithm 1): the verify
request's public reference is the round's global model ``G`` (encoded with the no-wrap codec,
checked against the announced model hash by :func:`check_global_model`), so the verify shares'
``dot_ref`` are degree-``(t - 1)`` shares of ``<G, g_i>`` (linear: no product, no mask). They are
opened robustly beside the Gram matrix and the clustered Gram matrix is the models'
``<G + g_i, G + g_j> = ||G||^2 + <G, g_i> + <G, g_j> + <g_i, g_j>`` (``||G||^2`` public), while the
clip factors come from the **updates'** norms, as the plaintext twin
:class:`ppbfl.fl.aggregators.FlameModels` does. No wrap: the opened ``<G, g_i>`` is its integer
value when ``||g_i||^2 ||G||^2 < ((p - 1) / 2)^2`` (Cauchy-Schwarz, exact integers on the opened
``||g_i||^2``); a device outside it is rejected ``"out of range"``, one whose local model is zero
``"zero norm"`` (it has no cosine), before clustering.
"""

from __future__ import annotations

import numpy as np
from eth_hash.auto import keccak

from ppbfl.defense.decision import DeviceDecision, aggregation_weights, norm_reason, signed
from ppbfl.defense.flame import OUTSIDE_REASON, flame_select
from ppbfl.defense.submission import codec_for_length
from ppbfl.defense.validity import centred
from ppbfl.errors import EncodingRangeError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.messages import FlameAggregateRequest
from ppbfl.protocol.verification import RoundDecision, screen
from ppbfl.sharing.robust import robust_reconstruct

__all__ = [
    "FLAME_SPACES", "GlobalModelError", "check_global_model", "clip_bound", "decide_flame_request", "exact_norm2", "model_hash",
    "pair_count", "pair_index",
]

FLAME_SPACES = ("updates", "models")
"""What rule ``"flame"`` clusters (:attr:`ppbfl.protocol.messages.SetupEdge.flame_space`)."""


class GlobalModelError(PPBFLError, ValueError):
    """The global model of a FLAME-on-models round is refused by ``party``: ``field`` (``"model"``,
    ``"model_hash"`` or ``"reference"``) is not what the announced model implies."""

    def __init__(self, party: str, field: str, message: str) -> None:
        self.party, self.field = party, field
        super().__init__(f"{party}: verify request field {field!r}: {message}")


def model_hash(model: np.ndarray) -> bytes:
    """keccak-256 of a model's float32 little-endian bytes: the announcement's ``model_hash``
    (as :meth:`ppbfl.protocol.ledger.ChainLedger.model_hash`)."""
    return keccak(np.ascontiguousarray(model, dtype="<f4").tobytes())


def check_global_model(
    model: np.ndarray, announced: bytes, reference: np.ndarray | None, codec: FixedPointCodec, d: int, *, party: str,
) -> np.ndarray:
    """Check the public global model ``G`` ((d,) float32) of a FLAME-on-models round and return its
    encoding ((d,) uint64 under :func:`~ppbfl.defense.submission.codec_for_length`).

    ``announced``: the round's announced model hash; ``reference``: the encoded reference the
    request carries (must be ``G``'s encoding, the vector the shares of ``<G, g_i>`` are taken with;
    None: not compared, the coordinator's own check before it sends the request).

    Raises:
        GlobalModelError: naming the field: ``model`` (shape, or an entry beyond the no-wrap bound),
            ``model_hash`` (not ``G``'s hash), ``reference`` (not ``G``'s encoding).
    """
    if model.shape != (d,):
        raise GlobalModelError(party, "model", f"shape {model.shape}, expected ({d},)")
    if model_hash(model) != bytes(announced):
        raise GlobalModelError(party, "model_hash", "the global model does not hash to the announced model hash")
    try:
        encoded = codec_for_length(codec, d).encode(np.asarray(model, dtype=np.float64))
    except EncodingRangeError as error:
        raise GlobalModelError(party, "model", f"entry {error.index} = {error.value!r} is beyond the no-wrap bound {error.max_abs!r}") from None
    if reference is not None and (reference.shape != (d,) or not np.array_equal(reference, encoded)):
        raise GlobalModelError(party, "reference", "is not the encoding of the global model")
    return encoded


def pair_count(m: int) -> int:
    """Number of pairs ``i < j`` among ``m`` devices: ``m (m - 1) / 2``."""
    return m * (m - 1) // 2


def pair_index(i: int, j: int, m: int) -> int:
    """Position of the pair ``(i, j)``, ``0 <= i < j < m``, in the row-major upper triangle."""
    return i * m - i * (i + 1) // 2 + (j - i - 1)


def exact_norm2(encoded: np.ndarray, p: int) -> int:
    """``||x||^2`` of the signed representatives of ``encoded`` ((d,) uint64 in ``[0, p)``) as an exact
    integer: one int64 dot product when it cannot overflow (any vector within the no-wrap bound),
    else Python integers."""
    x = centred(encoded, p)
    largest = int(np.abs(x).max()) if x.size else 0
    if largest * largest * x.size < 1 << 63:
        return int(np.dot(x, x))
    return sum(v * v for v in x.tolist())


def clip_bound(decision: RoundDecision, frac_bits: int) -> float:
    """FLAME's clip bound ``S`` of a decision: the median of ``||g_i||`` (from the opened ``||g_i||^2``)
    over the accepted devices, computed as :func:`ppbfl.defense.flame.flame_select` does; 0 if none."""
    kept = [d.norm2 for d in decision.decisions if d.accepted and d.norm2 is not None]
    if not kept:
        return 0.0
    return float(np.median(np.sqrt(np.array(kept, dtype=np.float64) * 2.0 ** (-2 * frac_bits))))


def decide_flame_request(
    request: FlameAggregateRequest, reference: np.ndarray, *, t: int, codec: FixedPointCodec, space: str = "updates",
) -> RoundDecision:
    """The FLAME decision a :class:`FlameAggregateRequest` implies (what every node and the
    coordinator compute, so honest parties agree by construction).

    ``reference``: the verify request's encoded reference ((d,) uint64). ``space = "updates"``:
    only its length is used and ``dot_ref`` of the result is all 0 (nothing opened).
    ``space = "models"``: it is the encoded global model ``G``; the ``dot_ref`` shares (degree
    ``t - 1``) of the devices that reach the clustering are opened as ``<G, g_i>`` (the result's
    ``dot_ref``) and the local models are clustered (see the module docstring).

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

    def opened(values: np.ndarray, size: int = degree + 1) -> np.ndarray:
        result = robust_reconstruct(values, points, size, field=field)
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
    dot_ref = np.zeros(m, dtype=np.uint64)
    along: dict[int, int] = {}  # device -> signed <G, g_i> (scale 2^(2f)), models only
    g2 = 0
    if live and space == "models":
        g2 = exact_norm2(reference, p)
        dot_ref[live] = opened(request.dot_ref[:, live], t)
        half = p // 2
        for i in live:
            along[i] = signed(int(dot_ref[i]), p)
            if signed_norm2[i] * g2 >= half * half:  # |<G, g_i>| could reach p / 2: the opened value may have wrapped
                rejected[i] = "out of range: <G, g> could wrap modulo p"
            elif g2 + 2 * along[i] + signed_norm2[i] <= 0:
                rejected[i] = "zero norm: the local model G + g is zero"
        live = [i for i in live if i not in rejected]
    selection = None
    if live:
        scale = 2.0 ** (-2 * codec.frac_bits)
        gram_int = {(a, a): signed_norm2[i] for a, i in enumerate(live)}
        pairs = [(a, b) for a in range(len(live)) for b in range(a + 1, len(live))]
        if pairs:
            columns = [pair_index(live[a], live[b], m) for a, b in pairs]
            for (a, b), value in zip(pairs, opened(request.gram[:, columns]).tolist()):
                gram_int[a, b] = signed(int(value), p)
        gram = np.zeros((len(live), len(live)))
        for (a, b), value in gram_int.items():
            if space == "models":  # <G + g_i, G + g_j>, exact in integers before the scale
                value += g2 + along[live[a]] + along[live[b]]
            gram[a, b] = gram[b, a] = value * scale
        norms = np.sqrt(np.array([signed_norm2[i] * scale for i in live])) if space == "models" else None
        selection = flame_select(gram, norms)
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
        norm2, dot_ref, tuple(decisions), weights, float(len(kept)), tuple(sorted(wrong)), dict(screening.suspects),
    )
