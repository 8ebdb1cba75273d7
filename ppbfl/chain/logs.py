"""Event-log scans bounded in blocks: from a known first block, in chunks of at most ``chunk`` blocks.

``eth_getLogs`` over ``[0, latest]`` costs every block since genesis on each call: on the
embedded py-evm chain eth-tester walks the blocks in Python (0.84 s at 2,000 blocks), and a real
node may time out or refuse a wide range (many RPC providers cap a query at a few thousand
blocks). Every scan here therefore

* starts at a block the caller knows no matching log precedes -- at the latest the contract's
  deployment block (:func:`deployment_block`), tighter where a round's state gives one (e.g. the
  block its commitments closed at);
* asks for at most ``chunk`` blocks per ``eth_getLogs`` call, up to the latest block at the start
  of the scan, and, for ``first=True``, stops at the first chunk that holds a match; such a scan
  (a log expected shortly after ``start``, e.g. a round's ``commitTrust`` after the round closed)
  starts with :data:`FIRST_CHUNK_BLOCKS` and doubles the range per call up to ``chunk``, so a
  nearby match costs a short range (eth-tester walks every block of a range in Python).

:func:`deployment_block` finds where a contract was created from ``eth_getCode`` alone, by
binary search over block numbers (about ``log2(latest)`` calls, 21 at a million blocks). It is
valid because "code at ``address`` at block ``b``" is monotone in ``b`` for a contract that is
never destroyed: ``PPBFLRounds`` has no ``SELFDESTRUCT``, and under Cancun (EIP-6780) one
outside its creating transaction would not remove the code anyway. It needs a node that serves
historical state (py-evm, anvil, an archive node); where an old block's state is pruned the
search cannot tell and answers 0 -- a scan from genesis, slower but never missing a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from ppbfl.chain.errors import ChainError, ChainValueError

__all__ = ["FIRST_CHUNK_BLOCKS", "LOG_CHUNK_BLOCKS", "deployment_block", "scan_logs"]

LOG_CHUNK_BLOCKS = 2_000
"""Blocks per ``eth_getLogs`` call (under the common 10,000-block provider caps, with margin)."""
FIRST_CHUNK_BLOCKS = 64
"""Blocks of the first call of a ``first=True`` scan (then doubled per call up to ``chunk``)."""


def deployment_block(w3: Web3, address: str, latest: int | None = None) -> int:
    """The block in which the contract at ``address`` was created: the first block whose state
    holds code at ``address`` (binary search on ``eth_getCode``, see the module docstring).
    0 when historical state cannot be read (a pruned node): a caller then scans from genesis.

    Raises:
        ChainError: no code at ``address`` at block ``latest`` (default: the latest block).
    """
    account = to_checksum_address(address)
    high = int(w3.eth.block_number) if latest is None else latest
    if not w3.eth.get_code(account, high):
        raise ChainError(f"no contract at {address} at block {high}")
    low = 0  # invariant: no code at low - 1 (or low = 0), code at high
    try:
        while low < high:
            middle = (low + high) // 2
            if w3.eth.get_code(account, middle):
                high = middle
            else:
                low = middle + 1
    except Exception:  # state of an old block not served (pruned): unknown, so scan from genesis
        return 0
    return high


def scan_logs(
    event: Any, start: int, *, argument_filters: Mapping[str, Any] | None = None, first: bool = False,
    chunk: int = LOG_CHUNK_BLOCKS, first_chunk: int = FIRST_CHUNK_BLOCKS, end: int | None = None,
) -> list[Any]:
    """The logs of ``event`` (a web3 contract event class, e.g. ``contract.events.TrustCommitted``)
    matching ``argument_filters`` in blocks ``[start, end]`` (``end``: the latest block when the
    scan starts), asked ``chunk`` blocks per call; ``first``: stop after the first call with a
    match, the ranges growing from ``first_chunk`` blocks (doubling) up to ``chunk``.

    Raises:
        ChainValueError: ``start`` < 0, ``chunk`` or ``first_chunk`` < 1.
    """
    if start < 0:
        raise ChainValueError("start", f"block {start} < 0")
    for name, blocks in (("chunk", chunk), ("first_chunk", first_chunk)):
        if blocks < 1:
            raise ChainValueError(name, f"{blocks} blocks per call < 1")
    last = int(event.w3.eth.block_number) if end is None else end
    filters = dict(argument_filters or {})
    found: list[Any] = []
    low, size = start, min(chunk, first_chunk) if first else chunk
    while low <= last:
        high = min(low + size - 1, last)
        found.extend(event().get_logs(from_block=low, to_block=high, argument_filters=filters))
        if first and found:
            break
        low, size = high + 1, min(2 * size, chunk)
    return found
