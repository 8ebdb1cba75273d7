"""The triple dealer (Beaver mode, DESIGN §2): an offline party that deals square triples to edge nodes.

It never sees data: on a :class:`TripleRequest` from the coordinator it samples ``count`` square
triples of length ``d`` with :func:`~ppbfl.mpc.triples.deal_square_triples` and sends each online
edge node its shares directly (the coordinator never sees them, so it cannot unmask ``g - a``).
Under rule ``"flame"`` the request asks for the triples' pair products ``<a_r, a_s>`` too
(``TripleRequest.pairs``), from which the nodes compute FLAME's Gram matrix after the one opening.
"""

from __future__ import annotations

import threading

import numpy as np

from ppbfl.field.csprng import FieldRNG
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc.triples import deal_square_triples
from ppbfl.protocol.edge_node import COORDINATOR_PARTY, edge_party
from ppbfl.protocol.messages import Ack, TripleRequest, TripleShares
from ppbfl.protocol.round_errors import OutOfPhaseError
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.wire import MAX_MESSAGE_BYTES, Envelope, Message
from ppbfl.sharing.shamir import check_threshold

__all__ = ["TripleDealerNode"]


class TripleDealerNode:
    """Handler of the dealer party for a ``(t, n)`` tier and length-``d`` updates.

    Args:
        transport: the dealer's own transport to the edge nodes (party ``"dealer"``).
        timeout: seconds per delivery to an edge node.
    """

    def __init__(self, t: int, n: int, d: int, transport: Transport, *, timeout: float = 30.0, field: PrimeField = GF61) -> None:
        self.t, self.n = check_threshold(t, n, field)
        self.rng = FieldRNG(field=field)
        self._lock = threading.Lock()  # one FieldRNG stream: requests served concurrently deal in turn
        self.d, self.transport, self.timeout, self.field = d, transport, timeout, field

    def handle(self, envelope: Envelope) -> Message:
        """Deal the requested triples; the reply says which nodes received them."""
        message = envelope.message
        if not isinstance(message, TripleRequest) or envelope.sender != COORDINATOR_PARTY:
            raise OutOfPhaseError("dealer", f"{type(message).__name__} from {envelope.sender}: only triple requests from the coordinator")
        pairs = message.count * (message.count - 1) // 2 if message.pairs else 0
        if (message.count * (self.d + message.proof_length) + pairs) * 8 > MAX_MESSAGE_BYTES:  # one node's shares must fit one message
            raise OutOfPhaseError(
                "dealer", f"count {message.count}: {message.count} triples of length {self.d} + {message.proof_length} "
                f"(and {pairs} pair products) exceed one message",
            )
        nodes = sorted(set(message.nodes))
        if not nodes or not all(1 <= j <= self.n for j in nodes):
            raise OutOfPhaseError("dealer", f"nodes {message.nodes}: expected edge nodes in 1..{self.n}")
        with self._lock:
            dealt = deal_square_triples(message.count, self.d, self.t, self.n, rng=self.rng, field=self.field, pairs=message.pairs)
            proof = (
                deal_square_triples(message.count, message.proof_length, self.t, self.n, rng=self.rng, field=self.field)
                if message.proof_length else None
            )
        for j in nodes:  # fresh triples, dealt once: the dealer never hands these out again
            shares = dealt[j - 1]
            proof_a = proof[j - 1].a if proof is not None else np.zeros((message.count, 0), dtype=np.uint64)
            proof_c = proof[j - 1].c if proof is not None else np.zeros(message.count, dtype=np.uint64)
            self.transport.call(
                edge_party(j), TripleShares(shares.a, shares.c, proof_a, proof_c, shares.pairs), round=envelope.round, timeout=self.timeout,
                context={"d": self.d, "p": self.field.p},
            )
        return Ack(f"dealer: 2 x {message.count} square triples ({pairs} pair products) dealt to edge nodes {nodes}")
