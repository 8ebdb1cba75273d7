"""The secure cosine defence as users call it (``ppbfl.SecureCosineFilter``): one protocol round in process.

Every check runs the protocol itself (devices as clients, edge nodes on shares, the coordinator
as a relay), against plaintext FLTrust-style computations on the quantised values.
"""

from __future__ import annotations

import numpy as np
import pytest

from ppbfl.defense import AggregateRangeError, codec_for_length
from ppbfl.defense.decision import decide_public_reference
from ppbfl.field import FixedPointCodec, PrimeField
from ppbfl.fl.federation import Federation, SecureCosineFilter
from tests.protocol_helpers import FieldVectorDevice

T, N = 2, 5


def _quantised(x: np.ndarray, d: int, codec: FixedPointCodec | None = None) -> np.ndarray:
    safe = codec_for_length(codec or FixedPointCodec(), d)
    return safe.decode(safe.encode(x))


def _plain(updates: np.ndarray, ref: np.ndarray, trust: np.ndarray, tau: float = 0.0):
    """Plaintext FLTrust-style computation on the quantised values: cos, weights, clips, aggregate."""
    d = ref.size
    q = [_quantised(u, d) for u in updates]
    r = _quantised(ref, d)
    rn = np.linalg.norm(r)
    cos = np.array([float(np.dot(u, r) / (np.linalg.norm(u) * rn)) for u in q])
    w = np.where(cos > tau, np.maximum(cos, 0) * trust, 0.0)
    clip = np.array([min(1.0, rn / np.linalg.norm(u)) for u in q])
    agg = sum(wi * ci * u for wi, ci, u in zip(w, clip, q)) / w.sum() if w.sum() > 0 else np.zeros(d)
    return cos, w, clip, agg


def _scenario(seed: int, d: int = 300) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)  # test data only
    ref = gen.normal(0, 0.1, d)
    honest = [ref + gen.normal(0, 0.07, d) for _ in range(4)]
    flipped = -3.0 * honest[0]  # sign flip + scaling: negative cosine
    scaled = 25.0 * honest[1]  # scaling: positive cosine, must be clipped
    other = gen.normal(0, 0.1, d)
    return ref, np.stack(honest + [flipped, scaled, other])


@pytest.mark.parametrize("norms", ["auto", "beaver"])
def test_public_reference_matches_plaintext_and_rejects_sign_flip(norms: str) -> None:
    ref, updates = _scenario(1)
    trust = np.array([1, 1, 0.5, 1, 1, 1, 1.0])
    secure = SecureCosineFilter(T, N, norms=norms)
    agg, result = secure.verify_and_aggregate(updates, ref, trust)
    secure.close()
    cos, w, clip, expect = _plain(updates, ref, trust)
    assert result.mode == ("beaver" if norms == "beaver" else "honest-majority")
    assert result.decision_of(4).reason == "negative cosine" and not result.decision_of(4).accepted
    assert result.decision_of(5).accepted and result.decision_of(5).clip == pytest.approx(clip[5], rel=1e-4)
    for i in range(7):
        assert result.decision_of(i).cosine == pytest.approx(cos[i], abs=1e-6)
        assert result.decision_of(i).weight == pytest.approx(w[i], abs=1e-4)
    np.testing.assert_allclose(agg, expect, atol=1e-4)


def test_honest_majority_and_beaver_give_identical_results() -> None:
    ref, updates = _scenario(2)
    a1, r1 = SecureCosineFilter(T, N).verify_and_aggregate(updates, ref)
    a2, r2 = SecureCosineFilter(T, N, norms="beaver").verify_and_aggregate(updates, ref)
    assert a1.tobytes() == a2.tobytes()  # exact field results: the MPC mode cannot matter
    assert r1.decision.decisions == r2.decision.decisions


def test_all_rejected_gives_zeros() -> None:
    ref = np.random.default_rng(4).normal(0, 0.1, 50)
    agg, result = SecureCosineFilter(T, N).verify_and_aggregate(np.stack([-ref, -2 * ref]), ref)
    assert not agg.any() and result.accepted == []
    assert [result.decision_of(i).reason for i in range(2)] == ["negative cosine", "negative cosine"]


