"""IDS reports in the agreed trust update: what a voting node pays per round to check and combine them.

* ``ids reports ...`` -- :meth:`IdsSensors.combine` over ``n = 31`` (the tier's maximum) signed
  reports that each flag ``flagged`` of ``m`` devices: every report's fields and kind-5 signature
  (ecrecover), then the ``(e + 1)``-th largest per device; against ``combine_counts``, the rule
  alone on the same counts (what authenticating the reports adds).
"""

from __future__ import annotations

import pytest
from conftest import QUICK, size_id

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.votes import ChainContext
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.ids_reports import IdsSensors, combine_counts, sign_report

N, T, M = 31, 11, 10**4
FLAGGED = (10, 10**3) if QUICK else (10, 10**3, 10**4)
CONTEXT = ChainContext("0x" + "5a" * 20, 1337)
KEYS = [ChainKey(bytes([0] * 31 + [j])) for j in range(1, N + 1)]
SENSORS = IdsSensors.of(TrustSigners.of([k.address for k in KEYS], T))


def _reports(flagged: int):
    return [sign_report(k, CONTEXT, 1, M, {i: 1 + (i + j) % 5 for i in range(flagged)}) for j, k in enumerate(KEYS)]


@pytest.mark.parametrize("flagged", FLAGGED, ids=[f"f{size_id(f)}" for f in FLAGGED])
def test_ids_reports_check_and_combine(benchmark, group, flagged):
    group("ids reports", n=N, devices=M, flagged=flagged)
    reports = _reports(flagged)
    agreed = benchmark(SENSORS.combine, reports, CONTEXT, 1, M)
    assert len(agreed) == flagged and SENSORS.liars == 10


@pytest.mark.parametrize("flagged", FLAGGED, ids=[f"f{size_id(f)}" for f in FLAGGED])
def test_ids_reports_rule_only(benchmark, group, flagged):
    group("ids reports", n=N, devices=M, flagged=flagged)
    counts = [r.counts() for r in _reports(flagged)]
    agreed = benchmark(combine_counts, counts, SENSORS.liars)
    assert len(agreed) == flagged
