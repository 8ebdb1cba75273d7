"""The beta-reputation update rule: properties against a plain-float reference, monotonicity,
forgetting, quarantine and the way back; evidence from a round record; config errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.defense.decision import REASON_CODES
from ppbfl.errors import ConfigError
from ppbfl.trust import DeviceTrust, Evidence, TrustConfig, initial_state, load_trust_config, replay, update
from ppbfl.trust.evidence import round_evidence
from ppbfl.trust.reputation import evidence_weights, trust_q15
from tests.trust_helpers import round_result

CONFIG = TrustConfig()
CODES = sorted(REASON_CODES.values())
evidences = st.builds(Evidence, st.sampled_from(CODES), st.booleans(), st.integers(0, 3))
states = st.builds(DeviceTrust, st.integers(0, 1 << 24), st.integers(0, 1 << 24), st.booleans())
ACCEPTED = Evidence(REASON_CODES["accepted"])
OUT_OF_RANGE = Evidence(REASON_CODES["out-of-range shares"])
COSINE = Evidence(REASON_CODES["cosine <= tau"])
MISSING = Evidence(REASON_CODES["missing upload"])


def float_reference(history: list[Evidence | None], config: TrustConfig) -> float:
    """Jøsang & Ismail's beta reputation with forgetting, in plain floats."""
    r, s = config.initial_positive, config.initial_negative
    weights = {"accepted": config.accepted, "zero trust": config.accepted, "missing upload": -config.missing,
               "missing proof": -config.missing,
               "zero norm": -config.zero_norm, "negative cosine": -config.cosine_rejected,
               "zero cosine": -config.cosine_rejected, "cosine <= tau": -config.cosine_rejected,
               "outside majority cluster": -config.cosine_rejected}
    names = {code: name for name, code in REASON_CODES.items()}
    for e in history:
        r, s = config.forgetting * r, config.forgetting * s
        if e is None:
            continue
        w = weights.get(names[e.reason], -config.malformed)
        r, s = (r + w, s) if w > 0 else (r, s - w)
        s += config.pow_failure * e.pow_failed + config.ids_flag * e.ids_flags
    return (r + 1) / (r + s + 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), evidences), max_size=40))
def test_integer_rule_tracks_the_float_beta_reputation(history: list[Evidence | None]) -> None:
    state = initial_state(CONFIG)
    for e in history:
        state = update(state, e, CONFIG)
    # floors lose < 1 unit of 2^-16 per round of each count; 40 rounds stay within 2^-9
    assert abs(state.trust / 2**15 - float_reference(history, CONFIG)) < 2**-9


@settings(max_examples=80, deadline=None)
@given(states, evidences, st.integers(1, 1 << 18))
def test_more_positive_evidence_never_lowers_trust(state: DeviceTrust, e: Evidence, extra: int) -> None:
    r, s = evidence_weights(e, CONFIG)
    base = update(state, e, CONFIG)
    keep = CONFIG.q(CONFIG.forgetting)
    more = trust_q15(state.positive * keep // 2**16 + r + extra, state.negative * keep // 2**16 + s)
    assert more >= base.trust


@settings(max_examples=80, deadline=None)
@given(states, evidences)
def test_negative_evidence_never_raises_trust_and_flags_lower_it(state: DeviceTrust, e: Evidence) -> None:
    clean = update(state, Evidence(e.reason), CONFIG)
    dirty = update(state, Evidence(e.reason, True, e.ids_flags + 1), CONFIG)
    assert dirty.trust <= clean.trust
    assert dirty.trust < clean.trust or clean.trust == 0
    assert update(state, OUT_OF_RANGE, CONFIG).trust <= update(state, ACCEPTED, CONFIG).trust


@settings(max_examples=40, deadline=None)
@given(states)
def test_forgetting_moves_trust_towards_one_half_and_reaches_it(state: DeviceTrust) -> None:
    half = 1 << 14
    for _ in range(400):
        after = update(state, None, CONFIG)
        assert abs(after.trust - half) <= abs(state.trust - half) + 1  # floors: at most one Q1.15 unit
        state = after
    assert state.positive == state.negative == 0
    assert state.trust == half


def test_honest_device_is_never_quarantined_and_converges_to_high_trust() -> None:
    state = initial_state(CONFIG)
    for _ in range(200):
        state = update(state, ACCEPTED, CONFIG)
        assert not state.quarantined
    # steady state r = 1 / (1 - lambda) = 10: trust = 11 / 12
    assert abs(state.trust / 2**15 - 11 / 12) < 2**-10


def test_honest_device_with_one_dropout_in_three_stays_out_of_quarantine() -> None:
    state = initial_state(CONFIG)
    for k in range(300):
        state = update(state, MISSING if k % 3 == 2 else ACCEPTED, CONFIG)
        assert not state.quarantined


@pytest.mark.parametrize("evidence", [OUT_OF_RANGE, COSINE, Evidence(REASON_CODES["missing upload"], True, 0), Evidence(0, False, 1)])
def test_misbehaving_device_is_quarantined_when_the_float_model_says(evidence: Evidence) -> None:
    expected = next(k for k in range(1, 100) if float_reference([evidence] * k, CONFIG) < CONFIG.quarantine_below)
    state = initial_state(CONFIG)
    rounds = 0
    while not state.quarantined and rounds < 100:
        state, rounds = update(state, evidence, CONFIG), rounds + 1
    assert state.quarantined and rounds == expected <= 8
    assert state.weight_trust == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60))
