"""Protocol layer: versioned messages on the wire, per-party TLS, and transports.

* :mod:`ppbfl.protocol.wire` - message schema, msgpack envelope, validation (:func:`encode`, :func:`decode`);
* :mod:`ppbfl.protocol.tls` - consortium CA, per-party certificates, fingerprints for the chain;
* :mod:`ppbfl.protocol.transport` - the :class:`Transport` / :class:`Handler` interfaces, in-process transport;
* :mod:`ppbfl.protocol.grpc_transport` - gRPC with mutual TLS, streaming, deadlines, retries;
* :mod:`ppbfl.protocol.process` / :mod:`ppbfl.protocol.serve` - servers as OS processes;
* roles: :class:`Device`, :class:`EdgeNode`, :class:`TripleDealerNode`, the round
  :class:`Coordinator` (with :class:`ChainLedger` recording it on chain), and the deployments
  :class:`InProcessDeployment` / :class:`GrpcDeployment` that wire them.

The format and the guarantees are described in ``docs/protocol.md``; the round in ``docs/round.md``.
"""

from ppbfl.protocol.aggregator import AggregateCombiner
from ppbfl.protocol.announcement import RoundAnnouncement
from ppbfl.protocol.dealer import TripleDealerNode
from ppbfl.protocol.deployment import GrpcDeployment, InProcessDeployment
from ppbfl.protocol.device import Device, Submission
from ppbfl.protocol.edge_node import EdgeBehaviour, EdgeNode
from ppbfl.protocol.errors import (
    ConfigError,
    CredentialsError,
    MessageError,
    PeerAuthError,
    PeerUnavailableError,
    ProtocolError,
    RemoteError,
    SchemaError,
    ServerStartError,
)
from ppbfl.protocol.grpc_transport import GrpcTransport, RunningServer
from ppbfl.protocol.ledger import ChainLedger, DeviceChainAccount, open_ledger
from ppbfl.protocol.process import ServerProcess, spawn_server
from ppbfl.protocol.round import Coordinator, RoundResult
from ppbfl.protocol.round_errors import (
    AnnouncementError,
    CommitmentMismatchError,
    NotEnoughEdgeNodesError,
    OutOfPhaseError,
    RoundFailedError,
)
from ppbfl.protocol.tls import (
    CertAuthority,
    PartyCredentials,
    fingerprint,
    issue,
    make_ca,
)
from ppbfl.protocol.transport import Handler, InProcessTransport, Transport
from ppbfl.protocol.wire import (
    Array,
    Bool,
    Bytes,
    Envelope,
    FieldArray,
    Float,
    ListOf,
    Message,
    Text,
    UInt,
    decode,
    encode,
    register,
)

__all__ = [
    "AggregateCombiner",
    "AnnouncementError",
    "Array",
    "Bool",
    "Bytes",
    "CertAuthority",
    "ChainLedger",
    "CommitmentMismatchError",
    "ConfigError",
    "Coordinator",
    "CredentialsError",
    "Device",
    "DeviceChainAccount",
    "EdgeBehaviour",
    "EdgeNode",
    "Envelope",
    "FieldArray",
    "Float",
    "GrpcDeployment",
    "GrpcTransport",
    "Handler",
    "InProcessDeployment",
    "InProcessTransport",
    "ListOf",
    "Message",
    "MessageError",
    "NotEnoughEdgeNodesError",
    "OutOfPhaseError",
    "PartyCredentials",
    "PeerAuthError",
    "PeerUnavailableError",
    "ProtocolError",
    "RemoteError",
    "RoundFailedError",
    "RoundAnnouncement",
    "RoundResult",
    "RunningServer",
    "SchemaError",
    "ServerProcess",
    "ServerStartError",
    "Submission",
    "Text",
    "Transport",
    "TripleDealerNode",
    "UInt",
    "decode",
    "encode",
    "fingerprint",
    "issue",
    "make_ca",
    "open_ledger",
    "register",
    "spawn_server",
]
