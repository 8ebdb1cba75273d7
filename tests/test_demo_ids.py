"""``ppbfl demo`` carries agreed IDS evidence: every edge node's gateway counts its own view of the
round's telemetry with the packaged detector, the nodes sign their counts, and the round's
anchored trust records hold the (e + 1)-th-largest count per device -- checked here against the
gateways' files with plain sorting and against :func:`ppbfl.trust.reputation.update`, on a
lying gateway that tries to frame an honest device."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ppbfl.demo import DEMO_TRUST, DemoConfig, DemoConfigError, run_demo
from ppbfl.errors import ConfigError
from ppbfl.ids.detector import Detector
from ppbfl.ids.gateway import Gateways, gateway_view, packaged_detector, round_telemetry
from ppbfl.ids.reputation import read_flags, write_flags
from ppbfl.trust.proof import verify_on_chain
from ppbfl.trust.reputation import Evidence, update
from ppbfl.trust.store import TrustStore

ROUNDS, DEVICES, T, N = 2, 6, 3, 5
FRAMER, FRAMED_COUNT = 5, 999  # edge node 5's gateway claims 999 flagged windows of an honest device in round 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run (in process, embedded chain) whose edge-5 gateway lies in round 1; the ledger is kept."""
    out = tmp_path_factory.mktemp("demo-ids")
    lines: list[str] = []
    ledgers = []
    framed: list[int] = []
    observe = Gateways.observe

    def lying_observe(self, round, nodes):
        counts = observe(self, round, nodes)
        if round == 1:  # after the honest gateway wrote its counts, node 5's file claims an honest device
            honest = min(set(range(self.devices)) - set(self.malicious))
            framed.append(honest)
            write_flags(self.folder / f"edge-{FRAMER}" / "round-1.json", {**counts[FRAMER], honest: FRAMED_COUNT})
        return counts

    import ppbfl.protocol.ledger as ledger_module
    open_ledger = ledger_module.open_ledger

    def keep_ledger(*args, **kwargs):
        manager = open_ledger(*args, **kwargs)
        ledgers.append(_Kept(manager, manager.__enter__()))
        return ledgers[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Gateways, "observe", lying_observe)
        patch.setattr(ledger_module, "open_ledger", keep_ledger)
        rows = run_demo(DemoConfig(devices=DEVICES, rounds=ROUNDS, hidden=4, t=T, n=N, out=str(out)), log=lines.append)
    store = TrustStore(f"sqlite:///{out / 'trust.db'}")
    yield out, rows, lines, json.loads((out / "rounds.json").read_text()), store, ledgers[0].ledger, framed[0]
    store.close()
    ledgers[0].manager.__exit__(None, None, None)


class _Kept:
    """The embedded ledger's context, entered once, whose exit leaves the chain readable for the test."""

    def __init__(self, manager, ledger) -> None:
        self.manager, self.ledger = manager, ledger

    def __enter__(self):
        return self.ledger

    def __exit__(self, *exc) -> None:
        return None


def gateway_files(out: Path, round: int) -> dict[int, dict[int, int]]:
    """Node -> device -> count, as each gateway wrote it for ``round``."""
    return {j: read_flags(out / "ids" / f"edge-{j}" / f"round-{round}.json") for j in range(1, N + 1)}


def second_largest(files: dict[int, dict[int, int]], device: int) -> int:
    """The reference rule for (t, n) = (3, 5): e = floor((5 - 3) / 2) = 1, the 2nd-largest count."""
    return sorted((c.get(device, 0) for c in files.values()), reverse=True)[1]


def test_the_demos_trust_records_carry_the_agreed_ids_flags_of_the_gateways_files(demo) -> None:
    out, rows, lines, logged, store, ledger, _ = demo
    assert any("e = floor((n - t) / 2) = 1" in line and "2nd largest" in line for line in lines)
    assert "IDS m/h" in next(line for line in lines if line.startswith("round"))
    flagged = 0
    for r in range(1, ROUNDS + 1):
        files = gateway_files(out, r)
        expected = {i: second_largest(files, i) for i in range(DEVICES)}
        row = logged["rounds"][r - 1]
        assert {int(i): c for i, c in row["ids_flags"].items()} == expected == rows[r - 1].ids_flags
        assert {int(j) for j in row["ids_counts"]} == set(range(1, N + 1))  # every node's signed report went in
        for x in store.records(r):
            assert x.evidence.ids_flags == expected[x.device]
            assert x.after == update(x.before, Evidence(x.evidence.reason, x.evidence.pow_failed, expected[x.device]), DEMO_TRUST)
            if x.evidence.ids_flags:
                flagged += 1
                assert x.after != update(x.before, Evidence(x.evidence.reason, x.evidence.pow_failed, 0), DEMO_TRUST)
                assert verify_on_chain(store.prove(x.device, r), ledger.contract)  # the anchored leaf holds the count
        assert ledger.contract.round_state(r).anchor == store.root(r)
    assert flagged >= 2