def test_way_back_from_quarantine_by_passing_verification(bad_rounds: int) -> None:
    state = initial_state(CONFIG)
    for _ in range(bad_rounds):
        state = update(state, OUT_OF_RANGE, CONFIG)
    assert state.quarantined
    zero_trust = Evidence(REASON_CODES["zero trust"])  # verified while quarantined, weighted 0
    rounds = 0
    while state.quarantined and rounds < 100:
        previous, rounds = state, rounds + 1
        state = update(state, zero_trust, CONFIG)
        assert state.trust >= previous.trust
    # negative evidence <= 4 / (1 - 0.9) = 40 obs; after k rounds s <= 40 * 0.9^k, r >= 10 (1 - 0.9^k): k = 16 suffices
    assert not state.quarantined and rounds <= 16
    assert state.trust >= round(CONFIG.release_at * 2**15)


def test_hysteresis_keeps_a_device_quarantined_between_the_thresholds() -> None:
    config = TrustConfig(quarantine_below=0.3, release_at=0.6)
    between = DeviceTrust(positive=2**16, negative=2 * 2**16, quarantined=True)  # trust = 2/5 without forgetting
    cfg = config.model_copy(update={"forgetting": 1.0})
    assert update(between, None, cfg).quarantined
    assert not update(DeviceTrust(2**16, 2 * 2**16, False), None, cfg).quarantined


@settings(max_examples=30, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 5), evidences, max_size=6), max_size=12))
def test_replay_is_a_pure_function_of_the_records(rounds: list[dict[int, Evidence]]) -> None:
    first, second = replay(rounds, CONFIG), replay([dict(reversed(list(r.items()))) for r in rounds], CONFIG)
    assert first == second
    for i, state in first.items():
        history = [r.get(i) for r in rounds]
        start = next(k for k, e in enumerate(history) if e is not None)
        assert abs(state.trust / 2**15 - float_reference(history[start:], CONFIG)) < 2**-9


def test_round_evidence_maps_every_reason_and_the_extra_inputs() -> None:
    result = round_result(1,
        {0: "accepted", 1: "out-of-range shares: violates Cauchy-Schwarz", 2: "inconsistent shares", 3: "commitment mismatch", 4: "cosine <= tau"},
        {5: "missing upload: no commitment on chain"},
    )
    evidence = round_evidence(result, pow_failures={6}, ids_flags={0: 2})
    assert evidence == {
        0: Evidence(0, False, 2), 1: Evidence(4), 2: Evidence(2), 3: Evidence(10), 4: Evidence(7), 5: Evidence(9), 6: Evidence(9, True),
    }


def test_round_evidence_refuses_unknown_reasons_and_negative_flags() -> None:
    with pytest.raises(ConfigError, match="device 0"):
        round_evidence(round_result(1, {0: "made up"}, {}))
    with pytest.raises(ConfigError, match="ids_flags"):
        round_evidence(round_result(1, {0: "accepted"}, {}), ids_flags={0: -1})


@pytest.mark.parametrize(("values", "key"), [
    ({"forgetting": 0}, "trust.forgetting"), ({"quarantine_below": 0.6, "release_at": 0.5}, "trust"),
    ({"pow_max_bits": 65}, "trust.pow_max_bits"), ({"typo": 1}, "trust.typo"),
])
def test_bad_config_is_a_config_error_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_trust_config(values)
    assert caught.value.key == key


def test_evidence_refuses_unknown_codes() -> None:
    with pytest.raises(ConfigError, match=r"evidence\.reason"):
        Evidence(99)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**15), st.integers(0, 2**15), st.integers(0, 64), st.integers(0, 64), st.integers(1, 2**15))
def test_pow_bits_fall_with_trust_between_the_configured_ends(a: int, b: int, low: int, high: int, full: int) -> None:
    from ppbfl.trust.pow import pow_bits_for

    config = TrustConfig(pow_min_bits=min(low, high), pow_max_bits=max(low, high), pow_full_trust=full / 2**15)
    lo, hi = sorted((a, b))
    assert config.pow_min_bits <= pow_bits_for(hi, config) <= pow_bits_for(lo, config) <= config.pow_max_bits
    assert pow_bits_for(0, config) == config.pow_max_bits
    assert pow_bits_for(full, config) == pow_bits_for(2**15, config) == config.pow_min_bits
    # plain-float reference: max - floor((max - min) * min(T, F) / F)
    expected = config.pow_max_bits - int((config.pow_max_bits - config.pow_min_bits) * min(lo, full) / full + 1e-9)
    assert pow_bits_for(lo, config) == expected


def test_pow_bits_refuse_out_of_range_trust() -> None:
    from ppbfl.trust.pow import pow_bits_for

    with pytest.raises(ConfigError, match="trust"):
        pow_bits_for(2**15 + 1, CONFIG)


def test_on_off_attacker_is_held_near_one_half_while_honest_devices_approach_eleven_twelfths() -> None:
    """An on-off device (honest every other round) is not quarantined with the defaults, but its
    weight stays about half an honest device's: steady r = s = 1 / (1 - lambda^2) in alternation."""
    on_off, honest = initial_state(CONFIG), initial_state(CONFIG)
    for k in range(100):
        on_off = update(on_off, ACCEPTED if k % 2 else COSINE, CONFIG)
        honest = update(honest, ACCEPTED, CONFIG)
    assert 0.45 < on_off.trust / 2**15 < 0.6 and not on_off.quarantined
    assert honest.trust / 2**15 > 0.9
