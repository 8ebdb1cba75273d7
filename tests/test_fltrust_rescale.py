"""FLTrust's norm rescaling in the secure cosine rule (``ppbfl_secure`` with ``rescale = true``).

Twin: plaintext ``fltrust`` (``FLTrust(rescale=True)``) on the **encoded** updates and reference
(decoded back to floats: the values the edge nodes' shares hold). The cosines and the factors
``||r|| / ||g_i||`` are then the same numbers (the secure side computes them from exact opened
integers), so the only difference is the rounding of the public weights ``w_i s_i`` to
``2^-f``: per entry ``|secure_j - twin_j| <= 2^-(f+1) sum_accepted |g_ij| / W`` (``W = sum w_i``),
plus float64 rounding (relative 1e-9 allowed).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppbfl.defense.decision import aggregation_weights, weigh
from ppbfl.defense.errors import AggregateRangeError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.aggregation import AggregationContext
from ppbfl.fl.aggregators import FLTrust, make_aggregator
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.secure_aggregator import SecureCosineAggregator
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.messages import SetupEdge
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.protocol.transport import RemoteError

D, M = 64, 6


def quantized(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """What a float array encodes to at ``frac_bits``, decoded back (round half to even, as the codec)."""
    return np.rint(np.ldexp(np.asarray(x, dtype=np.float64), frac_bits)) / 2.0**frac_bits


def assert_twin(out: np.ndarray, info: dict, u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out`` equals plaintext FLTrust on the quantized inputs within the module docstring's bound;
    returns the twin's aggregate and the per-entry bound."""
    f = info["frac_bits"]
    qu, qr = quantized(u, f), quantized(r, f)
    twin, twin_info = FLTrust(rescale=True).aggregate(qu, AggregationContext(reference=qr))
    trust = np.asarray(twin_info["trust"])
    np.testing.assert_allclose(info["weights"], trust, rtol=1e-9, atol=1e-12)
    accepted = trust > 0
    assert info["accepted"] == np.flatnonzero(accepted).tolist()
    if not accepted.any():
        assert not out.any() and not twin.any()
        return twin, np.zeros_like(twin)
    tol = 2.0 ** -(f + 1) * np.abs(qu[accepted]).sum(axis=0) / trust.sum() * (1 + 1e-9) + 1e-9 * np.abs(twin) + 1e-12
    assert (np.abs(out - twin) <= tol).all()
    return twin, tol


