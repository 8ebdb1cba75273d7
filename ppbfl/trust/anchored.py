"""The latest round whose trust the chain anchored, read by a node that can read the chain.

:class:`~ppbfl.protocol.messages.TrustQuery` carries ``previous``, the relay's word for the latest
anchored round before the one asked about. A node that believes it decides whether it is behind on
that word: too low, it votes from stale states (the vote does not count, and it stores a round that
is not the anchored one); too high, it asks for rounds the relay cannot sign and stays out. An edge
node with a chain client (``ppbfl edge --chain``, a
:class:`~ppbfl.protocol.chain_registry.ChainRegistry`) reads it itself: :func:`latest_anchored`.
"""

from __future__ import annotations

from ppbfl.chain.rounds import RoundsContract

__all__ = ["latest_anchored"]


def latest_anchored(contract: RoundsContract, round: int, after: int) -> int:
    """The latest round in ``(after, round)`` whose trust ``contract`` anchored (0: none), from
    the rounds' ``roundInfo`` anchors, newest first: no chain read when ``after >= round - 1``
    (the node holds the round before), else at most ``round - 1 - after`` reads.

    ``after``: the node's latest stored trust round (rounds up to it it holds already).
    """
    for r in range(round - 1, after, -1):
        if contract.round_state(r).anchor != bytes(32):
            return r
    return 0