def test_a_lying_gateway_cannot_frame_an_honest_device_and_malicious_devices_get_more_flags(demo) -> None:
    out, rows, lines, logged, _, _, framed = demo
    files = gateway_files(out, 1)
    assert files[FRAMER][framed] == FRAMED_COUNT and rows[0].ids_counts[FRAMER][framed] == FRAMED_COUNT  # signed and relayed
    assert rows[0].ids_flags[framed] == max(c.get(framed, 0) for j, c in files.items() if j != FRAMER) < FRAMED_COUNT
    malicious = set(logged["malicious_devices"])
    assert malicious and len(malicious) < DEVICES
    totals = {i: sum(r.ids_flags[i] for r in rows) for i in range(DEVICES)}
    assert min(totals[i] for i in malicious) > max(totals[i] for i in range(DEVICES) if i not in malicious)
    cells = [line.split()[-1] for line in lines if line.split()[0:1] in (["1"], ["2"])]
    assert cells == [f"{sum(r.ids_flags[i] for i in malicious)}/{sum(c for i, c in r.ids_flags.items() if i not in malicious)}" for r in rows]


def test_the_packaged_detector_is_the_reported_one_and_loads_offline() -> None:
    detector = packaged_detector()
    assert isinstance(detector, Detector) and detector.window == 16 and detector.class_names[0] == "normal"
    shipped = Path(__file__).parents[1] / "ppbfl" / "ids" / "detector.pt"
    assert shipped.read_bytes() == (Path(__file__).parents[1] / "reports" / "ids" / "detector.pt").read_bytes()


def test_gateways_see_their_own_seeded_share_of_every_devices_windows() -> None:
    telemetry = round_telemetry(8, {1, 6}, round=3, seed=2)
    honest = ~np.isin(telemetry.devices, [1, 6])
    assert (telemetry.labels[honest] == 0).all() and (telemetry.labels[~honest] != 0).any()
    views = {j: gateway_view(telemetry.devices, j, 3, 2) for j in range(1, 4)}
    for j, seen in views.items():
        assert len(set(seen.tolist())) == len(seen)
        for k in range(8):
            assert np.sum(telemetry.devices[seen] == k) == int(np.floor(0.8 * np.sum(telemetry.devices == k) + 0.5))
        assert np.array_equal(seen, gateway_view(telemetry.devices, j, 3, 2))  # seeded
    assert not np.array_equal(views[1], views[2])  # gateways see different windows
    with pytest.raises(ConfigError) as share:
        gateway_view(telemetry.devices, 1, 3, 2, share=0.0)
    with pytest.raises(ConfigError) as seed:
        round_telemetry(8, {1}, round=3, seed=-1)
    assert (share.value.key, seed.value.key) == ("ids.share", "ids.seed")


@pytest.mark.parametrize("settings", [{"t": 1, "n": 2, "liar": None, "kill_edge": 2}, {"t": 2, "n": 3, "liar": None, "kill_edge": 3}])
def test_ids_with_an_offline_node_needs_a_tier_with_e_at_least_one(settings) -> None:
    with pytest.raises(DemoConfigError, match="ids: with kill_edge"):
        DemoConfig(**settings).check()
    DemoConfig(**settings, ids=False).check()


@pytest.mark.parametrize("args, ids", [([], True), (["--no-ids"], False)])
def test_ppbfl_demo_no_ids_turns_the_gateways_off(monkeypatch, args, ids) -> None:
    from ppbfl.cli import main

    seen: list[DemoConfig] = []
    monkeypatch.setattr("ppbfl.demo.run_demo", seen.append)
    assert main(["demo", *args]) == 0 and seen[0].ids is ids
