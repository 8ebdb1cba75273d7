"""A round's commitTrust signatures read back from the chain: what a restarted keeper relays.

On py-evm and on a real anvil node: a Failed round's trust is committed with t kind-4 signatures
(directly, and through a forwarding contract), then :func:`committed_signatures` must return
exactly the submitted signatures, checked against the registered edge accounts; a round without
commitTrust is None; unregistered signers, a call through another contract: typed refusals.
Then, in process: the keeper is discarded after round 2 (edge-3 missed its vote), a new keeper is
attached to the same contract and store, and edge-3 -- a node without a chain client, behind --
adopts round 2 from the signatures the new keeper read from the chain, so its round-3 vote counts.
"""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain
from ppbfl.chain.attest import KIND_TRUST, ChainKey
from ppbfl.chain.rounds import Phase
from ppbfl.chain.scenario import setup_consortium
from ppbfl.chain.votes import TrustVote
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment, edge_witness
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import PeerUnavailableError
from ppbfl.protocol.ledger import ChainLedger, open_ledger
from ppbfl.protocol.messages import TrustQuery
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.trust_voter import remote_voters
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.committed import committed_signatures
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore
from tests.protocol_helpers import synthetic_round

T, N = 2, 3
BLOCKS = 3


def forwarder_initcode(target: str) -> bytes:
    """Init code of a contract that CALLs ``target`` with its own calldata (reverting if that
    reverts): a relay that submits ``commitTrust`` through another contract. Hand-assembled:
    CALLDATACOPY(0, 0, size); CALL(gas, target, 0, 0, size, 0, 0); revert on failure."""
    runtime = (
        bytes.fromhex("365f5f37" "5f5f365f5f" "73") + bytes.fromhex(target[2:])
        + bytes.fromhex("5af1" "15" "6025" "57" "00" "5b" "5f5ffd")
    )
    assert runtime[0x25] == 0x5B  # the JUMPDEST the revert branch jumps to
    return bytes([0x60, len(runtime), 0x80, 0x60, 0x09, 0x5F, 0x39, 0x5F, 0xF3]) + runtime


def _failed_round(c, round_: int) -> None:
    c.rounds.open_round(round_, keccak(b"model"))
    c.chain.mine(BLOCKS + 1)
    c.rounds.abort_round(round_)
    assert c.rounds.round_state(round_).phase == Phase.FAILED


@pytest.fixture(scope="module", params=["py-evm", "anvil"])
def committed(request):
    """Rounds 1 (committed directly by edges 1, 3), 2 (through a forwarder), 3 (none) on a fresh
    consortium, with blocks before the deployment and between the rounds. Yields (consortium, {round: signatures})."""
    with (Chain.embedded(accounts=20) if request.param == "py-evm" else Chain.anvil(accounts=20)) as chain:
        chain.mine(50)
        c = setup_consortium(chain, T, N, 3, pow_bits=2, commit_blocks=BLOCKS, verify_blocks=BLOCKS, aggregate_blocks=BLOCKS, audit_blocks=BLOCKS)
        submitted = {}
        for r in (1, 2, 3):
            _failed_round(c, r)
        vote = TrustVote.of(keccak(b"round 1"), [0, 1, 2], [2**13, 2**15, 0])
        submitted[1] = c.sign((1, 3), KIND_TRUST, 1, vote.digest)
        chain.mine(30)
        c.rounds.commit_trust(1, vote.root, vote.slots, vote.words, submitted[1], sender=c.devices[0])  # anyone relays
        chain.mine(30)
        receipt = chain.w3.eth.wait_for_transaction_receipt(
            chain.w3.eth.send_transaction({"from": chain.funder, "data": forwarder_initcode(c.rounds.address), "gas": 200_000}),
        )
        vote2 = TrustVote.of(keccak(b"round 2"), [0, 1, 2], [2**14, 2**14, 2**14])
        submitted[2] = c.sign((2, 3), KIND_TRUST, 2, vote2.digest)
        data = c.rounds.contract.encode_abi("commitTrust", [2, vote2.root, list(vote2.slots), list(vote2.words), b"".join(submitted[2])])
        chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction(
            {"from": chain.funder, "to": receipt["contractAddress"], "data": data, "gas": 2_000_000},
        ))
        assert c.rounds.round_state(2).anchor == vote2.root  # the forwarded call was accepted
        chain.mine(30)
        yield c, submitted


def test_the_submitted_signatures_are_read_back_from_the_transaction(committed) -> None:
    c, submitted = committed
    signers = TrustSigners.of(c.edge_accounts.values(), T)
    assert committed_signatures(c.rounds, 1, signers) == tuple(submitted[1])
    assert committed_signatures(c.rounds, 3, signers) is None  # failed, trust never committed
    assert committed_signatures(c.rounds, 7, signers) is None  # never opened