def short_updates(seed: int, scale: float = 0.3, malicious: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A reference ~ N(0, 0.05^2) and M updates near it, ``scale`` times as long (the case where
    rescaling differs from clipping); the first ``malicious`` are sign-flipped."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.05, D)
    u = scale * (r + rng.normal(0, 0.03, (M, D)))
    u[:malicious] *= -1.0
    return u, r


@pytest.fixture(scope="module")
def rescaling() -> Iterator[SecureCosineAggregator]:
    """One in-process deployment (t, n) = (2, 3) kept for the module's rounds."""
    aggregator = SecureCosineAggregator(t=2, n=3, rescale=True)
    yield aggregator
    aggregator.close()


def test_secure_rescaling_equals_plaintext_fltrust_on_shares(rescaling):
    u, r = short_updates(0)
    out, info = rescaling.aggregate(u, AggregationContext(reference=r))
    twin, _ = assert_twin(out, info, u, r)
    assert info["reasons"][0] == "negative cosine"
    # the honest updates are a third of |r| long: rescaled, the aggregate is ~ |r| long, clipped ~ |r| / 3
    clipped, _ = SecureCosineAggregator(t=2, n=3).aggregate(u, AggregationContext(reference=r))
    assert np.linalg.norm(out) > 2.5 * np.linalg.norm(clipped)
    assert np.linalg.norm(twin) <= np.linalg.norm(quantized(r, info["frac_bits"])) * (1 + 1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exponent=st.integers(min_value=-30, max_value=-1), seed=st.integers(0, 2**16))
def test_a_tiny_update_gets_a_huge_factor_but_no_more_than_the_reference_norm(rescaling, exponent, seed):
    """The attacker shrinks its update to ``2^exponent`` of the reference's length (down to below
    one fixed-point unit, where it encodes to zero) to get the largest factor ``||r|| / ||g||``.
    Whatever it does: no wrap or error, the twin's result, and its scaled update is no longer than
    ``r`` (an aggregate of rescaled updates is at most ``||r||`` long)."""
    u, r = short_updates(seed, scale=1.0, malicious=0)
    rng = np.random.default_rng(seed)
    attack = r + rng.normal(0, 0.03, D)  # aligned with r: accepted, with the largest trust it can get
    u[0] = attack * (2.0**exponent * np.linalg.norm(r) / np.linalg.norm(attack))
    out, info = rescaling.aggregate(u, AggregationContext(reference=r))
    twin, tol = assert_twin(out, info, u, r)
    f = info["frac_bits"]
    if quantized(u[0], f).any():  # the few entries left after rounding may point anywhere: any cosine verdict
        assert info["reasons"][0] in ("accepted", "negative cosine", "zero cosine")
    else:
        assert info["reasons"][0] == "zero norm"
    assert np.linalg.norm(twin) <= np.linalg.norm(quantized(r, f)) * (1 + 1e-9)
    assert np.linalg.norm(out) <= np.linalg.norm(quantized(r, f)) * (1 + 1e-9) + np.linalg.norm(tol)


def test_the_smallest_encodable_update_cannot_make_the_weighted_sum_wrap():
    """Worst case of the weights' no-wrap check: ``||g||^2 = 1`` (one entry of ``2^-f``) gets the
    factor ``||r||_enc``; bounding its entries by its norm keeps its term at ~ ``2^f ||r||_enc``."""
    codec = FixedPointCodec(frac_bits=19)
    ref_norm2 = (40 << 19) ** 2  # ||r|| = 40
    weight, clip, reason = weigh(1.0, 1, ref_norm2, 1.0, 0.0, rescale=True)
    assert reason == "accepted" and clip == 40 * 2**19
    enc = aggregation_weights([weight] * 10, [clip] * 10, codec, 64.0, norms2=[1] * 10)
    assert int(enc[0]) == 40 * 2**38
    with pytest.raises(AggregateRangeError):  # without the norm bound: 64-unit entries could wrap
        aggregation_weights([weight] * 10, [clip] * 10, codec, 64.0)
    with pytest.raises(AggregateRangeError, match="not encodable"):
        aggregation_weights([1.0], [2.0**45], codec, 64.0, norms2=[1])


def test_rescale_is_configured_typed_and_refused_where_it_does_not_apply():
    assert make_aggregator("ppbfl_secure", {"rescale": True}).rescale is True
    assert make_aggregator("fltrust", {"rescale": False}).rescale is False
    for name in ("ppbfl_secure", "fltrust"):
        with pytest.raises(ConfigError, match=rf"defence_params\.{name}\.rescale"):
            make_aggregator(name, {"rescale": "yes"})
    with pytest.raises(ConfigError, match=r"ppbfl_flame\.rescale"):
        make_aggregator("ppbfl_flame", {"rescale": True})
    deployment = InProcessDeployment(2, 3, D)
    try:
        with pytest.raises(ConfigError, match="rescale"):
            Coordinator(2, 3, D, deployment.coordinator, rule="flame", rescale=True)
        base = {"index": 1, "t": 2, "n": 3, "d": D, "frac_bits": 16, "tau": 0.0, "validity_k": 40, "session": b"\x02" * 32}
        with pytest.raises((OutOfPhaseError, RemoteError), match="rescale"):  # a coordinator cannot set it up on FLAME
            deployment.coordinator.call(edge_party(1), SetupEdge(**base, rule="flame", rescale=True), round=0, timeout=5)
    finally:
        deployment.close()
