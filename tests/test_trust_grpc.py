"""Trust agreed on chain by edge-node processes over gRPC: each process computes and signs the
round's update from the decisions it signed (its own store, its own folder), the coordinator only
relays :class:`TrustQuery` / :class:`TrustVoteReply`; a relay altering a reply is refused. A
process that missed a round's vote is behind (:class:`TrustBehind`), is relayed the round
(:class:`TrustCatchUp`, checked against t registered edge signatures) and votes in the next one."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.votes import TrustVote
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment, edge_witness, make_edge_node
from ppbfl.protocol.edge_node import COORDINATOR_PARTY, edge_party
from ppbfl.protocol.errors import MessageError, PeerAuthError, PeerUnavailableError, RemoteError
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.messages import TrustQuery, TrustVoteReply
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.trust_voter import RemoteTrustVoter
from ppbfl.protocol.wire import decode, encode
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore
from tests.protocol_helpers import synthetic_round

T, N, D, M = 2, 3, 32, 6
SIGN_FLIPPER = 1
CONFIG = TrustConfig(pow_min_bits=4, pow_max_bits=10)


class _Relay:
    """The coordinator's transport with a relay that alters trust vote replies: ``alter[party]``
    maps a reply to what the relay passes on; trust queries to ``(party, round)`` in
    ``unreachable`` fail as if the node were down."""

    def __init__(self, inner):
        self.inner, self.alter, self.unreachable = inner, {}, set()

    def call(self, party, message, **kwargs):
        if isinstance(message, TrustQuery) and (party, kwargs.get("round")) in self.unreachable:
            raise PeerUnavailableError(party, 1, kwargs.get("timeout", 0.0), "UNAVAILABLE", "left out by the test")
        reply = self.inner.call(party, message, **kwargs)
        if isinstance(reply.message, TrustVoteReply) and party in self.alter:
            return dataclasses.replace(reply, message=self.alter[party](reply.message))
        return reply

    def close(self):
        self.inner.close()


def _flip_signature(reply: TrustVoteReply) -> TrustVoteReply:
    return dataclasses.replace(reply, signature=reply.signature[:40] + bytes([reply.signature[40] ^ 1]) + reply.signature[41:])


def _lift_words(reply: TrustVoteReply) -> TrustVoteReply:
    lifted = int.from_bytes(reply.words[0], "big") | 0x7FFF << (16 * SIGN_FLIPPER)
    return dataclasses.replace(reply, words=(lifted.to_bytes(32, "big"), *reply.words[1:]))


@pytest.fixture(scope="module")
def grpc_round(tmp_path_factory):
    """One round over gRPC with a ledger and trust: every edge node its own process with its own
    trust store under ``folder/edge-<j>``; the relay alters edge-1's reply (its signature), and the
    keeper's commit is first tried with edge-2's and edge-3's signatures over words a relay lifted.
    Yields (deployment, ledger, keeper, result, folder, relay, the signatures committed, the refused try's error, federation)."""
    folder = tmp_path_factory.mktemp("trust-grpc")
    with GrpcDeployment(T, N, D, trust_config=CONFIG, trust_devices=M, trust_dir=folder, ids_flags_dir=folder / "flags") as deployment, \
            open_ledger("embedded", T, N, devices=M, edge_accounts=deployment.edge_accounts, trust=initial_trust(CONFIG)) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger, timeout=20.0)
        coordinator.setup()
        relay = _Relay(deployment.coordinator)
        relay.alter[edge_party(1)] = _flip_signature
        voters = [RemoteTrustVoter(relay, j, account, M) for j, account in sorted(ledger.edge_accounts.items())]
        keeper = TrustKeeper(range(M), CONFIG, ledger=ledger, voters=voters)
        committed: list[list[bytes]] = []
        refused: list[str] = []
        honest_commit = ledger.contract.commit_trust

        def commit(round_, root, slots, words, signatures, **kw):
            lifted = [words[0] | 0x7FFF << (16 * SIGN_FLIPPER), *words[1:]]
            try:  # a relay that skips the voter's check and submits altered words with the nodes' signatures
                honest_commit(round_, root, slots, lifted, signatures, **kw)
                refused.append("accepted")
            except ChainRevertError as error:
                refused.append(error.error)
            committed.append(list(signatures))
            return honest_commit(round_, root, slots, words, signatures, **kw)

        ledger.contract.commit_trust = commit
        federation = Federation(deployment, coordinator, range(M), ledger=ledger, trust=keeper)
        updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=3)
        result = federation.run_round(1, updates, reference)
        ledger.contract.commit_trust = honest_commit
        yield deployment, ledger, keeper, result, folder, relay, committed, refused, federation
        federation.close()


