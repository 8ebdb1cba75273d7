"""Issue 13: input validity on shares (ppbfl.defense.validity and its place in the round).

The out-of-range attack (step 1) keeps the opened ``<g, r>`` and ``||g||^2`` of an honest update
while three entries are of order ``p / 2``; before the validity check it passed the defence and
wrecked the aggregate. These tests show it rejected ("out of range") in both modes and over gRPC,
check the construction's kernels against plain integer arithmetic, measure its soundness at
reduced ``k`` against the stated bound, and check that honest updates at the bound always pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense import validity
from ppbfl.defense.decision import REASON_CODES
from ppbfl.defense.errors import UpdateNormError
from ppbfl.defense.submission import codec_for_length
from ppbfl.field import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.fl.field_attacks import out_of_range_shift
from ppbfl.protocol.deployment import GrpcDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.messages import ProofUpload, SetupEdge, UploadsQuery, VerifyRequest
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.round import Coordinator
from tests.protocol_helpers import OutOfRangeDevice, plaintext_aggregate, synthetic_round

P = (1 << 61) - 1
SEED = bytes(range(32))


def _dot(u: np.ndarray, v: np.ndarray) -> int:
    return sum(int(a) * int(b) for a, b in zip(u, v)) % P


# -- the attack (step 1) ---------------------------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(3, 40), magnitude=st.integers(1 << 20, 1 << 58))
@settings(max_examples=60, deadline=None)
def test_shift_keeps_both_opened_scalars_and_moves_three_entries_far_out_of_range(seed, d, magnitude):
    codec = codec_for_length(FixedPointCodec(), d)
    rng = np.random.default_rng(seed)  # test data only
    g, r = codec.encode(rng.normal(0, 0.01, d)), codec.encode(rng.normal(0, 0.01, d))
    shifted = out_of_range_shift(g, r, magnitude=magnitude)
    assert _dot(shifted, r) == _dot(g, r) and _dot(shifted, shifted) == _dot(g, g)  # Python ints as the oracle
    assert int(np.count_nonzero(shifted != g)) == 3
    moved = np.abs(codec.decode(shifted) - codec.decode(g))
    assert moved.max() >= magnitude / 2**codec.frac_bits / 2  # far beyond any honest entry (~1e-2)


class _ShiftedDevice(OutOfRangeDevice):
    """The attacker, proving with its honest update's projections (in range, so it can decompose them)."""


class _ClampedDevice(OutOfRangeDevice):
    """The attacker, proving with the projections of what it really shared, clamped into the range."""

    def share(self, round, update):
        sharing, mask = super().share(round, update)
        self._encoded[round] = validity.centred(self.crafted(round, update), P)
        return sharing, mask


@pytest.mark.parametrize("norms", ["honest-majority", "beaver"])
@pytest.mark.parametrize("attacker", [_ShiftedDevice, _ClampedDevice])
def test_the_out_of_range_attack_is_rejected_in_both_modes(norms, attacker):
    t, n, d, m = 3, 5, 200, 8
    updates, reference = synthetic_round(m, d, malicious=set(), seed=5)

    class Attacker(attacker):
        pass

    with Federation.in_process(t, n, d, m, factories={3: Attacker}, norms=norms, strict=attacker is _ShiftedDevice) as federation:
        Attacker.reference = federation.coordinator.safe.encode(reference)
        result = federation.run_round(1, updates, reference)
    assert result.mode == ("honest-majority" if norms == "honest-majority" else "beaver")
    assert result.rejected == {3: "out of range: the validity proof fails"}
    assert result.decision.reason_codes[3] == REASON_CODES["out of range"]
    honest, _ = plaintext_aggregate({i: u for i, u in updates.items() if i != 3}, reference)
    np.testing.assert_allclose(result.aggregate, honest, atol=1e-4)  # the aggregate of the 7 others


def test_the_out_of_range_attack_is_rejected_over_grpc():
    t, n, d, m = 3, 5, 64, 4
    updates, reference = synthetic_round(m, d, malicious=set(), seed=6)

    class Attacker(_ShiftedDevice):
        pass

    with GrpcDeployment(t, n, d) as deployment:
        coordinator = Coordinator(t, n, d, deployment.coordinator, timeout=30.0)
        with Federation(deployment, coordinator, range(m), factories={1: Attacker}) as federation:
            Attacker.reference = coordinator.safe.encode(reference)
            result = federation.run_round(1, updates, reference)
    assert result.rejected == {1: "out of range: the validity proof fails"}
    assert sorted(result.accepted) == [0, 2, 3]