def test_tau_and_trust() -> None:
    gen = np.random.default_rng(5)
    ref = gen.normal(0, 0.1, 64)
    weak = ref + gen.normal(0, 0.3, 64)  # cosine ~0.3
    _, result = SecureCosineFilter(T, N, tau=0.6).verify_and_aggregate(np.stack([ref, weak, ref]), ref, np.array([1.0, 1.0, 0.0]))
    assert 0 < result.decision_of(1).cosine < 0.6
    assert [result.decision_of(i).reason for i in range(3)] == ["accepted", "cosine <= tau", "zero trust"]


def test_orthogonal_update_gets_no_weight_even_with_negative_tau() -> None:
    ref = np.array([1.0, 0.0, 0.0, 0.0])
    updates = np.stack([ref, np.array([0.0, 2.0, 0.0, 0.0]), -ref])
    agg, result = SecureCosineFilter(T, N, tau=-0.5).verify_and_aggregate(updates, ref)
    assert [result.decision_of(i).reason for i in range(3)] == ["accepted", "zero cosine", "negative cosine"]
    assert np.allclose(agg, ref)


def test_lying_edge_node_is_corrected_and_named() -> None:
    ref, updates = _scenario(6, d=80)
    clean, _ = SecureCosineFilter(T, N).verify_and_aggregate(updates, ref)
    for behaviour in ("tamper-aggregate", "tamper-verify"):
        with Federation.in_process(T, N, 80, len(updates), behaviours={3: behaviour}) as federation:
            result = federation.run_round(1, dict(enumerate(updates)), ref)
        assert result.liars == (3,)
        assert result.aggregate.tobytes() == clean.tobytes()


def test_aggregate_that_could_wrap_is_a_typed_error() -> None:
    # a tiny field: 31-bit prime, 12 fractional bits: at most 15 full-weight devices fit
    codec = FixedPointCodec(PrimeField(2147483647), frac_bits=12)
    d = 4
    ref = np.full(d, codec_for_length(codec, d).max_abs)
    update = ref / 64  # inside the validity check's L2 bound; full weight (cos = 1, clip = 1)
    agg, result = SecureCosineFilter(T, N, codec).verify_and_aggregate(np.stack([update] * 15), ref)
    assert np.allclose(agg, update, atol=2**-12) and len(result.accepted) == 15
    with pytest.raises(AggregateRangeError):
        SecureCosineFilter(T, N, codec).verify_and_aggregate(np.stack([update] * 20), ref)


class _FixedVectorDevice(FieldVectorDevice):
    """Shares the raw field vector ``vector`` whatever its update."""

    vector = np.zeros(8, dtype=np.uint64)

    def crafted(self, round, update):
        return self.vector


def test_out_of_range_devices_are_rejected_by_the_validity_check_before_any_scalar_is_opened() -> None:
    """Out-of-range field elements chosen so that ``||g||^2`` wraps modulo p (a Cauchy-Schwarz
    violation, a negative squared norm): the validity check rejects both first; the checks on the
    opened scalars stay as a second line (below)."""

    class Wrapped(_FixedVectorDevice):  # (2^31)^2 = 2^62 = 2 mod p: ||g||^2 opens as 2, <g, r> as 2^47
        vector = np.array([0, 1 << 31, 0, 0, 0, 0, 0, 0], dtype=np.uint64)

    class Negative(_FixedVectorDevice):  # 2^60 > (p - 1) / 2: the squared norm decodes as negative
        vector = np.array([1 << 30, 0, 0, 0, 0, 0, 0, 0], dtype=np.uint64)

    ref = np.ones(8)
    with Federation.in_process(T, N, 8, 3, factories={0: Wrapped, 1: Negative}) as federation:
        result = federation.run_round(1, {i: ref for i in range(3)}, ref)
    assert result.decision_of(0).reason == "out of range: the validity proof fails"
    assert result.decision_of(1).reason == "out of range: the validity proof fails"
    assert result.accepted == [2]
    assert np.isnan(result.decision_of(0).cosine) and result.decision.norm2[0] == 0  # nothing of theirs was opened


def test_the_opened_scalars_still_catch_a_wrapped_norm_as_a_second_line() -> None:
    p = (1 << 61) - 1
    scale = 1 << 16  # the opened values of the two crafted vectors above, against r = (1, ..., 1)
    wrapped = decide_public_reference(2, (1 << 31) * scale % p, 8 * scale * scale, 1.0, 0.0, p)
    negative = decide_public_reference((1 << 60) % p, (1 << 30) * scale % p, 8 * scale * scale, 1.0, 0.0, p)
    assert wrapped.reason == "out-of-range shares: violates Cauchy-Schwarz"
    assert negative.reason == "out-of-range shares: negative squared norm"
