"""The chain context an edge node signs its votes for comes from the coordinator (a relay): another
chain id gets signatures that are useless on the real contract, a malformed contract address is
refused by every node with a typed error; either way the round is aborted on chain, nothing is
forged, and the next round with the real context closes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ppbfl.chain.rounds import Phase
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.ledger import ChainLedger, open_ledger
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, OutOfPhaseError, RoundFailedError

T, N, D, M = 2, 3, 16, 2


class LyingRelay:
    """The coordinator's view of its ledger, except the chain context it sends the nodes (``lie``)."""

    def __init__(self, ledger: ChainLedger) -> None:
        self._ledger, self.lie = ledger, None

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._ledger, name)

    @property
    def context(self):  # type: ignore[no-untyped-def]
        return self._ledger.context if self.lie is None else self.lie


@pytest.mark.parametrize("lie", ["another chain id", "a 5-byte contract address"])
def test_a_relayed_chain_context_other_than_the_ledgers_gets_nothing_agreed_and_the_next_round_closes(lie, caplog):
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1e-3, D)
    with open_ledger("embedded", T, N, devices=M) as ledger:
        real, relay = ledger.context, LyingRelay(ledger)
        deployment = InProcessDeployment(T, N, D)
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=relay)  # type: ignore[arg-type]
        with Federation(deployment, coordinator, range(M), ledger=ledger, owns_deployment=True) as federation:
            relay.lie = (
                SimpleNamespace(contract=real.contract, contract_bytes=real.contract_bytes, chain_id=real.chain_id + 1)
                if lie == "another chain id" else SimpleNamespace(contract="0x" + "01" * 5, contract_bytes=b"\x01" * 5, chain_id=real.chain_id)
            )
            with pytest.raises((RoundFailedError, NotEnoughEdgeNodesError)) as caught:
                federation.run_round(1, {i: reference + rng.normal(0, 1e-3, D) for i in range(M)}, reference)
            if lie == "another chain id":  # the nodes signed for the wrong chain: no signature counts on this one
                assert isinstance(caught.value, RoundFailedError) and "fewer than t" in str(caught.value)
            else:  # every node refused to sign for a malformed address, with a typed error naming it
                refusals = {r.message.split()[2]: r.exc_info[1] for r in caplog.records if r.exc_info and "AggregateRequest" in r.message}
                assert sorted(refusals) == ["edge-1", "edge-2", "edge-3"]
                assert all(isinstance(e, OutOfPhaseError) and "cannot sign its chain votes" in str(e) for e in refusals.values())
            state = ledger.contract.round_state(1)
            assert (state.phase, state.scalar_voters, state.scalars_hash) == (Phase.FAILED, (), bytes(32))
            relay.lie = None
            result = federation.run_round(2, {i: reference + rng.normal(0, 1e-3, D) for i in range(M)}, reference)
        assert result.accepted == list(range(M))
        assert ledger.contract.round_state(2).phase is Phase.CLOSED
