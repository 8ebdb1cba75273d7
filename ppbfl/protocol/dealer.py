"""The triple dealer (Beaver mode, DESIGN §2): an offline party that deals square triples to edge nodes.

It never sees data: on a :class:`TripleRequest` from the coordinator it samples ``count`` square
triples of length ``d`` with :class:`~ppbfl.mpc.triples.TrustedDealer` and sends each online edge
node its shares directly (the coordinator never sees them, so it cannot unmask ``g - a``).
"""

from __future__ import annotations

import numpy as np

from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.triples import TrustedDealer
from ppbfl.protocol.edge_node import COORDINATOR_PARTY, edge_party
from ppbfl.protocol.messages import Ack, TripleRequest, TripleShares
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.wire import Envelope, Message

__all__ = ["TripleDealerNode"]


class TripleDealerNode:
    """Handler of the dealer party for a ``(t, n)`` tier and length-``d`` updates.

    Args:
        transport: the dealer's own transport to the edge nodes (party ``"dealer"``).
        timeout: seconds per delivery to an edge node.
    """

    def __init__(self, t: int, n: int, d: int, transport: Transport, *, timeout: float = 30.0, field: PrimeField = GF61) -> None:
        self.source = TrustedDealer(t, n, field=field)
        self.d, self.transport, self.timeout, self.field = d, transport, timeout, field

    def handle(self, envelope: Envelope) -> Message:
        """Deal the requested triples; the reply says which nodes received them."""
        message = envelope.message
        if not isinstance(message, TripleRequest) or envelope.sender != COORDINATOR_PARTY:
            raise OutOfPhaseError("dealer", f"{type(message).__name__} from {envelope.sender}: only triple requests from the coordinator")
        nodes = sorted(set(message.nodes))
        if not nodes or not all(1 <= j <= self.source.n for j in nodes):
            raise OutOfPhaseError("dealer", f"nodes {message.nodes}: expected edge nodes in 1..{self.source.n}")
        triples = [self.source.square_triple(self.d) for _ in range(message.count)]
        for j in nodes:
            a = np.stack([tr.a[j - 1] for tr in triples]) if triples else np.zeros((0, self.d), dtype=np.uint64)
            c = np.array([tr.c[j - 1] for tr in triples], dtype=np.uint64)
            self.transport.call(edge_party(j), TripleShares(a, c), round=envelope.round, timeout=self.timeout, context={"d": self.d, "p": self.field.p})
        for tr in triples:
            tr.consume()  # dealt once: the dealer never hands these out again
        return Ack(f"dealer: {message.count} square triples dealt to edge nodes {nodes}")
