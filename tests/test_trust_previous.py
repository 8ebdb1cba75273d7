"""A relay lies about ``previous`` in TrustQuery; an edge node that reads the chain is not misled.

t = 2 of n = 4 edge nodes, in process, asked through the coordinator's transport as processes are
(RemoteTrustVoter); edge-3 and edge-4 are unreachable for round 2's trust vote. In round 3 the
relay rewrites ``previous``: 10 to edge-2 (up to date: a node on the relay's word would say it is
behind and stay out), 0 to edge-3 and edge-4 (both behind: on the relay's word they vote from
round 1's states). edge-2 and edge-3 read the chain (a ChainRegistry, as ``ppbfl edge --chain``):
edge-2 votes, edge-3 says it is behind, is relayed round 2 and votes; both count. edge-4 reads no
chain: it votes from stale states, its vote does not count, and the round it stores is not the
anchored one (the weaker case, repaired later by the keeper's relay)."""

from __future__ import annotations

import dataclasses

from ppbfl.chain.votes import TrustVote
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.deployment import InProcessDeployment, edge_witness
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import PeerUnavailableError
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.messages import TrustBehind, TrustQuery
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.trust_voter import remote_voters
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.keeper import TrustKeeper
from tests.protocol_helpers import synthetic_round

T, N, D, M = 2, 4, 16, 4
SIGN_FLIPPER = 1
CONFIG = TrustConfig(pow_min_bits=2, pow_max_bits=6)


class _LyingRelay:
    """The coordinator's transport: trust queries to ``(party, round)`` in ``down`` fail; those to
    ``party`` in ``previous`` carry that number instead of the keeper's; ``replies`` records what
    each party answered to a trust query."""

    def __init__(self, inner, down):
        self.inner, self.down, self.previous, self.replies = inner, down, {}, []

    def call(self, party, message, **kwargs):
        if isinstance(message, TrustQuery):
            if (party, kwargs.get("round")) in self.down:
                raise PeerUnavailableError(party, 1, kwargs.get("timeout", 0.0), "UNAVAILABLE", "down for the test")
            if party in self.previous:
                message = dataclasses.replace(message, previous=self.previous[party])
        reply = self.inner.call(party, message, **kwargs)
        if isinstance(message, TrustQuery):
            self.replies.append((party, kwargs.get("round"), type(reply.message).__name__))
        return reply


def test_nodes_that_read_the_chain_ignore_the_relay_s_previous() -> None:
    deployment = InProcessDeployment(T, N, D)
    with open_ledger("embedded", T, N, devices=M, edge_accounts=deployment.edge_accounts, trust=initial_trust(CONFIG)) as ledger:
        signers = {"accounts": list(ledger.edge_accounts.values()), "t": T}
        for node in deployment.nodes.values():
            node.trust_witness = edge_witness(CONFIG.model_dump(mode="json"), M, None, signers)
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        relay = _LyingRelay(deployment.coordinator, {(edge_party(3), 2), (edge_party(4), 2)})
        keeper = TrustKeeper(range(M), CONFIG, ledger=ledger, voters=remote_voters(relay, ledger.edge_accounts, M))
        federation = Federation(deployment, coordinator, range(M), ledger=ledger, trust=keeper)
        committed: dict[int, tuple[bytes, ...]] = {}
        commit = ledger.contract.commit_trust

        def counting(round_, root, slots, words, signatures, **kw):
            committed[round_] = tuple(signatures)
            return commit(round_, root, slots, words, signatures, **kw)

        ledger.contract.commit_trust = counting  # type: ignore[method-assign]
        for r in (1, 2):
            federation.run_round(r, *synthetic_round(M, D, {SIGN_FLIPPER}, seed=r))
        assert {r: len(s) for r, s in committed.items()} == {1: 4, 2: 2}

        for j in (2, 3):  # these two read the chain, as `ppbfl edge --chain URL --contract ADDRESS` does
            deployment.nodes[edge_party(j)].registry = ChainRegistry(ledger.contract)
        relay.previous = {edge_party(2): 10, edge_party(3): 0, edge_party(4): 0}
        relay.replies.clear()
        federation.run_round(3, *synthetic_round(M, D, {SIGN_FLIPPER}, seed=3))

        assert keeper.last is not None and keeper.last.round == 3
        vote = TrustVote.of(keeper.last.root, list(range(M)), [keeper.states[i].weight_trust for i in range(M)])
        signed = {j for j, account in ledger.edge_accounts.items() for s in committed[3] if vote.signed_by(account, s, ledger.context, 3)}
        assert signed == {1, 2, 3}
        assert (edge_party(3), 3, "TrustBehind") in relay.replies  # it did not vote from round 1's states
        assert (edge_party(2), 3, "TrustBehind") not in relay.replies and (edge_party(4), 3, "TrustBehind") not in relay.replies
        anchors = [ledger.contract.round_state(r).anchor for r in (1, 2, 3)]
        for j in (1, 2, 3):
            witness = deployment.nodes[edge_party(j)].trust_witness
            assert witness is not None and [witness.store.root(r) for r in witness.store.rounds()] == anchors
        stale = deployment.nodes[edge_party(4)].trust_witness
        assert stale is not None and stale.store.rounds() == [1, 3] and stale.store.root(3) != anchors[2]
        federation.close()
    deployment.close()


def test_a_node_that_reads_the_chain_answers_behind_from_the_chain_alone() -> None:
    """The handler on its own: a witness holding round 1 of a chain whose round 2 is anchored is
    behind at round 3 whatever ``previous`` says (0, 1 or 5): it answers TrustBehind(1)."""
    deployment = InProcessDeployment(T, N, D)
    with open_ledger("embedded", T, N, devices=M, edge_accounts=deployment.edge_accounts, trust=initial_trust(CONFIG)) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        keeper = TrustKeeper(range(M), CONFIG, ledger=ledger, voters=list(deployment.nodes.values()))
        federation = Federation(deployment, coordinator, range(M), ledger=ledger, trust=keeper)
        for r in (1, 2):
            federation.run_round(r, *synthetic_round(M, D, {SIGN_FLIPPER}, seed=r))
        reader = deployment.nodes[edge_party(1)]
        reader.registry = ChainRegistry(ledger.contract)
        witness = edge_witness(CONFIG.model_dump(mode="json"), M, None, None)
        witness.store.add_round(1, keeper.store.records(1))
        witness.states = {x.device: x.after for x in keeper.store.records(1)}
        reader.trust_witness = witness
        contract = bytes.fromhex(ledger.address[2:])
        for previous in (0, 1, 5):
            query = TrustQuery(contract, ledger.contract.chain_id, list(range(M)), [bytes(32)] * M, previous)
            assert deployment.coordinator.call(edge_party(1), query, round=3, timeout=5.0).message == TrustBehind(1)
        federation.close()
    deployment.close()