def test_signatures_of_other_accounts_or_a_call_through_another_contract_are_refused(committed) -> None:
    c, _ = committed
    others = TrustSigners.of([ChainKey.generate().address for _ in range(N)], T)
    with pytest.raises(ConfigError, match="0 valid signatures") as caught:
        committed_signatures(c.rounds, 1, others)
    assert caught.value.key == "signatures"
    with pytest.raises(ConfigError, match="does not call the contract directly") as caught:
        committed_signatures(c.rounds, 2, TrustSigners.of(c.edge_accounts.values(), T))
    assert caught.value.key == "signatures"


# ------------------------------------------------------------------ a restarted keeper relays

D, M = 16, 4
SIGN_FLIPPER = 1
CONFIG = TrustConfig(pow_min_bits=2, pow_max_bits=6)


class _Unreachable:
    """The coordinator's transport, with trust queries to ``(party, round)`` in ``down`` failing."""

    def __init__(self, inner, down):
        self.inner, self.down = inner, down

    def call(self, party, message, **kwargs):
        if isinstance(message, TrustQuery) and (party, kwargs.get("round")) in self.down:
            raise PeerUnavailableError(party, 1, kwargs.get("timeout", 0.0), "UNAVAILABLE", "down for the test")
        return self.inner.call(party, message, **kwargs)


def _counting(contract, counted):
    commit = contract.commit_trust

    def counting(round_, root, slots, words, signatures, **kw):
        counted[round_] = tuple(signatures)
        return commit(round_, root, slots, words, signatures, **kw)

    contract.commit_trust = counting


def test_a_restarted_keeper_relays_a_missed_round_from_the_chain(tmp_path) -> None:
    """Rounds 1, 2 with keeper A (edge-3 unreachable for round 2's vote: 2 signatures); A is
    discarded; keeper B (a ledger attached to the contract, the same store file, nothing in
    memory) runs round 3: edge-3 says it is behind, B reads round 2's signatures from the
    commitTrust transaction and relays them, edge-3 adopts round 2 and its vote counts (3
    signatures; 2 if the signatures were not found). edge-3's store then holds the anchored rounds."""
    deployment = InProcessDeployment(T, N, D)
    url = f"sqlite:///{tmp_path / 'keeper.db'}"
    with open_ledger("embedded", T, N, devices=M, edge_accounts=deployment.edge_accounts, trust=initial_trust(CONFIG)) as ledger:
        signers = {"accounts": list(ledger.edge_accounts.values()), "t": T}
        for node in deployment.nodes.values():  # processes without a chain client: they check relayed rounds against t signatures
            node.trust_witness = edge_witness(CONFIG.model_dump(mode="json"), M, None, signers)
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        relay = _Unreachable(deployment.coordinator, {(edge_party(3), 2)})
        counted: dict[int, tuple[bytes, ...]] = {}
        _counting(ledger.contract, counted)
        first = TrustKeeper(range(M), CONFIG, store=TrustStore(url), ledger=ledger, voters=remote_voters(relay, ledger.edge_accounts, M))
        federation = Federation(deployment, coordinator, range(M), ledger=ledger, trust=first)
        for r in (1, 2):
            federation.run_round(r, *synthetic_round(M, D, {SIGN_FLIPPER}, seed=r))
        assert {r: len(s) for r, s in counted.items()} == {1: 3, 2: 2}
        first.store.close()
        del first  # the keeper process is gone, and the signatures it held with it

        attached = ChainLedger.attach(ledger.chain, ledger.address)
        _counting(attached.contract, counted)
        second = TrustKeeper(range(M), CONFIG, store=TrustStore(url), ledger=attached, voters=remote_voters(relay, attached.edge_accounts, M))
        assert second.signatures == {} and second.store.rounds() == [1, 2]
        federation.trust = second
        federation.run_round(3, *synthetic_round(M, D, {SIGN_FLIPPER}, seed=3))
        assert len(counted[3]) == 3  # edge-3 caught up and counted again
        assert second.signatures[2] == counted[2]  # round 2's signatures, read from the chain, as submitted
        witness = deployment.nodes[edge_party(3)].trust_witness
        assert witness is not None and witness.store.rounds() == [1, 2, 3]
        assert [witness.store.root(r) for r in (1, 2, 3)] == [ledger.contract.round_state(r).anchor for r in (1, 2, 3)]
        assert witness.states == second.states
        second.store.close()
        federation.close()
    deployment.close()

