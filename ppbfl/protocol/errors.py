"""Typed errors of the protocol layer (wire format, TLS, transports).

Every error says who and what: :class:`MessageError` names the party whose message was bad and
the field; the peer errors name the party that could not be reached, authenticated or that failed.
All derive from :class:`ProtocolError`, itself a :class:`ppbfl.errors.PPBFLError`, except a bad
transport or server parameter (timeout, retries, address, closed transport): that is the package-wide
:class:`ppbfl.errors.ConfigError`, re-exported here, whose ``key`` names the parameter.
"""

from __future__ import annotations

from ppbfl.errors import ConfigError, PPBFLError

__all__ = [
    "ConfigError",
    "CredentialsError",
    "MessageError",
    "PeerAuthError",
    "PeerUnavailableError",
    "ProtocolError",
    "ReferenceMismatchError",
    "RemoteError",
    "RequestNotAgreedError",
    "SchemaError",
    "ServerStartError",
]


class ProtocolError(PPBFLError):
    """Base class of every protocol-layer error."""


class SchemaError(ProtocolError, TypeError):
    """A message class is declared wrongly (missing field spec, duplicate kind, bad constraint)."""


class MessageError(ProtocolError, ValueError):
    """A message (received or about to be sent) breaks its schema or envelope.

    ``party``: the sender id (the authenticated one when known, else the claimed one; ``None`` when
    the bytes are too broken to say); ``field``: the offending field (``"kind"``, ``"round"``,
    ``"shares"``, ``"shares[3]"``, ``"<bytes>"`` for the raw encoding); ``reason``: what was wrong.
    """

    def __init__(self, party: str | None, field: str, reason: str) -> None:
        self.party = party
        self.field = field
        self.reason = reason
        who = party if party is not None else "<unknown party>"
        super().__init__(f"message from {who}: field {field!r}: {reason}")


class CredentialsError(ProtocolError, ValueError):
    """TLS credentials are malformed, for the wrong party, or missing from a directory."""


class PeerUnavailableError(ProtocolError, ConnectionError):
    """A peer could not be reached or did not answer in time, after ``attempts`` attempts.

    ``status`` is the last transport status (``"UNAVAILABLE"``, ``"DEADLINE_EXCEEDED"``, or
    ``"UNKNOWN_PARTY"``); ``timeout`` the per-attempt deadline in seconds.
    """

    def __init__(self, party: str, attempts: int, timeout: float, status: str, detail: str = "") -> None:
        self.party = party
        self.attempts = attempts
        self.timeout = timeout
        self.status = status
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"peer {party} unavailable ({status}) after {attempts} attempt(s) "
            f"with a {timeout:g} s deadline each{extra}"
        )


class PeerAuthError(ProtocolError):
    """A peer's TLS identity does not match: wrong CA, wrong party id, or unregistered fingerprint."""

    def __init__(self, party: str | None, reason: str) -> None:
        self.party = party
        self.reason = reason
        who = party if party is not None else "<unknown party>"
        super().__init__(f"peer {who}: authentication failed: {reason}")


class RequestNotAgreedError(PeerAuthError):
    """A relayed request is not the one fixed on chain for its round (or none is fixed there).

    ``party``: the relay that sent it; ``field``: what differs (``"request_hash"``); ``round``: the round.
    """

    def __init__(self, party: str, field: str, round: int, reason: str) -> None:
        self.field, self.round = field, round
        super().__init__(party, f"verify request of round {round}: field {field!r}: {reason}")


class ReferenceMismatchError(PeerAuthError):
    """A relayed public reference is not the one the refusing node computed itself from the round's
    global model (:attr:`ppbfl.protocol.edge_node.EdgeNode.reference_source`).

    ``party``: the relay that sent it; ``field``: ``"reference"``; ``round``: the round; ``entry``:
    the entry that differs most; ``units``: by how many fixed-point units (centred mod p);
    ``tolerance``: the most the node's operator allows.
    """

    def __init__(self, party: str, round: int, entry: int, units: int, tolerance: int) -> None:
        self.field, self.round, self.entry, self.units, self.tolerance = "reference", round, entry, units, tolerance
        super().__init__(
            party, f"verify request of round {round}: field 'reference': entry {entry} is {units} fixed-point units from this "
            f"node's own reference (tolerance {tolerance})",
        )


class RemoteError(ProtocolError):
    """The remote party could not serve the call: its handler raised, or it rejected the request.

    ``remote_type`` is the remote exception's class name (``"MessageError"`` when the remote side
    rejected our message), ``remote_message`` its text. The remote server keeps serving.
    """

    def __init__(self, party: str, remote_type: str, remote_message: str) -> None:
        self.party = party
        self.remote_type = remote_type
        self.remote_message = remote_message
        super().__init__(f"peer {party} failed: {remote_type}: {remote_message}")


class ServerStartError(ProtocolError, RuntimeError):
    """A server process did not report its listening address in time (or exited first)."""
