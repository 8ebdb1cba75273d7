"""Issue 13, step 1: the out-of-range attack, shown succeeding against the current defence.

The defence opens ``<g, r>`` and ``||g||^2`` modulo p only, so a device that shares a crafted
field vector with the honest scalars but entries of order ``p / 2`` is accepted with the honest
weight and wrecks the aggregate. These tests document the gap (docs/leakage.md, docs/security.md);
when a validity check on shares lands (issue 13, step 2) the protocol test must flip to asserting
that the device is rejected.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense.submission import codec_for_length
from ppbfl.field import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.fl.field_attacks import out_of_range_shift
from tests.protocol_helpers import OutOfRangeDevice, plaintext_aggregate, synthetic_round

P = (1 << 61) - 1


def _dot(u: np.ndarray, v: np.ndarray) -> int:
    return sum(int(a) * int(b) for a, b in zip(u, v)) % P


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


def test_out_of_range_device_passes_the_defence_and_wrecks_the_aggregate_until_issue_13():
    """The gap, measured: the attacker is accepted with the honest weight; the aggregate's largest
    entry is many orders of magnitude above the honest aggregate's."""
    t, n, d, m = 3, 5, 200, 8
    updates, reference = synthetic_round(m, d, malicious=set(), seed=5)

    class Attacker(OutOfRangeDevice):
        pass

    with Federation.in_process(t, n, d, m, factories={3: Attacker}) as federation:
        Attacker.reference = federation.coordinator.safe.encode(reference)
        result = federation.run_round(1, updates, reference)
    honest, weights = plaintext_aggregate(updates, reference)
    assert 3 in result.accepted  # the attacker passes every check on the opened scalars
    assert abs(result.decision_of(3).weight - weights[3]) < 1e-4  # ... with its honest weight
    assert np.abs(honest).max() < 0.1 and np.abs(result.aggregate).max() > 1e6  # and wrecks the aggregate
