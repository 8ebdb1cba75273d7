"""The transport interface and the in-process transport.

A party talks to another with ``transport.call(party, message, round=r, timeout=s)`` and gets the
validated reply :class:`~ppbfl.protocol.wire.Envelope`. The callee is a :class:`Handler`. Every
transport runs the same server-side path (:func:`serve_request`): decode the request bytes with the
caller's authenticated id as ``expected_sender``, call the handler, encode its reply with the
request's round. So in-process and network runs validate identically; they differ only in how
bytes move and in the identity source (the constructor's ``self_id`` in process, the TLS
certificate over gRPC).

Errors a caller sees, whatever the transport:

* :class:`PeerUnavailableError` - unknown party, unreachable, or no answer within the deadline;
* :class:`PeerAuthError` - the peer's TLS identity is wrong, or it refused ours;
* :class:`RemoteError` - the peer rejected our message (``remote_type == "MessageError"``) or its
  handler raised (``remote_type`` is the exception class name); the peer keeps serving;
* :class:`MessageError` - the peer's reply is malformed (blames the peer).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ppbfl.protocol.errors import (
    ConfigError,
    MessageError,
    PeerAuthError,
    PeerUnavailableError,
    ProtocolError,
    RemoteError,
)
from ppbfl.protocol.wire import MAX_MESSAGE_BYTES, Envelope, Message, decode, encode

__all__ = ["BytesTransport", "Handler", "InProcessTransport", "RequestFailed", "Transport", "check_timeout", "serve_request"]

log = logging.getLogger(__name__)


class Handler(Protocol):
    """The callee side of a party: turn a validated request envelope into a reply message.

    ``envelope.sender`` is the authenticated caller and ``envelope.round`` the caller's round
    (checking it against the handler's own state is the handler's job). An exception becomes a
    :class:`RemoteError` at the caller. A handler may also have an attribute
    ``context: Mapping[str, Any]`` (e.g. ``{"d": 100_000}``) used to validate requests' shapes.
    Handlers served over gRPC are called from several threads at once.
    """

    def handle(self, envelope: Envelope) -> Message:
        """Serve one request; return the reply message."""
        ...


class Transport(Protocol):
    """How a party calls its peers (in process, or gRPC with mutual TLS)."""

    def call(
        self,
        party: str,
        message: Message,
        *,
        round: int,
        timeout: float,
        context: Mapping[str, Any] | None = None,
    ) -> Envelope:
        """Send ``message`` to ``party`` for ``round``; return its reply, validated with ``context``."""
        ...

    def close(self) -> None:
        """Release connections; the transport cannot be used afterwards."""
        ...


@dataclass
class RequestFailed(Exception):
    """Internal to transports: why :func:`serve_request` could not produce a reply.

    ``kind``: ``"auth"`` (the request claims a sender other than the authenticated one, or the
    handler raised :class:`PeerAuthError`: the sender may not make this request),
    ``"bad-request"`` (malformed request), ``"handler"`` (the handler raised or returned a bad reply),
    ``"busy"`` (the caller has too many calls in progress at this server).
    """

    kind: Literal["auth", "bad-request", "handler", "busy"]
    remote_type: str
    message: str

    def to_error(self, party: str) -> ProtocolError:
        """The caller-side error for a call to ``party`` that failed this way."""
        if self.kind == "auth":
            return PeerAuthError(party, f"refused our request: {self.message}")
        return RemoteError(party, self.remote_type, self.message)


def serve_request(handler: Handler, data: bytes, *, self_id: str, peer_id: str, max_size: int = MAX_MESSAGE_BYTES) -> bytes:
    """The server side of one call: decode ``data`` from authenticated ``peer_id``, handle, encode.

    Returns the reply bytes (sender ``self_id``, the request's round); raises :class:`RequestFailed`.
    """
    try:
        env = decode(data, expected_sender=peer_id, context=getattr(handler, "context", None), max_size=max_size)
    except MessageError as exc:
        raise RequestFailed("auth" if exc.field == "sender" else "bad-request", "MessageError", str(exc)) from None
    try:
        reply = handler.handle(env)
    except PeerAuthError as exc:  # the handler refuses this caller's identity for this request
        raise RequestFailed("auth", "PeerAuthError", str(exc)) from None
    except Exception as exc:  # any handler failure is reported to the caller; the server keeps serving
        if not isinstance(exc, ProtocolError):
            log.warning("handler of %s failed on %s from %s", self_id, type(env.message).__name__, peer_id, exc_info=True)
        raise RequestFailed("handler", type(exc).__name__, str(exc)) from None
    if not isinstance(reply, Message):
        raise RequestFailed("handler", "TypeError", f"handler returned {type(reply).__name__}, not a Message")
    try:
        return encode(reply, sender=self_id, round=env.round, max_size=max_size)
    except ProtocolError as exc:  # the handler's reply breaks its own schema
        raise RequestFailed("handler", type(exc).__name__, str(exc)) from None


def check_timeout(timeout: float) -> float:
    """``timeout`` as a positive finite float, else ConfigError (a transport never waits forever)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ConfigError("timeout", f"must be a positive finite number of seconds, got {timeout!r}")
    return float(timeout)


class BytesTransport:
    """What every transport shares: :meth:`call` encodes the message as ``self_id``, delivers the
    bytes with the subclass's :meth:`call_bytes`, and validates the reply (sender ``party``, the
    round, ``expect``, ``context``). Subclasses set ``self_id`` and ``_max_size``."""

    self_id: str
    _max_size: int

    def call(
        self,
        party: str,
        message: Message,
        *,
        round: int,
        timeout: float,
        context: Mapping[str, Any] | None = None,
        expect: type[Message] | tuple[type[Message], ...] | None = None,
    ) -> Envelope:
        """Send ``message`` to ``party`` for ``round``; return its validated reply.

        ``timeout``: seconds (per attempt where the transport retries); ``context``: constraints for
        the reply (``"d"``, ``"p"``...); ``expect``: the reply kind(s), checked if given.
        """
        data = encode(message, sender=self.self_id, round=round, max_size=self._max_size)
        reply = self.call_bytes(party, data, timeout=timeout)
        return decode(
            reply, expected_sender=party, expected_round=round, expected_kind=expect,
            context=context, max_size=self._max_size,
        )

    def call_bytes(self, party: str, data: bytes, *, timeout: float) -> bytes:
        """Deliver encoded request bytes to ``party`` and return its raw reply bytes."""
        raise NotImplementedError


class InProcessTransport(BytesTransport):
    """Calls handlers in this process, through the full encode / validate / decode path.

    ``self_id``: the calling party's id (the identity every request is checked against);
    ``handlers``: party id -> handler. Deterministic; ``timeout`` is validated but cannot interrupt a
    handler (calls are synchronous).
    """

    def __init__(self, self_id: str, handlers: Mapping[str, Handler], *, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self.self_id = self_id
        self._handlers = handlers
        self._max_size = max_size
        self._closed = False

    def call_bytes(self, party: str, data: bytes, *, timeout: float) -> bytes:
        """Deliver already-encoded request bytes to ``party``; return its raw reply bytes (unchecked).

        For tests and tools that must send malformed messages; errors as for :meth:`call`.
        """
        check_timeout(timeout)
        if self._closed:
            raise ConfigError("transport", f"the transport of {self.self_id} is closed")
        handler = self._handlers.get(party)
        if handler is None:
            raise PeerUnavailableError(party, 1, timeout, "UNKNOWN_PARTY", "no handler for this party")
        try:
            return serve_request(handler, data, self_id=party, peer_id=self.self_id, max_size=self._max_size)
        except RequestFailed as failed:
            raise failed.to_error(party) from None

    def close(self) -> None:
        """Mark the transport closed (later calls raise ConfigError)."""
        self._closed = True
