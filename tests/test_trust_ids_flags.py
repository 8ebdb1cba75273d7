"""IDS flags in the agreed trust update: edge nodes' signed reports, checked and combined by every
node (ppbfl.trust.ids_reports), attacked by a lying relay, a lying edge node and malformed reports."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.merkle import root_of_leaves
from ppbfl.chain.votes import ChainContext
from ppbfl.defense.decision import REASON_CODES
from ppbfl.errors import ConfigError
from ppbfl.trust import TrustConfig
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.ids_reports import COUNT_MAX, IdsReportError, IdsSensors, combine_counts, sign_report
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.reputation import Evidence, initial_state, update
from ppbfl.trust.witness import TrustWitness
from tests.protocol_helpers import synthetic_round

T, N, D, M = 2, 4, 8, 5  # e = floor((4 - 2) / 2) = 1 lying edge node, quorum 3 reports
CONFIG = TrustConfig(pow_min_bits=2, pow_max_bits=6)
FLAGGED, FRAMED = 3, 0
ACCEPTED = REASON_CODES["accepted"]
CONTEXT = ChainContext("0x" + "5a" * 20, 1337)


@pytest.fixture(scope="module")
def run():
    """Two rounds of a chained federation (every update honest). Round 1: every edge node's
    detector flags device 3 twice. Round 2: edge-1 lies (device 0 flagged 60,000 times, device 3
    not at all), edge-2..4 flag device 3 once, and the relay drops edge-4's report (3 = quorum).
    Yields (federation, results, what the chain held after each round, reports per round)."""
    from ppbfl.trust.onchain import chained_federation, round_facts

    federation = chained_federation(T, N, D, M, CONFIG)
    try:
        nodes = {int(party.split("-")[1]): node for party, node in federation.deployment.nodes.items()}  # edge index -> node
        assert sorted(nodes) == list(range(1, N + 1))
        context = federation.ledger.context
        said = {1: {j: {FLAGGED: 2} for j in nodes}, 2: {j: {FRAMED: 60_000} if j == 1 else {FLAGGED: 1} for j in nodes}}
        results, facts, relayed = [], [], {}
        for r in (1, 2):
            reports = [nodes[j].ids_report(r, context, said[r][j]) for j in sorted(nodes)]
            relayed[r] = reports if r == 1 else reports[:-1]  # round 2: edge-4's report dropped on the way
            updates, reference = synthetic_round(M, D, set(), seed=r)
            results.append(federation.run_round(r, updates, reference, ids_reports=relayed[r]))
            facts.append(round_facts(federation, results[-1]))
        yield federation, results, facts, relayed
    finally:
        federation.close()


def test_honest_flags_lower_the_flagged_devices_agreed_trust_exactly_as_the_reputation_rule(run) -> None:
    federation, results, chain, _ = run
    assert sorted(results[0].accepted) == list(range(M))  # every update passed: only the flags differ
    facts = chain[0]
    start = initial_state(CONFIG)
    for record in facts.trust.records:
        expected = update(start, Evidence(ACCEPTED, False, 2 if record.device == FLAGGED else 0), CONFIG)
        assert record.after == expected  # the plaintext rule, applied directly
        assert facts.trust_q15[record.device] == expected.weight_trust  # what t edge nodes signed and the chain holds
    assert facts.trust_q15[FLAGGED] < min(facts.trust_q15[i] for i in range(M) if i != FLAGGED)
    assert len(federation.trust.signatures[1]) == N  # every node computed the same update from the reports
    for node in federation.deployment.nodes.values():
        assert node.trust_witness is not None and node.trust_witness.store.root(1) == facts.anchor


def test_one_lying_edge_node_neither_frames_nor_hides_and_a_dropped_report_costs_its_node_the_vote(run) -> None:
    federation, results, chain, _ = run
    assert sorted(results[1].accepted) == list(range(M))
    keeper = federation.trust
    records = {x.device: x for x in keeper.store.records(2)}
    assert records[FRAMED].evidence.ids_flags == 0  # edge-1's 60,000 flags: the 2nd largest of (60000, 0, 0) is 0
    assert records[FLAGGED].evidence.ids_flags == 1  # edge-1 hid device 3: the 2nd largest of (1, 1, 0) is 1
    before = {x.device: x.after for x in keeper.store.records(1)}
    for device, record in records.items():
        assert record.after == update(before[device], Evidence(ACCEPTED, False, 1 if device == FLAGGED else 0), CONFIG)
    assert len(keeper.signatures[2]) == N - 1  # edge-4 refused a set without its own report; t = 2 others agreed
    assert chain[1].anchor == keeper.store.root(2)
    assert chain[1].trust_q15 == tuple(records[i].after.weight_trust for i in range(M))


def test_reports_refused_by_the_keeper_store_nothing_and_bare_flags_stay_refused(run) -> None:
    federation, results, _, relayed = run
    keeper = federation.trust
    genuine = relayed[1][0]
    altered = dataclasses.replace(genuine, round=9, flags=((FRAMED, 7),))  # another round's report, relabelled and lifted
    with pytest.raises(IdsReportError) as caught:
        keeper.after_round(dataclasses.replace(results[1], round=9), ids_reports=[altered, *relayed[1][1:]])
    assert (caught.value.field, caught.value.sensor) == ("signature", genuine.sensor)
    with pytest.raises(ConfigError) as bare:  # a bare dict is the coordinator's word
        keeper.after_round(dataclasses.replace(results[1], round=9), ids_flags={FLAGGED: 1})
    assert bare.value.key == "ids_flags"
    assert 9 not in keeper.store.rounds()
    with pytest.raises(ConfigError) as off_chain:
        TrustKeeper(range(M), CONFIG).after_round(results[0], ids_reports=relayed[1])
    assert off_chain.value.key == "ids_reports"


def test_a_node_catching_up_checks_the_flags_through_the_anchored_root(run) -> None:
    federation, *_ = run
    keeper, contract = federation.trust, federation.ledger.contract
    late = TrustWitness(range(M), CONFIG)
    assert late.catch_up(3, contract, keeper.store.records) == [1, 2]
    assert late.states == {x.device: x.after for x in keeper.store.records(2)}  # rounds 1-2's flags adopted as the t signers computed them
    lifted = []
    for x in keeper.store.records(1):  # a copy that frames device 0 in round 1: rule kept, root refolded
        if x.device == FRAMED:
            x = dataclasses.replace(x, evidence=Evidence(ACCEPTED, False, 5))
            x = dataclasses.replace(x, after=update(x.before, x.evidence, CONFIG))
        lifted.append(x)
    assert root_of_leaves([x.leaf for x in lifted]) != contract.round_state(1).anchor
    fresh = TrustWitness(range(M), CONFIG)
    with pytest.raises(ConfigError) as caught:
        fresh.catch_up(2, contract, lambda r: lifted)
    assert caught.value.key == "records" and "round 1" in str(caught.value)
    assert fresh.round == 0


# -- the reports and the rule, without a chain ------------------------------------------------------

KEYS = [ChainKey(bytes([0] * 31 + [j])) for j in range(1, N + 1)]
SENSORS = IdsSensors.of(TrustSigners.of([k.address for k in KEYS], T))


def test_sensors_follow_the_threat_model() -> None:
    """e = floor((n - t) / 2) lying edge nodes, quorum n - e."""
    assert (SENSORS.liars, SENSORS.quorum) == (1, 3)
    three = [k.address for k in KEYS[:3]]
    assert [(s.liars, s.quorum) for s in (IdsSensors.of(TrustSigners.of(three, 2)), IdsSensors.of(TrustSigners.of(three, 1)))] == [(0, 3), (1, 2)]


def test_a_relay_that_alters_or_forges_a_report_is_refused_naming_it() -> None:
    honest = [sign_report(k, CONTEXT, 4, M, {FLAGGED: 2}) for k in KEYS]
    assert SENSORS.combine(honest, CONTEXT, 4, M) == {FLAGGED: 2}
    forged_by_relay = sign_report(ChainKey(bytes([0] * 31 + [99])), CONTEXT, 4, M, {FRAMED: 9})
    for bad in (
        dataclasses.replace(honest[1], flags=((FRAMED, 1), (FLAGGED, 2))),  # a flag added
        dataclasses.replace(honest[1], flags=()),  # the flags taken out
        dataclasses.replace(forged_by_relay, sensor=KEYS[1].address),  # the relay's own report in edge-2's name
        dataclasses.replace(honest[1], signature=honest[0].signature),  # edge-1's signature moved
        sign_report(KEYS[1], ChainContext(CONTEXT.contract, 1), 4, M, {FLAGGED: 2}),  # signed for another chain
    ):
        with pytest.raises(IdsReportError) as caught:
            SENSORS.combine([honest[0], bad, honest[2], honest[3]], CONTEXT, 4, M)
        assert (caught.value.field, caught.value.sensor) == ("signature", KEYS[1].address)


def test_an_unregistered_signer_is_refused() -> None:
    stranger = ChainKey(bytes([0] * 31 + [77]))
    reports = [sign_report(k, CONTEXT, 4, M, {FRAMED: 5}) for k in (*KEYS[:2], stranger)]
    with pytest.raises(IdsReportError) as caught:
        SENSORS.combine(reports, CONTEXT, 4, M)
    assert (caught.value.field, caught.value.sensor) == ("sensor", stranger.address)


def test_malformed_reports_and_sets_give_typed_errors_naming_the_field() -> None:
    good = sign_report(KEYS[0], CONTEXT, 4, M, {FLAGGED: 2})
    cases = {
        "count": [dataclasses.replace(good, flags=((FLAGGED, -1),)), dataclasses.replace(good, flags=((FLAGGED, COUNT_MAX + 1),)),
                  dataclasses.replace(good, flags=((FLAGGED, True),))],
        "device": [dataclasses.replace(good, flags=[(FLAGGED, 2)]), dataclasses.replace(good, flags=((M, 1),)), dataclasses.replace(good, flags=((-1, 1),)),
                   dataclasses.replace(good, flags=((FLAGGED, 1), (FLAGGED, 2))), dataclasses.replace(good, flags=((1, 1, 1),))],
        "round": [sign_report(KEYS[0], CONTEXT, 3, M, {FLAGGED: 2})],
        "devices": [sign_report(KEYS[0], CONTEXT, 4, M + 1, {FLAGGED: 2})],
    }
    for field, reports in cases.items():
        for report in reports:
            with pytest.raises(IdsReportError) as caught:
                SENSORS.check(report, CONTEXT, 4, M)
            assert (caught.value.field, caught.value.key) == (field, f"ids_reports.{field}"), report
    assert sign_report(KEYS[0], CONTEXT, 4, M, {np.int64(FLAGGED): np.int64(2), 0: 0}) == good  # numpy ints as ints, zeros left out
    for flags, field in (({FLAGGED: -1}, "count"), ({FLAGGED: COUNT_MAX + 1}, "count"), ({M: 1}, "device"), ({"3": 1}, "device"),
                         ({FLAGGED: 1.5}, "count")):
        with pytest.raises(IdsReportError) as signing:  # an honest node refuses to sign them
            sign_report(KEYS[0], CONTEXT, 4, M, flags)
        assert signing.value.field == field
    reports = [sign_report(k, CONTEXT, 4, M, {FLAGGED: 1}) for k in KEYS]
    with pytest.raises(IdsReportError) as twice:
        SENSORS.combine([reports[0], reports[1], reports[0]], CONTEXT, 4, M)
    assert twice.value.field == "sensor"
    with pytest.raises(ConfigError, match="2 distinct edge nodes, 3 required") as few:
        SENSORS.combine(reports[:2], CONTEXT, 4, M)
    assert few.value.key == "ids_reports"
    with pytest.raises(ConfigError, match="own report") as own:
        SENSORS.combine(reports[:3], CONTEXT, 4, M, own=reports[3])
    assert own.value.key == "ids_reports"
    assert SENSORS.combine([], CONTEXT, 4, M) == {}  # no reports: no IDS evidence this round


def test_a_witness_refuses_an_altered_set_and_stores_nothing() -> None:
    witness = TrustWitness(range(M), CONFIG, signers=TrustSigners.of([k.address for k in KEYS], T))
    reports = [sign_report(k, CONTEXT, 1, M, {FLAGGED: 2}) for k in KEYS]
    lifted = dataclasses.replace(reports[2], flags=((FRAMED, 2), (FLAGGED, 2)))
    with pytest.raises(IdsReportError, match="signature"):
        witness.vote(1, {}, {}, ids_reports=[reports[0], reports[1], lifted], context=CONTEXT)
    with pytest.raises(ConfigError) as no_context:
        witness.vote(1, {}, {}, ids_reports=reports)
    assert no_context.value.key == "context"
    with pytest.raises(ConfigError) as no_signers:
        TrustWitness(range(M), CONFIG).vote(1, {}, {}, ids_reports=reports, context=CONTEXT)
    assert no_signers.value.key == "trust_signers"
    assert witness.round == 0 and witness.states == {i: initial_state(CONFIG) for i in range(M)}
    witness.vote(1, {}, {}, ids_reports=reports, context=CONTEXT)
    assert {x.device: x.evidence.ids_flags for x in witness.store.records(1)} == {i: 2 if i == FLAGGED else 0 for i in range(M)}


def _kth_largest(values: list[int], k: int) -> int:
    return sorted(values, reverse=True)[k - 1] if k <= len(values) else 0


@settings(max_examples=60, deadline=None)
@given(
    honest=st.lists(st.integers(0, 20), min_size=1, max_size=7),
    liars=st.lists(st.integers(0, COUNT_MAX), max_size=3),
    e=st.integers(0, 3),
)
def test_the_rule_neither_frames_nor_hides_with_at_most_e_liars(honest: list[int], liars: list[int], e: int) -> None:
    """Per device: with at most e lying reports, (e+1)-th largest <= the largest honest count and
    >= the (e+1)-th largest honest count; with e + 1 liars the bound is lost (they set it)."""
    liars = liars[:e]
    reports = [{0: c} for c in honest + liars]
    agreed = combine_counts(reports, e).get(0, 0)
    assert agreed == _kth_largest(honest + liars, e + 1)  # the rule, brute force
    assert agreed <= max(honest)
    assert agreed >= _kth_largest(honest, e + 1)
    for order in itertools.permutations(reports[:4]):  # the order of the reports does not matter
        assert combine_counts(list(order), e) == combine_counts(reports[:4], e)


def test_more_than_e_liars_frame_a_device_by_their_smallest_count() -> None:
    honest, liars = [0, 0, 0], [900, 40]  # e = 1, two liars
    assert combine_counts([{FRAMED: c} for c in honest + liars], 1) == {FRAMED: 40}
    assert combine_counts([{FRAMED: c} for c in honest + liars[:1]], 1) == {}


def test_an_edge_node_signs_one_report_per_round(run) -> None:
    federation, *_ = run
    node = federation.deployment.nodes["edge-1"]
    context = federation.ledger.context
    first = node.ids_report(7, context, {FLAGGED: 1})
    assert node.ids_report(7, context, {FLAGGED: 1}) == first  # asked again: the same report
    from ppbfl.protocol.round_errors import OutOfPhaseError

    with pytest.raises(OutOfPhaseError, match="one per round"):
        node.ids_report(7, context, {FLAGGED: 2})


def test_over_the_wire_nodes_sign_their_own_reports_and_vote_on_the_relayed_ones(run) -> None:
    """Round 3 through the coordinator's transport (full encode / validate / decode): each node
    signs its own detector's counts (``ids_source``) on an ``IdsReportQuery``, the relay carries
    the reports in ``TrustQuery``; edge-4, which refused round 2, catches up (round 2's records with
    their flags, checked against t signatures) and votes again."""
    from ppbfl.protocol.errors import RemoteError
    from ppbfl.protocol.messages import TrustQuery
    from ppbfl.protocol.transport import InProcessTransport
    from ppbfl.protocol.trust_voter import remote_voters

    federation, *_ = run
    keeper, context = federation.trust, federation.ledger.context
    nodes = federation.deployment.nodes
    transport = InProcessTransport("coordinator", nodes)
    voters = remote_voters(transport, federation.ledger.edge_accounts, M, timeout=5.0)
    with pytest.raises(RemoteError, match="no IDS source"):
        voters[0].ids_report(3, context)
    for node in nodes.values():
        node.ids_source = lambda r: {FLAGGED: 3}
    reports = [v.ids_report(3, context) for v in voters]
    assert [x.sensor for x in reports] == [federation.ledger.edge_accounts[j] for j in sorted(federation.ledger.edge_accounts)]
    malformed = TrustQuery(context.contract_bytes, context.chain_id, [], [], 0, ids_reports=[b"\x00" * 10])
    with pytest.raises(RemoteError, match="ids_reports"):
        transport.call("edge-1", malformed, round=3, timeout=5.0)
    keeper.voters = tuple(voters)
    updates, reference = synthetic_round(M, D, set(), seed=3)
    federation.run_round(3, updates, reference, ids_reports=reports)
    before = {x.device: x.after for x in keeper.store.records(2)}
    for x in keeper.store.records(3):
        assert x.after == update(before[x.device], Evidence(ACCEPTED, False, 3 if x.device == FLAGGED else 0), CONFIG)
    assert len(keeper.signatures[3]) == N  # edge-4 adopted round 2 over the wire and voted
    assert nodes["edge-4"].trust_witness.store.rounds() == [1, 2, 3]
    from ppbfl.protocol.errors import PeerAuthError
    from ppbfl.protocol.trust_voter import RemoteTrustVoter

    misattributed = RemoteTrustVoter(transport, 2, federation.ledger.edge_accounts[1], M, timeout=5.0)  # edge-2's reply as edge-1's
    with pytest.raises(PeerAuthError, match="not signed by its registered account"):
        misattributed.ids_report(4, context)


def test_an_operator_run_node_signs_the_counts_its_gateway_wrote_and_nothing_else(tmp_path) -> None:
    """``ppbfl edge --trust-config F --ids-flags DIR``: the node's IDS source is DIR/round-<r>.json
    (``ppbfl ids detect --flags-json``; asked over the wire, ``IdsReportQuery``, it signs that);
    no file or a bad one: a typed refusal, no report (never a report of zeros)."""
    from ppbfl.cli import build_parser, edge_node
    from ppbfl.ids.reputation import write_flags
    from ppbfl.protocol.creds import party_ids, write_credentials

    creds = tmp_path / "creds"
    write_credentials(creds, party_ids(edges=1))
    (tmp_path / "trust.toml").write_text("[trust]\npow_min_bits = 2\npow_max_bits = 6\n")
    flags = tmp_path / "flags"
    flags.mkdir()
    base = ["edge", "--party", "edge-1", "--creds", str(creds), "--ca", str(creds / "ca.crt"), "--unsigned-uploads"]
    node = edge_node(build_parser().parse_args([
        *base, "--trust-config", str(tmp_path / "trust.toml"), "--trust-devices", str(M), "--trust-store", "sqlite://", "--ids-flags", str(flags),
    ]))
    assert node.ids_source is not None
    write_flags(flags / "round-2.json", {FLAGGED: 4, 1: 0})
    report = node.ids_report(2, CONTEXT, node.ids_source(2))
    assert (report.sensor, report.flags) == (node.chain_address, ((FLAGGED, 4),))  # the address ppbfl creds registers for it
    assert IdsSensors.of(TrustSigners.of([node.chain_address], 1)).combine([report], CONTEXT, 2, M) == {FLAGGED: 4}
    with pytest.raises(ConfigError, match=r"round-3\.json") as missing:
        node.ids_source(3)
    (flags / "round-4.json").write_text('{"3": -2}')
    with pytest.raises(ConfigError, match="-2") as negative:
        node.ids_source(4)
    assert missing.value.key == negative.value.key == "ids_flags"
    with pytest.raises(ConfigError) as caught:
        edge_node(build_parser().parse_args([*base, "--ids-flags", str(flags)]))
    assert caught.value.key == "ids_flags_dir"
