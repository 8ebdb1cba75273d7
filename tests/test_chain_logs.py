"""Log scans start at the contract's deployment block and ask a bounded range per call.

The deployment block from the receipt, from the binary search on eth_getCode, and a linear scan
of every block (the oracle) agree; chunked scans return exactly what one eth_getLogs over the
whole chain returns, for every start and chunk size; a node that cannot serve old state makes the
search answer 0 (scan from genesis), never a block after the deployment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain import Chain
from ppbfl.chain.errors import ChainError, ChainValueError
from ppbfl.chain.logs import deployment_block, scan_logs
from ppbfl.chain.rounds import RoundsContract, deploy_rounds, load_artifact

GAPS = (0, 3, 1, 7, 0, 12, 2)


@pytest.fixture(scope="module")
def chain_with_events():
    """A contract deployed after 9 blocks, then PowRangeSet events separated by ``GAPS`` empty
    blocks and three devices registered. Yields (chain, contract)."""
    with Chain.embedded(accounts=12) as chain:
        chain.mine(9)
        contract = deploy_rounds(chain, 2, 3)
        for k, gap in enumerate(GAPS):
            if gap:
                chain.mine(gap)
            contract.set_pow_range(2 + k, 10 + k, 1 << 14)
        for _ in range(3):
            contract.register_device(chain.new_account(), 4)
            chain.mine(2)
        yield chain, contract


def _hashes(logs) -> list[tuple[bytes, int]]:
    return [(bytes(x["transactionHash"]), int(x["logIndex"])) for x in logs]


def test_the_deployment_block_is_the_receipt_s_and_the_first_block_with_code(chain_with_events) -> None:
    chain, contract = chain_with_events
    first_with_code = next(b for b in range(chain.block_number + 1) if chain.w3.eth.get_code(contract.address, b))
    assert contract.deployed_at == first_with_code == deployment_block(chain.w3, contract.address) == 10
    attached = RoundsContract(chain, contract.address, load_artifact()["abi"])  # by address alone: searched on first use
    assert attached.deployed_at == first_with_code
    assert RoundsContract(chain, contract.address, load_artifact()["abi"], deployed_at=3).deployed_at == 3  # earlier: only slower
    late = RoundsContract(chain, contract.address, load_artifact()["abi"], deployed_at=first_with_code + 1)
    with pytest.raises(ChainValueError, match="after the contract's deployment") as caught:  # later: scans would miss logs
        late.liar_reports()
    assert caught.value.field == "deployed_at"


@settings(max_examples=15, deadline=None)
@given(start=st.integers(0, 45), chunk=st.integers(1, 40), first_chunk=st.integers(1, 8), device=st.sampled_from([None, 0, 2]))
def test_chunked_scans_return_exactly_one_whole_range_query(chain_with_events, start, chunk, first_chunk, device) -> None:
    chain, contract = chain_with_events
    event = contract.contract.events.PowRangeSet if device is None else contract.contract.events.DeviceRegistered
    filters = {} if device is None else {"id": device}
    whole = event().get_logs(from_block=0, to_block=chain.block_number, argument_filters=filters)
    expected = [x for x in whole if x["blockNumber"] >= start]
    assert _hashes(scan_logs(event, start, argument_filters=filters, chunk=chunk)) == _hashes(expected)
    found = scan_logs(event, start, argument_filters=filters, chunk=chunk, first_chunk=first_chunk, first=True)
    # first=True: a prefix of the matches holding the first, whole blocks, from one call of <= chunk blocks
    assert _hashes(found) == _hashes(expected[:len(found)]) and bool(found) == bool(expected)
    if found:
        assert found[-1]["blockNumber"] - found[0]["blockNumber"] < chunk
        assert len(found) == len(expected) or expected[len(found)]["blockNumber"] > found[-1]["blockNumber"]


class _PrunedEth:
    """An ``eth`` namespace whose node serves state of the latest block only."""

    def __init__(self, eth):
        self.eth = eth
        self.block_number = eth.block_number

    def get_code(self, address, block):
        if block != self.block_number:
            raise ValueError("missing trie node")
        return self.eth.get_code(address, block)


class _Pruned:
    def __init__(self, w3):
        self.eth = _PrunedEth(w3.eth)


def test_without_old_state_the_search_answers_genesis_and_without_code_it_refuses(chain_with_events) -> None:
    chain, contract = chain_with_events
    assert deployment_block(_Pruned(chain.w3), contract.address) == 0  # type: ignore[arg-type]
    with pytest.raises(ChainError, match="no contract"):
        deployment_block(chain.w3, chain.funder)
    with pytest.raises(ChainError, match="no contract"):
        deployment_block(chain.w3, contract.address, latest=5)


@pytest.mark.parametrize("start, chunk, first_chunk, field", [(-1, 10, 1, "start"), (0, 0, 1, "chunk"), (0, 5, 0, "first_chunk")])
def test_bad_scan_bounds_are_typed(chain_with_events, start, chunk, first_chunk, field) -> None:
    _, contract = chain_with_events
    with pytest.raises(ChainValueError) as caught:
        scan_logs(contract.contract.events.PowRangeSet, start, chunk=chunk, first_chunk=first_chunk, first=True)
    assert caught.value.field == field


@pytest.mark.parametrize("block", [-1, True, 2.0])
def test_a_bad_deployment_block_is_typed(chain_with_events, block) -> None:
    chain, contract = chain_with_events
    with pytest.raises(ChainValueError) as caught:
        RoundsContract(chain, contract.address, load_artifact()["abi"], deployed_at=block)
    assert caught.value.field == "deployed_at"