def test_edge_processes_commit_trust_on_chain_with_their_own_signatures(grpc_round) -> None:
    """The round's trust is on chain with the signatures of edge-2 and edge-3 (edge-1's reply was
    altered on the way and left out): t distinct registered edge processes; the chain's trust and
    anchor are the keeper's own update, which each process also holds in its own store."""
    _, ledger, keeper, result, folder, _, committed, _, _ = grpc_round
    assert result.rejected[SIGN_FLIPPER] and keeper.last is not None and keeper.last.gas > 0
    assert len(committed) == 1 and len(committed[0]) == T
    vote = TrustVote.of(keeper.last.root, list(range(M)), [keeper.states[i].weight_trust for i in range(M)])
    signers = {j for j, account in ledger.edge_accounts.items() for s in committed[0] if vote.signed_by(account, s, ledger.context, 1)}
    assert signers == {2, 3}
    assert ledger.contract.round_state(1).anchor == keeper.last.root
    for i in range(M):
        assert round(ledger.contract.trust(ledger.device_ids[i]) * 2**15) == keeper.states[i].weight_trust
    assert keeper.states[SIGN_FLIPPER].trust < keeper.states[0].trust
    for j in range(1, N + 1):  # each process's own store, in its own folder
        store = TrustStore(f"sqlite:///{folder / edge_party(j) / 'trust.db'}")
        try:
            assert store.rounds() == [1] and store.root(1) == keeper.last.root and store.latest_states() == keeper.states
        finally:
            store.close()


@pytest.fixture(scope="module")
def missed_round(grpc_round):
    """Rounds 2 and 3 after :func:`grpc_round` (so after the test reading round 1 alone, above it
    in this file, and before the next test, whose round-5 query moves edge-2 past round 2), the
    relay honest but edge-3 unreachable for round 2's trust query. Yields
    (signatures committed per round, the commitTrust rounds)."""
    _, ledger, _, _, folder, relay, _, _, federation = grpc_round
    relay.alter.clear()
    relay.unreachable.add((edge_party(3), 2))
    counted: dict[int, int] = {}
    honest_commit = ledger.contract.commit_trust

    def counting(round_, root, slots, words, signatures, **kw):
        counted[round_] = len(signatures)
        return honest_commit(round_, root, slots, words, signatures, **kw)

    ledger.contract.commit_trust = counting
    for r in (2, 3):
        updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=r)
        federation.run_round(r, updates, reference)
    ledger.contract.commit_trust = honest_commit
    return counted, folder


def test_an_edge_process_that_missed_a_round_catches_up_and_votes_in_the_next(grpc_round, missed_round) -> None:
    """edge-3 misses round 2's vote (round 2 commits with edge-1 and edge-2); at round 3 it says it
    is behind, is relayed round 2 with its t signatures, adopts it and its round-3 vote counts
    (3 signatures). Its own store then holds rounds 1..3 with the anchored roots."""
    _, ledger, keeper, _, _, _, _, _, _ = grpc_round
    counted, folder = missed_round
    assert counted == {2: 2, 3: 3}
    assert set(keeper.signatures) == {1, 2, 3} and len(keeper.signatures[2]) == T
    store = TrustStore(f"sqlite:///{folder / edge_party(3) / 'trust.db'}")
    try:
        assert store.rounds() == [1, 2, 3]
        assert [store.root(r) for r in (1, 2, 3)] == [ledger.contract.round_state(r).anchor for r in (1, 2, 3)]
        assert store.latest_states() == keeper.states
    finally:
        store.close()


