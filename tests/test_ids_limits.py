"""What the intrusion detector cannot do, measured (docs/security.md, "Intrusion detector" rows
"attack traffic shaped to look normal" and "a third party attacks an honest device"): the shipped
detector scores traffic, so traffic made to look normal is missed and traffic aimed at an honest
device counts against it. These tests pin the stated limits, with the numbers they rest on."""

from __future__ import annotations

import numpy as np

from ppbfl.defense.decision import REASON_CODES
from ppbfl.ids.gateway import gateway_view, packaged_detector, round_telemetry
from ppbfl.ids.generator import GeneratorConfig, generate
from ppbfl.ids.reputation import ids_flags
from ppbfl.trust import TrustConfig
from ppbfl.trust.ids_reports import combine_counts, lying_sensors
from ppbfl.trust.reputation import Evidence, initial_state, trust_q15, update


def _detection_rate(windows: np.ndarray) -> float:
    return float((packaged_detector().classify(windows) != 0).mean())


def test_attack_windows_blended_toward_normal_traffic_evade_the_shipped_detector() -> None:
    """Each attack window x_a is moved toward the same device's latest earlier normal window x_n:
    ``x_n + alpha (x_a - x_n)``. The detector flags most at alpha = 1 and about its false-alarm rate
    at alpha = 0.05: an attacker who shapes traffic to look normal is missed (no robustness to
    adaptive evasion is claimed)."""
    detector = packaged_detector()
    data = generate(GeneratorConfig(devices=8, segments=40, seed=11, window=detector.window))
    pairs = []
    for i in np.flatnonzero(data.labels != 0):
        earlier = np.flatnonzero((data.devices == data.devices[i]) & (data.labels == 0) & (data.segment < data.segment[i]))
        if earlier.size:
            pairs.append((i, earlier[-1]))
    attack, normal = (np.array(column) for column in zip(*pairs))
    assert attack.size >= 100
    false_alarms = _detection_rate(data.windows[data.labels == 0])
    rates = {alpha: _detection_rate(data.windows[normal] + alpha * (data.windows[attack] - data.windows[normal])) for alpha in (1.0, 0.3, 0.1, 0.05)}
    assert rates[1.0] >= 0.9  # the attacks as generated: flagged
    assert rates[1.0] > rates[0.3] > rates[0.1]  # the closer to normal, the fewer flags
    assert rates[0.1] < 0.2
    assert rates[0.05] <= false_alarms + 0.03  # indistinguishable from the benign false alarms
    assert false_alarms < 0.05


def test_attack_traffic_a_third_party_aims_at_an_honest_device_is_counted_against_it() -> None:
    """Device 0 is honest (its own windows are normal) but a third party floods it: the attack
    windows of another device's stream are attributed to device 0, as a gateway on its path sees
    them. The five gateways flag them, the agreed count (the (e + 1)-th largest, e = 1 at (3, 5))
    is far above an unframed device's, and with its update accepted its trust after one round is
    the beta model's with s = 3 per flag: below the quarantine threshold. The IDS cannot tell whose
    traffic it is; what it does bound is the framer's reach (e lying gateways add nothing: other
    tests in tests/test_trust_ids_flags.py)."""
    detector, devices, seed, t, n = packaged_detector(), 6, 5, 3, 5
    honest = round_telemetry(devices, set(), 1, seed, window=detector.window)
    flood = generate(GeneratorConfig(devices=4, segments=40, seed=99, window=detector.window))
    aimed = flood.windows[flood.labels == 2][:6]  # DoS windows: the third party's traffic toward device 0
    assert len(aimed) == 6
    windows = np.concatenate([honest.windows, aimed])
    owners = np.concatenate([honest.devices, np.zeros(len(aimed), dtype=np.int64)])
    counts = []
    for node in range(1, n + 1):
        seen = gateway_view(owners, node, 1, seed)
        counts.append(ids_flags(owners[seen], detector.classify(windows[seen])))
    agreed = combine_counts(counts, lying_sensors(n, t))
    framed, unframed = agreed.get(0, 0), max((agreed.get(k, 0) for k in range(1, devices)), default=0)
    assert framed >= 3 and framed >= unframed + 3
    config = TrustConfig()
    start = initial_state(config)
    after = update(start, Evidence(REASON_CODES["accepted"], False, framed), config)
    keep = config.q(config.forgetting)
    r = start.positive * keep // (1 << 16) + config.q(config.accepted)
    s = start.negative * keep // (1 << 16) + framed * config.q(config.ids_flag)
    assert after.trust == trust_q15(r, s)
    assert after.quarantined  # its update passed verification, yet the flags alone quarantine it
    clean = update(start, Evidence(REASON_CODES["accepted"], False, 0), config)
    assert not clean.quarantined and clean.trust > start.trust
