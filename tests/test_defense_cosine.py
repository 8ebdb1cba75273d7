"""Stage 3: secure cosine verification and neutralisation on shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppbfl.defense import (
    AggregateRangeError,
    DefenseParameterError,
    SecureCosineFilter,
    UpdateEncodingError,
    codec_for_length,
    share_update,
)
from ppbfl.field import FieldRNG, FixedPointCodec
from ppbfl.mpc import TrustedDealer

T, N = 2, 5


def _rng(seed: int) -> FieldRNG:
    return FieldRNG(seed.to_bytes(32, "little"))


def _quantised(x: np.ndarray, d: int) -> np.ndarray:
    return codec_for_length(FixedPointCodec(), d).decode(codec_for_length(FixedPointCodec(), d).encode(x))


def _plain(updates: list[np.ndarray], ref: np.ndarray, trust: np.ndarray, tau: float = 0.0):
    """Plaintext FLTrust-style reference computation on the quantised values."""
    d = ref.size
    q = [_quantised(u, d) for u in updates]
    r = _quantised(ref, d)
    rn = np.linalg.norm(r)
    cos = np.array([float(np.dot(u, r) / (np.linalg.norm(u) * rn)) for u in q])
    w = np.where(cos > tau, np.maximum(cos, 0) * trust, 0.0)
    clip = np.array([min(1.0, rn / np.linalg.norm(u)) for u in q])
    agg = sum(wi * ci * u for wi, ci, u in zip(w, clip, q)) / w.sum() if w.sum() > 0 else np.zeros(d)
    return cos, w, clip, agg


def _scenario(seed: int, d: int = 300):
    gen = np.random.default_rng(seed)  # test data only
    ref = gen.normal(0, 1, d)
    honest = [ref + gen.normal(0, 0.7, d) for _ in range(4)]
    flipped = -3.0 * honest[0]  # sign flip + scaling: negative cosine
    scaled = 25.0 * honest[1]  # scaling: positive cosine, must be clipped
    orthogonal_ish = gen.normal(0, 1, d)
    return ref, honest + [flipped, scaled, orthogonal_ish]


@pytest.mark.parametrize("mode", ["honest_majority", "beaver"])
def test_public_reference_matches_plaintext_and_rejects_sign_flip(mode: str) -> None:
    ref, updates = _scenario(1)
    subs = [share_update(u, T, N, device=i, rng=_rng(i)) for i, u in enumerate(updates)]
    trust = np.array([1, 1, 0.5, 1, 1, 1, 1.0])
    flt = SecureCosineFilter(T, N, dot_mode=mode)
    agg, records = flt.verify_and_aggregate([s.shares for s in subs], ref, trust)
    cos, w, clip, expect = _plain(updates, ref, trust)
    assert len(records) == len(updates) and records.reference == "public"
    for rec, c, wi, ci in zip(records, cos, w, clip):
        assert rec.cosine == pytest.approx(c, abs=1e-9)
        assert rec.weight == pytest.approx(wi, abs=1e-9)
        assert rec.clip == pytest.approx(ci, abs=1e-9)
    assert records[4].reason == "negative cosine" and not records[4].accepted and records[4].weight == 0
    assert records[5].accepted and records[5].clip < 0.1  # the scaled update is clipped to ||r||
    assert records[5].norm * records[5].clip == pytest.approx(records.reference_norm, rel=1e-9)
    assert all(records[i].reason == "accepted" for i in range(4))
    # the aggregate is the plaintext formula up to the fixed-point quantisation of the weights
    assert np.max(np.abs(agg - expect)) < 1e-3
    assert not records.all_rejected and records.wrong_edge_nodes == ()
    # only the documented scalars were opened: one <g, r> and one ||g||^2 per device
    assert len(records.opened["dot_ref"]) == len(updates) and len(records.opened["norm2"]) == len(updates)
    assert records.opened["gram"] == {}


def test_hm_and_beaver_filters_give_identical_results() -> None:
    ref, updates = _scenario(2, d=120)
    subs = [share_update(u, T, N, device=i, rng=_rng(10 + i)).shares for i, u in enumerate(updates)]
    a1, r1 = SecureCosineFilter(T, N, dot_mode="honest_majority").verify_and_aggregate(subs, ref)
    a2, r2 = SecureCosineFilter(T, N, dot_mode="beaver", triple_source=TrustedDealer(T, N)).verify_and_aggregate(subs, ref)
    assert np.array_equal(a1, a2)
    assert r1.opened == r2.opened
    assert [x.reason for x in r1] == [x.reason for x in r2]


def test_medoid_mode_without_reference() -> None:
    _, updates = _scenario(3, d=200)
    subs = [share_update(u, T, N, device=i, rng=_rng(20 + i)).shares for i, u in enumerate(updates)]
    agg, records = SecureCosineFilter(T, N).verify_and_aggregate(subs, None)
    assert records.reference == "medoid" and records.medoid in range(4)  # an honest update
    m = len(updates)
    assert len(records.opened["gram"]) == m * (m - 1) // 2  # the documented Gram-matrix leakage
    # plaintext medoid on quantised values
    q = [_quantised(u, 200) for u in updates]
    cosm = np.array([[np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) for b in q] for a in q])
    medoid = int(np.argmax(cosm.sum(axis=1) - 1.0))
    assert records.medoid == medoid
    assert records[medoid].cosine == pytest.approx(1.0) and records[medoid].clip == 1.0
    assert records[4].reason == "negative cosine"
    for i in range(m):
        assert records[i].cosine == pytest.approx(cosm[i, medoid], abs=1e-9)
    w = np.array([r.weight for r in records])
    clip = np.array([r.clip for r in records])
    expect = sum(wi * ci * u for wi, ci, u in zip(w, clip, q)) / w.sum()
    assert np.max(np.abs(agg - expect)) < 1e-3


def test_all_rejected_gives_zeros_and_says_so() -> None:
    gen = np.random.default_rng(4)
    ref = gen.normal(0, 1, 50)
    subs = [share_update(-ref * s, T, N, device=i).shares for i, s in enumerate([1.0, 2.0])]
    agg, records = SecureCosineFilter(T, N).verify_and_aggregate(subs, ref)
    assert np.array_equal(agg, np.zeros(50)) and records.all_rejected
    assert "all devices rejected" in records.note
    assert [r.reason for r in records] == ["negative cosine", "negative cosine"]


def test_tau_and_trust() -> None:
    gen = np.random.default_rng(5)
    ref = gen.normal(0, 1, 64)
    weak = ref + gen.normal(0, 3, 64)  # cosine ~0.3
    subs = [share_update(u, T, N, device=i).shares for i, u in enumerate([ref, weak, ref])]
    _, records = SecureCosineFilter(T, N, tau=0.6).verify_and_aggregate(subs, ref, np.array([1.0, 1.0, 0.0]))
    assert 0 < records[1].cosine < 0.6
    assert [r.reason for r in records] == ["accepted", "cosine <= tau", "zero trust"]
    with pytest.raises(DefenseParameterError):
        SecureCosineFilter(T, N).verify_and_aggregate(subs, ref, np.array([1.0, 2.0, 0.0]))
    with pytest.raises(DefenseParameterError):
        SecureCosineFilter(T, N, tau=1.5)


def test_unsafe_update_is_a_typed_error_naming_the_device() -> None:
    d = 10_000
    bound = FixedPointCodec().max_abs_for_dot(d)
    update = np.zeros(d)
    update[17] = bound * 1.01
    with pytest.raises(UpdateEncodingError, match="device 3") as info:
        share_update(update, T, N, device=3)
    assert info.value.device == 3 and info.value.index == 17
    update[17] = bound  # exactly at the bound is fine, and its square does not wrap
    sub = share_update(update, T, N, device=3)
    _, records = SecureCosineFilter(T, N).verify_and_aggregate([sub.shares], update)
    assert records[0].norm == pytest.approx(bound, rel=1e-12) and records[0].cosine == pytest.approx(1.0)
    with pytest.raises(DefenseParameterError):
        SecureCosineFilter(T, N).verify_and_aggregate([sub.shares], np.full(d, 2 * bound))
    with pytest.raises(DefenseParameterError):
        SecureCosineFilter(T, N).verify_and_aggregate([sub.shares], np.zeros(d))


def test_aggregate_range_is_checked() -> None:
    # a tiny field: 31-bit prime, few fractional bits -> few devices fit
    from ppbfl.field import PrimeField

    codec = FixedPointCodec(PrimeField(2147483647), frac_bits=12)
    d = 4
    bound = codec_for_length(codec, d).max_abs  # encodings up to 2^14; weights up to 2^12
    ref = np.full(d, bound)
    subs = [share_update(ref, T, N, codec=codec, device=i).shares for i in range(20)]
    flt = SecureCosineFilter(T, N, codec=codec)
    agg, records = flt.verify_and_aggregate(subs[:15], ref)  # 15 * 2^26 < 2^30: fits
    assert np.allclose(agg, ref) and len(records.accepted) == 15
    with pytest.raises(AggregateRangeError):
        flt.verify_and_aggregate(subs, ref)  # 20 * 2^26 > (p - 1) / 2: could wrap


def test_lying_edge_node_is_corrected_and_named() -> None:
    ref, updates = _scenario(6, d=80)
    subs = [share_update(u, T, N, device=i, rng=_rng(30 + i)).shares.copy() for i, u in enumerate(updates)]
    clean, _ = SecureCosineFilter(T, N).verify_and_aggregate([s.copy() for s in subs], ref)
    for s in subs:
        s[2] = (s[2] + np.uint64(12345)) % np.uint64((1 << 61) - 1)  # edge node 3 shifts all its shares
    for mode in ["honest_majority", "beaver"]:
        agg, records = SecureCosineFilter(T, N, dot_mode=mode).verify_and_aggregate(subs, ref)
        assert records.wrong_edge_nodes == (3,)
        assert np.array_equal(agg, clean)


def test_out_of_range_device_is_rejected_by_cauchy_schwarz() -> None:
    """A malicious device shares field elements outside the codec range chosen so that its
    opened <g, r> is large and positive while ||g||^2 wraps to a small value."""
    from ppbfl.sharing import share

    d = 8
    ref = np.ones(d)
    v = np.zeros(d, dtype=np.uint64)
    v[1] = np.uint64(1 << 31)  # (2^31)^2 = 2^62 = 2 mod p: ||g||^2 opens as 2, <g, r> as 2^47
    wrapped = share(v, T, N)
    v2 = np.zeros(d, dtype=np.uint64)
    v2[0] = np.uint64(1 << 30)  # 2^60 > (p - 1) / 2: the squared norm decodes as negative
    negative = share(v2, T, N)
    _, records = SecureCosineFilter(T, N).verify_and_aggregate([wrapped, negative], ref)
    assert records[0].reason == "out-of-range shares: violates Cauchy-Schwarz"
    assert records[1].reason == "out-of-range shares: negative squared norm"
    assert records.all_rejected


def test_malformed_device_shares_are_rejected_not_fatal() -> None:
    ref, updates = _scenario(7, d=40)
    good = share_update(updates[0], T, N, device=0).shares
    bad_shape = good[:, :39]
    bad_dtype = good.astype(np.int64)
    _, records = SecureCosineFilter(T, N).verify_and_aggregate([good, bad_shape, bad_dtype], ref)
    assert records[0].accepted
    assert records[1].reason.startswith("malformed shares") and records[2].reason.startswith("malformed shares")
    assert math.isnan(records[1].cosine)


def test_orthogonal_update_gets_no_weight_even_with_negative_tau() -> None:
    ref = np.array([1.0, 0.0, 0.0, 0.0])
    subs = [share_update(u, T, N, device=i).shares for i, u in enumerate([ref, np.array([0.0, 2.0, 0.0, 0.0]), -ref])]
    agg, records = SecureCosineFilter(T, N, tau=-0.5).verify_and_aggregate(subs, ref)
    assert [r.reason for r in records] == ["accepted", "zero cosine", "negative cosine"]
    assert [r.accepted for r in records] == [True, False, False]
    assert np.allclose(agg, ref)