def test_a_relay_altering_a_vote_reply_is_refused(grpc_round) -> None:
    """An altered signature or altered trust words fail the voter's check (PeerAuthError naming the
    node); submitted anyway, the chain refuses the altered words; the reply as sent is accepted."""
    deployment, ledger, _, _, _, relay, _, refused, _ = grpc_round
    assert refused == ["UnknownSigner"]
    account = ledger.edge_accounts[2]
    for alter in (_flip_signature, _lift_words):
        relay.alter[edge_party(2)] = alter
        with pytest.raises(PeerAuthError, match="edge-2"):
            RemoteTrustVoter(relay, 2, account, M).trust_vote(1, ledger.context, ledger.commitments(1))
    relay.alter.pop(edge_party(2))
    vote, signature = RemoteTrustVoter(relay, 2, account, M).trust_vote(1, ledger.context, ledger.commitments(1))
    assert vote.signed_by(account, signature, ledger.context, 1)  # re-signed from the node's store
    with pytest.raises(PeerAuthError, match="edge-3"):  # a node's vote checked against another node's account
        RemoteTrustVoter(relay, 3, account, M).trust_vote(1, ledger.context, ledger.commitments(1))
    with pytest.raises(MessageError, match="slots"):  # more slots than the round's devices fill
        RemoteTrustVoter(relay, 2, account, 0).trust_vote(1, ledger.context, ledger.commitments(1))
    with pytest.raises(RemoteError, match="signed no decisions"):  # a round the node took no part in
        RemoteTrustVoter(deployment.coordinator, 2, account, M).trust_vote(5, ledger.context, {})


# -- the messages and the handler, in process ---------------------------------------------------


replies = st.builds(
    TrustVoteReply, st.binary(min_size=32, max_size=32), st.lists(st.integers(0, 2**32 - 1), max_size=4),
    st.lists(st.binary(min_size=32, max_size=32), max_size=4), st.binary(min_size=65, max_size=65),
)
queries = st.builds(
    TrustQuery, st.binary(min_size=20, max_size=20), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**32 - 1), max_size=6),
    st.lists(st.binary(min_size=32, max_size=32), max_size=6),
)


@settings(max_examples=40, deadline=None)
@given(msg=st.one_of(replies, queries), rnd=st.integers(0, 2**63 - 1))
def test_trust_messages_round_trip(msg, rnd) -> None:
    env = decode(encode(msg, sender="edge-1", round=rnd), expected_sender="edge-1", expected_kind=(TrustQuery, TrustVoteReply))
    assert env.round == rnd and env.message == dataclasses.replace(msg, **{f.name: tuple(getattr(msg, f.name)) for f in dataclasses.fields(msg)
                                                                        if isinstance(getattr(msg, f.name), list)})


@pytest.mark.parametrize("change, field", [
    ({"signature": bytes(64)}, "signature"), ({"root": bytes(31)}, "root"), ({"words": [bytes(33)]}, "words[0]"),
    ({"slots": [2**32]}, "slots[0]"), ({"slots": list(range(4097))}, "slots"),
])
def test_malformed_trust_vote_replies_are_message_errors(change, field) -> None:
    good = TrustVoteReply(bytes(32), [0], [bytes(32)], bytes(65))
    with pytest.raises(MessageError) as caught:
        encode(dataclasses.replace(good, **change), sender="edge-1", round=1)
    assert caught.value.field == field


@pytest.fixture(scope="module")
def set_up():
    """An in-process tier, set up, whose nodes have trust witnesses of M devices (no round yet)."""
    deployment = InProcessDeployment(T, N, D)
    Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec()).setup()
    for node in deployment.nodes.values():
        node.trust_witness = edge_witness(CONFIG.model_dump(mode="json"), M, None)
    return deployment


@pytest.mark.parametrize("query, sender, why", [
    (TrustQuery(bytes(20), 1, [0, 1], [bytes(32)]), COORDINATOR_PARTY, "2 devices .* for 1 commitments"),
    (TrustQuery(bytes(20), 1, [0, 0], [bytes(32)] * 2), COORDINATOR_PARTY, "distinct"),
    (TrustQuery(bytes(20), 1, [M], [bytes(32)]), COORDINATOR_PARTY, rf"devices \[{M}\] are not registered"),
    (TrustQuery(bytes(20), 1, [], []), COORDINATOR_PARTY, "round 1: this node signed no decisions"),
    (TrustQuery(bytes(20), 1, [], []), "device-0", "trust query must come from coordinator"),
])
def test_the_handler_refuses_bad_trust_queries_with_typed_errors(set_up, query, sender, why) -> None:
    from ppbfl.protocol.transport import InProcessTransport

    transport = InProcessTransport(sender, set_up.nodes)
    with pytest.raises(RemoteError, match=why) as caught:
        transport.call(edge_party(1), query, round=1, timeout=5.0)
    assert caught.value.remote_type == "OutOfPhaseError"