# -- the construction's pieces against plain integers ----------------------------------------------


@given(d=st.integers(1, 1 << 40))
@settings(max_examples=200, deadline=None)
def test_the_certified_range_cannot_wrap(d):
    params = validity.ValidityParams.for_length(d) if d <= (P // 2) // 4 else None
    if params is None:
        return
    v = math.isqrt((P // 2) // d)
    assert params.certified_max_abs < 1 << params.bits <= v  # |g_i| <= 2Y - 1 < 2^b <= V
    assert d * params.certified_max_abs**2 <= (P - 1) // 2  # ||g||^2 cannot wrap
    assert d * params.certified_max_abs * v <= (P - 1) // 2  # nor <g, r> with |r_i| <= V (the reference's bound)


def test_projection_entries_have_the_stated_distribution():
    params = validity.ValidityParams(50_000, 8, 20, P)
    matrix = validity.projection_matrix(validity.projection_stream(SEED, params), params)
    counts = [int(np.count_nonzero(matrix == v)) for v in (0, 1, -1)]
    n = matrix.size  # 4e5 entries: each frequency within 5 standard deviations of 1/2, 1/4, 1/4
    for count, prob in zip(counts, (0.5, 0.25, 0.25)):
        assert abs(count - n * prob) < 5 * math.sqrt(n * prob * (1 - prob))
    # R = b_ji s_i: the sign is the column's (shared by its rows), the masks are independent across rows
    assert np.all(matrix.max(axis=0) * matrix.min(axis=0) >= 0)
    d = params.d
    positive = int(np.count_nonzero(matrix.max(axis=0) > 0))
    negative = int(np.count_nonzero(matrix.min(axis=0) < 0))
    assert abs(positive - negative) < 5 * math.sqrt(d)
    masks = matrix != 0
    for j in range(1, params.k):  # each pair of rows agrees on a mask bit half the time
        assert abs(int(np.count_nonzero(masks[0] == masks[j])) - d / 2) < 5 * math.sqrt(d / 4)


def test_bits_encode_the_shifted_projections():
    params = validity.ValidityParams(10, 3, 5, P)
    bits = validity.bit_decompose(np.array([-16, 0, 15]), params, device=0)
    values = [sum(int(b) << l for l, b in enumerate(bits[j * 5 : (j + 1) * 5])) - 16 for j in range(3)]
    assert values == [-16, 0, 15] and set(bits.tolist()) <= {0, 1}
    with pytest.raises(validity.ValidityProofError, match="device 7: projection 1"):
        validity.bit_decompose(np.array([0, 16, 0]), params, device=7)


def _accepts(g: np.ndarray, params: validity.ValidityParams, seed: bytes) -> bool:
    y = validity.project(validity.projection_stream(seed, params), g, params)
    return bool(np.all((y >= -params.half_width) & (y < params.half_width)))


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("kind", ["one-hot", "field-half", "hidden-in-noise"])
def test_soundness_at_small_k_matches_the_bound(k, kind):
    """A vector with an entry ``|g_i| >= 2Y`` passes all ``k`` range checks with probability ``<= 2^-k``
    (exactly ``2^-k`` for a one-hot vector); 4000 independent challenges, 5-sigma binomial margin."""
    d = 64
    params = validity.ValidityParams(d, k, 12, P)  # Y = 2048
    rng = np.random.default_rng(k)  # test data only
    g = np.zeros(d, dtype=np.int64)
    if kind == "one-hot":
        g[17] = 2 * params.half_width
    elif kind == "field-half":  # (p + 1) / 2 = 1/2 in the field: its double is 1, the classic ±1-projection escape
        g[17], g[40] = (P + 1) // 2 - P, (P + 1) // 2 - P
    else:
        g[:] = rng.integers(-40, 41, d)
        g[5] = 5 * params.half_width
    trials = 4000
    seeds = [rng.bytes(32) for _ in range(trials)]
    rate = sum(_accepts(g, params, s) for s in seeds) / trials
    bound = 2.0**-k
    margin = 5 * math.sqrt(bound * (1 - bound) / trials)
    assert rate <= bound + margin
    if kind == "one-hot":
        assert abs(rate - bound) <= margin


@given(seed=st.binary(min_size=32, max_size=32), d=st.integers(1, 3000), sparse=st.booleans(), data=st.data())
@settings(max_examples=80, deadline=None)
def test_honest_updates_at_the_l2_bound_are_never_rejected(seed, d, sparse, data):
    params = validity.ValidityParams.for_length(d)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))  # test data only
    direction = np.zeros(d)
    if sparse:
        direction[rng.integers(0, d)] = 1.0  # all the norm on one entry
    else:
        direction = rng.normal(size=d)
    g = np.trunc(direction / np.linalg.norm(direction) * params.honest_l2()).astype(np.int64)
    assert np.linalg.norm(g) <= params.honest_l2()
    assert _accepts(g, params, seed)
    assert params.false_rejection(params.honest_l2()) <= 2.0**-40 * 1.0000001


def test_a_strict_device_refuses_an_update_above_the_bound_before_sharing():
    d = 1000
    codec = FixedPointCodec()
    params = validity.ValidityParams.for_length(d)
    device = Device(2, 3, 5, codec)
    update = np.full(d, 1.01 * params.honest_l2() / math.sqrt(d) / 2**codec.frac_bits)
    with pytest.raises(UpdateNormError, match="device 2: update L2 norm"):
        device.prepare(1, update)
    device.prepare(1, update / 1.02)  # just below: fine


# -- misbehaving provers and relays ---------------------------------------------------------------


class _NonBitDevice(Device):
    """Proves with a 'bit' equal to 2 in the lowest position of row 0 and -1 in the next
    (same weighted sum): the linear identity holds, the bit test does not."""

    def prove(self, challenge, *, pool=None):
        original = validity.bit_decompose

        def crafted(projections, params, *, device):
            bits = original(projections, params, device=device).astype(np.int64)
            if bits[1] == 1:
                bits[0], bits[1] = bits[0] + 2, 0
            else:
                bits[0], bits[1] = bits[0] - 2, 1
            return (bits % P).astype(np.uint64)

        validity.bit_decompose = crafted
        try:
            return super().prove(challenge, pool=pool)
        finally:
            validity.bit_decompose = original


class _InconsistentProofDevice(Device):
    """Sends nodes 2 and 3 proof shares off the degree-(t - 1) polynomial (offsets 2 and 3: no
    codeword within one error, and two nodes are more than a round of 5 at t = 3 may drop over a
    dispute, ppbfl.protocol.attribution)."""

    def prove(self, challenge, *, pool=None):
        transport = self.transport
        device = self

        class Tamper:
            def call(self, party, message, **kw):
                if party in (edge_party(2), edge_party(3)) and isinstance(message, ProofUpload):
                    bits = message.bits.copy()
                    bits[3] = (bits[3] + np.uint64(int(party.split("-")[1]))) % np.uint64(P)
                    message = ProofUpload(message.device, bits, message.mask_share)
                return transport.call(party, message, **kw)

        self.transport = Tamper()
        try:
            return Device.prove(device, challenge, pool=pool)
        finally:
            self.transport = transport


class _SilentDevice(Device):
    """Never proves."""

    def prove(self, challenge, *, pool=None):
        raise validity.ValidityProofError(self.index, 0, 0, 0)


def test_non_bits_inconsistent_proofs_and_missing_proofs_are_each_rejected_and_named():
    t, n, d, m = 3, 5, 100, 6
    updates, reference = synthetic_round(m, d, malicious=set(), seed=7)
    factories = {1: _NonBitDevice, 2: _InconsistentProofDevice, 4: _SilentDevice}
    with Federation.in_process(t, n, d, m, factories=factories) as federation:
        result = federation.run_round(1, updates, reference)
    assert result.rejected[1] == "out of range: the validity proof fails"
    assert result.rejected[2] == "inconsistent shares: validity proof"
    assert result.rejected[4].startswith("missing proof")
    assert sorted(result.accepted) == [0, 3, 5]


def test_a_proof_after_the_node_reported_is_refused_and_the_relay_must_carry_each_nodes_coin():
    t, n, d = 3, 5, 16
    with Federation.in_process(t, n, d, 2) as federation:
        coordinator, transport = federation.coordinator, federation.deployment.coordinator
        coordinator.setup()
        announcement = coordinator.open_round(1)
        updates, _ = synthetic_round(2, d, malicious=set())
        for i, device in federation.devices.items():
            device.submit(announcement, updates[i])
        challenge = coordinator.challenge(1)
        federation.devices[0].prove(challenge)
        context = {"d": d, "p": P}
        report = transport.call(edge_party(1), UploadsQuery(100), round=1, timeout=5, context=context).message
        assert report.proofs == (0,)
        late = federation.devices[1].prove(challenge)  # node 1 has closed the proofs: it refuses, the others store it
        assert list(late.refused) == [1] and "closed" in late.refused[1]
        again = transport.call(edge_party(1), UploadsQuery(100), round=1, timeout=5, context=context).message
        assert again.coin == report.coin  # a retried query: the same coin
        request = VerifyRequest(challenge.seed, np.zeros(d, np.uint64), [0], [b"\x00" * 32], 1, 1, [1], [bytes(32)], [b""])
        with pytest.raises(RemoteError, match="this node's coin"):
            transport.call(edge_party(1), request, round=1, timeout=5, context=context)


def test_an_edge_node_refuses_a_setup_that_weakens_the_check():
    with Federation.in_process(3, 5, 8, 1) as federation:
        setup = SetupEdge(1, 3, 5, 8, 16, 0.0, validity_k=validity.MIN_ROWS - 1, session=bytes(32))
        with pytest.raises(RemoteError, match="validity_k"):
            federation.deployment.coordinator.call(edge_party(1), setup, round=0, timeout=5, context={"p": P})


def test_the_proof_is_under_one_percent_of_a_share_vector_at_1e5():
    params = validity.ValidityParams.for_length(100_000)
    assert (params.k, params.bits, params.proof_length) == (40, 21, 840)
    assert params.proof_length / 100_000 < 0.01


def test_the_rejection_is_recorded_on_chain_with_its_reason_code():
    from ppbfl.protocol.deployment import InProcessDeployment
    from ppbfl.protocol.ledger import open_ledger

    t, n, d, m = 3, 5, 32, 4
    updates, reference = synthetic_round(m, d, malicious=set(), seed=8)

    class Attacker(_ShiftedDevice):
        pass

    with open_ledger("embedded", t, n, devices=m) as ledger:
        deployment = InProcessDeployment(t, n, d)
        coordinator = Coordinator(t, n, d, deployment.coordinator, ledger=ledger)
        with Federation(deployment, coordinator, range(m), ledger=ledger, factories={2: Attacker}, owns_deployment=True) as federation:
            Attacker.reference = coordinator.safe.encode(reference)
            result = federation.run_round(1, updates, reference)
        on_chain = {x.device_id: x for x in ledger.contract.decisions(1)}
    assert result.rejected == {2: "out of range: the validity proof fails"}
    assert on_chain[ledger.device_ids[2]].reason == REASON_CODES["out of range"] and on_chain[ledger.device_ids[2]].weight == 0
    assert all(on_chain[ledger.device_ids[i]].reason == REASON_CODES["accepted"] for i in (0, 1, 3))


def test_the_trust_layer_counts_an_out_of_range_rejection_as_malformed_and_a_missing_proof_as_missing():
    from ppbfl.trust import TrustConfig
    from ppbfl.trust.evidence import round_evidence
    from ppbfl.trust.reputation import evidence_weights

    t, n, d, m = 3, 5, 32, 4
    updates, reference = synthetic_round(m, d, malicious=set(), seed=9)

    class Attacker(_ShiftedDevice):
        pass

    with Federation.in_process(t, n, d, m, factories={1: Attacker, 3: _SilentDevice}) as federation:
        Attacker.reference = federation.coordinator.safe.encode(reference)
        result = federation.run_round(1, updates, reference)
    evidence, config = round_evidence(result), TrustConfig()
    assert evidence[1].reason == REASON_CODES["out of range"] and evidence[3].reason == REASON_CODES["missing proof"]
    assert evidence_weights(evidence[1], config) == (0, config.q(config.malformed))
    assert evidence_weights(evidence[3], config) == (0, config.q(config.missing))
    assert evidence_weights(evidence[0], config) == (config.q(config.accepted), 0)
