"""Secure cosine verification and neutralisation on shares (DESIGN §5).

For each device update ``g_i`` (Shamir-shared among the ``n`` edge nodes, threshold ``t``):

* **public reference** ``r``: ``<g_i, r>`` is computed locally (each node dots its share vector
  with the encoded ``r``) and opened; ``||g_i||^2`` takes one secure square (honest-majority or
  Beaver mode). Only these two scalars per device are opened.
* **no reference** (medoid mode): every ``<g_i, g_j>`` (``i <= j``) is computed in MPC and opened
  (the Gram matrix is the documented leakage of this mode); the reference is the update with the
  largest sum of cosines to the others, and cosines are taken relative to it.

Neutralisation: ``w_i = max(0, cos_i) * trust_i`` (0 unless ``cos_i > tau``), clip
``c_i = min(1, ||r|| / ||g_i||)``; the nodes compute ``sum_i enc(w_i c_i) [g_i]`` on shares (public
fixed-point weights, so the aggregate has scale ``2^(2f)``), it is robustly reconstructed (lying
nodes are corrected and named), decoded and divided by ``sum_i w_i`` in the clear.

Range: updates are encoded under ``codec.max_abs_for_dot(d)`` (see
:func:`~ppbfl.defense.submission.codec_for_length`), so no inner product of honest updates wraps
modulo ``p``. **Caveat:** a malicious device can share arbitrary field elements; nothing here proves
its entries are in range, and wrapped ``<g, r>``, ``||g||^2`` could then look benign. Two cheap
necessary conditions are enforced in exact integers (``||g||^2 > 0`` after signed decoding, and
Cauchy–Schwarz ``<g, r>^2 <= ||g||^2 ||r||^2``) and reject such a device as
``"out-of-range shares"``, but they are not a range proof (see ``docs/leakage.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ppbfl.defense.consistency import (
    challenge_coefficients,
    check_consistency,
    published_values,
)
from ppbfl.defense.decision import (
    aggregation_weights,
    decide_public_reference,
    encoded_norm2,
    norm_reason,
    signed,
    weigh,
)
from ppbfl.defense.errors import DefenseParameterError, InconsistentSharesError
from ppbfl.defense.records import RoundRecords, VerificationRecord
from ppbfl.defense.submission import codec_for_length
from ppbfl.errors import PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.mpc.dot import DotMode, SecureDot
from ppbfl.mpc.linear import check_shares, dot_public, weighted_sum
from ppbfl.mpc.opening import open_scalar, party_points
from ppbfl.mpc.przs import ZeroSharer
from ppbfl.mpc.triples import TripleSource
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["SecureCosineFilter"]

_NAN = float("nan")


class SecureCosineFilter:
    """Privacy-preserving cosine verification and weighted aggregation of shared updates.

    Args:
        t, n: threshold and number of edge nodes.
        codec: fixed-point codec (field, ``frac_bits``); the per-round bound is
            ``codec.max_abs_for_dot(d)``.
        dot_mode: ``"honest_majority"`` (``n >= 2t - 1``, no dealer) or ``"beaver"``.
        triple_source: triples for Beaver mode (default: an OS-seeded :class:`TrustedDealer`).
        tau: acceptance threshold on the cosine (``cos_i > tau``), in ``[-1, 1)``; default 0.
        zero: PRZS state for honest-majority mode (default: fresh keys).
    """

    def __init__(
        self,
        t: int,
        n: int,
        codec: FixedPointCodec | None = None,
        dot_mode: DotMode = "honest_majority",
        triple_source: TripleSource | None = None,
        tau: float = 0.0,
        *,
        zero: ZeroSharer | None = None,
    ) -> None:
        self.codec = FixedPointCodec() if codec is None else codec
        self.field = self.codec.field
        self.secure = SecureDot(t, n, dot_mode, triple_source=triple_source, zero=zero, field=self.field)
        self.t, self.n = self.secure.t, self.secure.n
        if not (isinstance(tau, (int, float)) and -1.0 <= float(tau) < 1.0):
            raise DefenseParameterError(f"tau = {tau!r}: expected a float in [-1, 1)")
        self.tau = float(tau)

    # -- helpers -----------------------------------------------------------------------------
    def _trust(self, trust: np.ndarray | None, m: int) -> np.ndarray:
        if trust is None:
            return np.ones(m)
        values = np.asarray(trust, dtype=np.float64)
        if values.shape != (m,) or not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
            raise DefenseParameterError(f"trust: expected ({m},) floats in [0, 1], got shape {values.shape}")
        return values

    # -- the round ---------------------------------------------------------------------------
    def verify_and_aggregate(
        self,
        device_shares: Sequence[np.ndarray],
        reference: np.ndarray | None = None,
        trust: np.ndarray | None = None,
        *,
        mask_shares: Sequence[np.ndarray] | None = None,
        challenge_seed: bytes | None = None,
        strict: bool = False,
    ) -> tuple[np.ndarray, RoundRecords]:
        """Verify every device's shared update and aggregate the accepted ones.

        Args:
            device_shares: m arrays (n, d) uint64 -- device ``i``'s Shamir shares (row = edge node).
            reference: public float (d,) reference update, or None for medoid mode.
            trust: (m,) floats in ``[0, 1]`` (default all 1).
            mask_shares: m arrays (n,) uint64 -- shares of each device's consistency mask ``rho``;
                with ``challenge_seed`` (32 bytes, fixed after the commitments) the
                share-consistency check runs first. None skips it (recorded in the result).
            strict: raise :class:`InconsistentSharesError` instead of rejecting the device.

        Returns:
            ``(aggregate, records)``: float64 (d,) ``sum_i w_i c_i g_i / sum_i w_i`` (zeros if every
            weight is 0), and :class:`RoundRecords`.
        """
        m = len(device_shares)
        if m == 0:
            raise DefenseParameterError("device_shares: no devices")
        if reference is not None:
            ref = np.asarray(reference, dtype=np.float64)
            if ref.ndim != 1 or ref.size == 0:
                raise DefenseParameterError(f"reference: expected a non-empty (d,) array, got shape {ref.shape}")
            d = ref.size
        else:
            ref = None
            first = device_shares[0]
            if not isinstance(first, np.ndarray) or first.ndim != 2:
                raise DefenseParameterError("without a reference, device_shares[0] must be an (n, d) array (it fixes d)")
            d = first.shape[1]
        trusts = self._trust(trust, m)
        safe = codec_for_length(self.codec, d)
        f = self.codec.frac_bits
        reasons: dict[int, str] = {}
        suspects: dict[int, tuple[int, ...]] = {}
        wrong_nodes: set[int] = set()
        shares: dict[int, np.ndarray] = {}
        for i, s in enumerate(device_shares):
            try:
                shares[i] = check_shares(s, f"device_shares[{i}]", self.field, self.n, d)
            except PPBFLError as error:
                reasons[i] = f"malformed shares: {error}"

        checked = mask_shares is not None
        if checked:
            if challenge_seed is None or len(mask_shares) != m:
                raise DefenseParameterError("mask_shares needs one (n,) array per device and a challenge_seed")
            lam = challenge_coefficients(challenge_seed, d, field=self.field)
            for i in list(shares):
                try:
                    result = check_consistency(published_values(shares[i], mask_shares[i], lam, field=self.field), self.t, field=self.field)
                except PPBFLError as error:
                    reasons[i] = f"malformed shares: {error}"
                    del shares[i]
                    continue
                if not result.consistent:
                    if strict:
                        raise InconsistentSharesError(i, result.suspects)
                    reasons[i] = "inconsistent shares"
                    suspects[i] = result.suspects
                    del shares[i]

        opened: dict[str, dict] = {"dot_ref": {}, "norm2": {}, "gram": {}}
        norm2: dict[int, int] = {}
        for i in list(shares):
            o = self.secure.square(shares[i])
            wrong_nodes.update(o.wrong_points)
            opened["norm2"][i] = o.value
            value = signed(o.value, self.field.p)
            why = norm_reason(value)
            if why is not None:
                reasons[i] = why
                del shares[i]
            else:
                norm2[i] = value

        cos: dict[int, float] = {}
        medoid: int | None = None
        if ref is not None:
            try:
                r_enc = safe.encode(ref)
            except PPBFLError as error:
                raise DefenseParameterError(f"reference cannot be encoded under the no-wrap bound {safe.max_abs!r}: {error}") from error
            ref_norm2 = encoded_norm2(r_enc, self.field.p)
            if ref_norm2 == 0:
                raise DefenseParameterError("reference: the zero vector has no direction")
            for i in list(shares):
                o = open_scalar(dot_public(shares[i], r_enc, field=self.field), self.t - 1, field=self.field)
                wrong_nodes.update(o.wrong_points)
                opened["dot_ref"][i] = o.value
                verdict = decide_public_reference(opened["norm2"][i], o.value, ref_norm2, 1.0, self.tau, self.field.p)
                if verdict.reason.startswith("out-of-range"):
                    reasons[i] = verdict.reason
                    del shares[i]
                    continue
                cos[i] = verdict.cosine
        else:
            ids = sorted(shares)
            gram: dict[tuple[int, int], int] = {}
            for a_pos, a in enumerate(ids):
                gram[(a, a)] = norm2[a]
                for b in ids[a_pos + 1:]:
                    o = self.secure.dot(shares[a], shares[b])
                    wrong_nodes.update(o.wrong_points)
                    opened["gram"][(a, b)] = o.value
                    gram[(a, b)] = gram[(b, a)] = signed(o.value, self.field.p)

            def pair_cos(a: int, b: int) -> float:
                return gram[(a, b)] / (math.sqrt(norm2[a]) * math.sqrt(norm2[b]))

            if ids:
                # clamped for scoring: an out-of-range device must not gain by faking |cos| > 1
                scores = {a: sum(max(-1.0, min(1.0, pair_cos(a, b))) for b in ids if b != a) for a in ids}
                medoid = max(ids, key=lambda a: (scores[a], -a))
                ref_norm2 = norm2[medoid]
                for i in ids:
                    g = gram[(i, medoid)]
                    if g * g > norm2[i] * ref_norm2:
                        reasons[i] = "out-of-range shares: violates Cauchy-Schwarz"
                        del shares[i]
                        continue
                    cos[i] = pair_cos(i, medoid)
            else:
                ref_norm2 = 0

        weights: dict[int, float] = {}
        clips: dict[int, float] = {}
        for i in list(shares):
            weight, clips[i], reasons[i] = weigh(cos[i], norm2[i], ref_norm2, float(trusts[i]), self.tau)
            if weight > 0:
                weights[i] = weight

        aggregate = np.zeros(d)
        total = sum(weights.values())
        accepted = sorted(i for i, w in weights.items() if w > 0)
        if accepted:
            enc = aggregation_weights([weights[i] for i in accepted], [clips[i] for i in accepted], self.codec, safe.max_abs)
            agg_shares = weighted_sum([shares[i] for i in accepted], enc, field=self.field)
            result = robust_reconstruct(agg_shares, party_points(self.n), self.t, field=self.field)
            wrong_nodes.update(result.wrong_points)
            aggregate = self.codec.decode(result.secret, scale_power=2) / total

        records = [
            VerificationRecord(
                device=i,
                cosine=cos.get(i, _NAN),
                norm=math.sqrt(norm2[i]) / 2.0**f if i in norm2 else _NAN,
                weight=weights.get(i, 0.0),
                clip=clips.get(i, 1.0),
                accepted=i in weights,
                reason=reasons[i],
                suspects=suspects.get(i, ()),
            )
            for i in range(m)
        ]
        all_rejected = not accepted
        note = (
            "all devices rejected: the aggregate is all zeros" if all_rejected
            else f"{len(accepted)} of {m} devices accepted"
        )
        return aggregate, RoundRecords(
            devices=records,
            reference="public" if ref is not None else "medoid",
            medoid=medoid,
            reference_norm=math.sqrt(ref_norm2) / 2.0**f if ref_norm2 else 0.0,
            all_rejected=all_rejected,
            note=note,
            wrong_edge_nodes=tuple(sorted(wrong_nodes)),
            consistency_checked=checked,
            opened=opened,
        )