def test_edge_trust_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="trust_devices"):
        make_edge_node(trust_config={}, trust_devices=0)
    with pytest.raises(ConfigError, match="trust_config"):
        make_edge_node(trust_config={"forgetting": 2.0}, trust_devices=M)


@pytest.mark.parametrize("toml, devices, message", [
    (None, M, "trust_config: .*missing.toml"),
    ("[trust\n", M, "trust_config: "),
    ("[trust]\nforgetting = 2.0\n", M, "trust_config.forgetting"),
    ("[trust]\nforgetting = 0.8\n", 0, "trust_devices"),
])
def test_ppbfl_edge_names_a_bad_trust_setting_with_exit_status_2(tmp_path, capsys, toml, devices, message) -> None:
    from ppbfl.cli import main
    from ppbfl.protocol.creds import write_credentials

    write_credentials(tmp_path, ["edge-1"])
    if toml is not None:
        (tmp_path / "missing.toml").write_text(toml)
    args = ["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt"),
            "--trust-config", str(tmp_path / "missing.toml"), "--trust-devices", str(devices)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppbfl edge: ConfigError: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_ppbfl_edge_trust_options_give_the_node_its_own_witness(tmp_path) -> None:
    import argparse

    from ppbfl.cli import _edge_trust

    (tmp_path / "trust.toml").write_text("[trust]\nforgetting = 0.8\npow_max_bits = 12\n")
    store = f"sqlite:///{tmp_path / 'edge-1.db'}"
    settings = _edge_trust(argparse.Namespace(trust_config=str(tmp_path / "trust.toml"), trust_devices=M, trust_store=store, trust_t=None))
    node = make_edge_node(**settings)
    assert node.trust_witness is not None and node.trust_witness.config == TrustConfig(forgetting=0.8, pow_max_bits=12)
    assert sorted(node.trust_witness.states) == list(range(M)) and (tmp_path / "edge-1.db").exists()
    node.trust_witness.store.close()



def test_edge_processes_sign_their_gateways_ids_counts_and_vote_with_the_relayed_reports(grpc_round) -> None:
    """Round 4 (after the tests above): each process signs its gateway's counts
    (``ids_flags_dir/edge-j/round-4.json``) when the relay asks over gRPC, the relay carries the
    three reports in every trust query, and the processes that took part (edge-1, edge-3: the
    round-5 query above moved edge-2 past round 4) sign the same flags for device 0."""
    from ppbfl.ids.reputation import write_flags
    from ppbfl.trust.reputation import Evidence, update

    _, ledger, keeper, _, folder, _, _, _, federation = grpc_round
    for j in range(1, N + 1):
        (folder / "flags" / edge_party(j)).mkdir(parents=True, exist_ok=True)
        write_flags(folder / "flags" / edge_party(j) / "round-4.json", {0: 2})
    reports = [voter.ids_report(4, ledger.context) for voter in keeper.voters]
    assert [x.sensor for x in reports] == [ledger.edge_accounts[j] for j in range(1, N + 1)]
    updates, reference = synthetic_round(M, D, {SIGN_FLIPPER}, seed=4)
    federation.run_round(4, updates, reference, ids_reports=reports)
    assert len(keeper.signatures[4]) == T and ledger.contract.round_state(4).anchor == keeper.store.root(4)  # edge-1, edge-3
    with pytest.raises(RemoteError, match="signed no decisions"):  # edge-2 is past round 4 (the round-5 query above)
        keeper.voters[1].trust_vote(4, ledger.context, ledger.commitments(4), ids_reports=reports)
    for x in keeper.store.records(4):
        assert x.evidence.ids_flags == (2 if x.device == 0 else 0)
        assert x.after == update(x.before, Evidence(x.evidence.reason, False, x.evidence.ids_flags), CONFIG)
