"""gRPC transport with mutual TLS: each party's server, and a client that calls its peers.

One bidirectional-streaming method, ``/ppbfl.Party/Call``, carries one protocol message each way,
cut into chunks of :data:`CHUNK_BYTES` (so share vectors of many megabytes never meet gRPC's
message size limit). Payloads are the msgpack bytes of :mod:`ppbfl.protocol.wire`; the method is
registered with ``grpc.method_handlers_generic_handler`` and identity (bytes) serialisers, so no
protoc-generated code is needed.

Identity. Both sides present certificates issued by the consortium CA (:mod:`ppbfl.protocol.tls`).
The server requires a client certificate and takes the caller's identity from its registry
(:mod:`ppbfl.protocol.registry`): the SHA-256 fingerprint of the client's certificate
(``auth_context()["x509_pem_cert"]``) must be registered, and the registered party id -- never the
certificate's common name -- is the ``expected_sender`` the request is decoded with. An
unregistered certificate, whatever its name, and a request claiming another sender are refused
(``PERMISSION_DENIED`` -> :class:`PeerAuthError`). Without a registry (tools and transport tests
only; every protocol server has one) the common name is taken. The client pins each server to its
party id: ``ssl_target_name_override`` is the party id, so the server certificate must carry that
id as a SAN DNS name. Clients also pin certificate fingerprints (the chain-registered SHA-256 of
the DER certificate); grpcio exposes no peer certificate to a client, so the client checks a server's fingerprint with a separate mutual-TLS handshake (Python
``ssl``) to the same address before it first uses the channel, and again after any connection
failure. That check cannot rule out a different process with another CA-issued certificate for
the same party id taking over the address between the check and the gRPC connection. Given
``pins`` (a :class:`PeerPins`, e.g. a :class:`~ppbfl.protocol.chain_registry.ChainRegistry`) instead
of fixed fingerprints, the client pins each server to the certificate the chain registers as that
party's active one, asked again once ``pins.max_age_s`` seconds have passed since the last check
(the server is checked again when the answer changed): a server whose certificate was revoked, or
that has none registered, is refused (:class:`PeerAuthError`).

TLS 1.3 only. grpcio has no setting for the minimum TLS version, so this module sets gRPC's
cipher list for TLS <= 1.2 (``GRPC_SSL_CIPHER_SUITES``, read once when grpc is first imported) to
one pre-shared-key suite that no party configures: a TLS 1.2 (or older) handshake with any ppbfl
server or client finds no shared cipher and fails, while TLS 1.3's suites are fixed by BoringSSL.
If grpc was imported before this module with another cipher list (:data:`TLS13_HANDSHAKES` is
then False), servers still refuse every call whose connection is not TLS 1.3
(``ssl_tls_version`` of the auth context), and the client's fingerprint check (Python ``ssl``)
requires TLS 1.3.

Failures (status -> caller error): UNAVAILABLE / DEADLINE_EXCEEDED are retried ``retries`` times
with exponential backoff, then :class:`PeerUnavailableError`; TLS verification failures ->
:class:`PeerAuthError` (a client whose own certificate the server rejects sees the connection
closed, i.e. :class:`PeerUnavailableError`); INVALID_ARGUMENT (our request was malformed) and
INTERNAL (the handler raised) -> :class:`RemoteError` with the remote exception type, sent in the
``ppbfl-error-type`` trailing metadata. Retried calls are delivered again, so handlers must treat a
repeated (sender, round, kind) idempotently.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from typing import Any, Self

from ppbfl.protocol.errors import (
    ConfigError,
    CredentialsError,
    MessageError,
    PeerAuthError,
    PeerUnavailableError,
    RemoteError,
)
from ppbfl.protocol.registry import PeerPins, PeerRegistry
from ppbfl.protocol.tls import PartyCredentials, check_party_id, fingerprint
from ppbfl.protocol.transport import (
    BytesTransport,
    Handler,
    RequestFailed,
    check_timeout,
    serve_request,
)
from ppbfl.protocol.wire import MAX_MESSAGE_BYTES

#: gRPC's cipher list: TLS 1.3's suites (named for the reader; BoringSSL fixes them) and, for TLS
#: <= 1.2, only a PSK suite no party configures, so older handshakes fail (see module docstring)
TLS13_CIPHER_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:PSK-AES128-CBC-SHA"
#: whether this process's gRPC refuses TLS <= 1.2 at the handshake (False if grpc was imported first)
TLS13_HANDSHAKES = "grpc" not in sys.modules or os.environ.get("GRPC_SSL_CIPHER_SUITES") == TLS13_CIPHER_SUITES
os.environ["GRPC_SSL_CIPHER_SUITES"] = TLS13_CIPHER_SUITES
# No gRPC fork handlers: ppbfl never forks a process that uses gRPC (its workers are spawned), and
# the handlers run in every fork()-ed child of a process with live channels, e.g. the Ray processes
# a Flower simulation starts beside the ServerApp's coordinator, which then aborted at start-up
# (SIGABRT) in about half of the runs of benchmarks/test_bench_flower.py's ppbfl case.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import grpc  # noqa: E402 - after the cipher list above, which grpc reads when imported

__all__ = ["CHUNK_BYTES", "METHOD", "TLS13_CIPHER_SUITES", "TLS13_HANDSHAKES", "GrpcTransport", "RunningServer", "serve"]


log = logging.getLogger(__name__)

SERVICE = "ppbfl.Party"
METHOD = f"/{SERVICE}/Call"
#: one protocol message travels as chunks of at most this many bytes
CHUNK_BYTES = 1 << 20
#: gRPC's own per-message limit (a chunk plus framing slack)
_GRPC_MAX = 4 * CHUNK_BYTES
_ERROR_TYPE_KEY = "ppbfl-error-type"
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_TLS_FAILURE_MARKS = ("hostname verification", "certificate_verify_failed", "handshake failed", "ssl_error")
_STATUS_OF = {
    "auth": grpc.StatusCode.PERMISSION_DENIED,
    "busy": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "bad-request": grpc.StatusCode.INVALID_ARGUMENT,
    "handler": grpc.StatusCode.INTERNAL,
}


def _chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        yield bytes(view[start:start + CHUNK_BYTES])


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _gather(chunks: Iterable[bytes], max_size: int) -> bytes:
    """Join a stream of chunks, stopping as soon as it exceeds ``max_size`` bytes."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_size:
            raise _TooLarge(size)
        parts.append(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------


class RunningServer:
    """A started gRPC server of one party: ``port``, ``address`` (``host:port``), ``stop(grace)``."""

    def __init__(self, server: grpc.Server, party_id: str, host: str, port: int, on_stop: Callable[[], None] = lambda: None) -> None:
        self._server = server
        self._on_stop = on_stop
        self.party_id = party_id
        self.host = host
        self.port = port

    @property
    def address(self) -> str:
        """``"host:port"`` to put in a client's ``peers`` map."""
        return f"{self.host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop serving; in-flight calls get ``grace`` seconds (None: cancelled at once). Blocks until done."""
        self._server.stop(grace).wait()
        self._on_stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops or ``timeout`` passes; True if it stopped."""
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(None)


def _client_identity(context: grpc.ServicerContext, registry: PeerRegistry | None) -> str:
    """The caller's party id from its verified certificate and ``registry``; RequestFailed("auth") if unusable."""
    auth = context.auth_context()
    if auth.get("ssl_tls_version") != [b"TLSv1.3"]:
        version = b",".join(auth.get("ssl_tls_version", [b"unknown"])).decode("ascii", "replace")
        raise RequestFailed("auth", "PeerAuthError", f"connection is {version}, only TLSv1.3 is accepted")
    names = auth.get("x509_common_name", [])
    if len(names) != 1:
        raise RequestFailed("auth", "PeerAuthError", "no client certificate common name")
    named = names[0].decode("utf-8", "replace")
    if registry is None:
        return named
    certs = auth.get("x509_pem_cert", [])
    fp = fingerprint(certs[0]) if len(certs) == 1 else b""
    try:
        identity = registry.identify(fp)
    except PeerAuthError as refused:  # the registry could not confirm the certificate (e.g. chain down): refused
        log.warning("refused a certificate named %r: %s", named, refused.reason)
        raise RequestFailed("auth", type(refused).__name__, f"certificate named {named!r}: {refused.reason}") from None
    if identity is None:
        log.warning("refused an unregistered certificate named %r (fingerprint %s)", named, fp.hex()[:16])
        raise RequestFailed(
            "auth", "PeerAuthError", f"certificate named {named!r} (fingerprint {fp.hex()[:16]}...) is not registered"
        )
    return identity.party


class _PeerSlots:
    """At most ``limit`` calls in progress per peer (one peer cannot hold every worker thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._busy: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, peer: str) -> Iterator[None]:
        """Hold one of ``peer``'s slots; RequestFailed("busy") if it has ``limit`` calls in progress."""
        with self._lock:
            if self._busy.get(peer, 0) >= self.limit:
                raise RequestFailed("busy", "ResourceExhausted", f"{peer} already has {self.limit} calls in progress")
            self._busy[peer] = self._busy.get(peer, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._busy[peer] -= 1
                if not self._busy[peer]:
                    del self._busy[peer]


class _Watchdog:
    """One thread per server that cancels calls whose request has not arrived by its deadline
    (a thread per call would cost ~0.1-0.4 ms each)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Callable[[], object]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, name="ppbfl-deadlines", daemon=True).start()

    def watch(self, seconds: float, cancel: Callable[[], object]) -> int:
        """Call ``cancel`` in ``seconds`` unless :meth:`done` is called first; returns the handle."""
        with self._cond:
            seq, when = next(self._seq), time.monotonic() + seconds
            self._live[seq] = cancel
            if not self._heap or when < self._heap[0][0]:  # the thread sleeps until the earliest one
                self._cond.notify()
            heapq.heappush(self._heap, (when, seq))
            return seq

    def done(self, seq: int) -> None:
        """The watched request arrived (or failed): do not cancel it."""
        with self._cond:
            self._live.pop(seq, None)

    def close(self) -> None:
        """Stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                when, seq = self._heap[0]
                left = when - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                cancel = self._live.pop(seq, None)
                if cancel is not None:
                    cancel()


def _gather_within(requests: Iterator[bytes], context: grpc.ServicerContext, max_size: int, deadline: float, watchdog: _Watchdog) -> bytes | None:
    """The request's bytes, or None if they did not all arrive within ``deadline`` seconds (the
    call is cancelled then) or the client went away."""
    handle = watchdog.watch(deadline, context.cancel)
    try:
        return _gather(requests, max_size)
    except grpc.RpcError:  # cancelled by the watchdog, or by the client
        return None
    finally:
        watchdog.done(handle)


def serve(
    handler: Handler,
    party_id: str,
    credentials: PartyCredentials,
    ca_pem: bytes,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    registry: PeerRegistry | None = None,
    max_workers: int = 16,
    max_size: int = MAX_MESSAGE_BYTES,
    message_deadline: float = 60.0,
    max_calls_per_peer: int = 2,
) -> RunningServer:
    """Serve ``handler`` as ``party_id`` with mutual TLS on ``host:port`` (0: any free port).

    Clients must present a certificate from the CA ``ca_pem`` whose fingerprint ``registry``
    knows; the registered party id is the sender every request is checked against (see module
    docstring; None: the certificate's common name, for tools and tests). A request must arrive
    whole within ``message_deadline`` seconds of its first byte (else the call is cancelled), and
    one peer has at most ``max_calls_per_peer`` calls in progress (more get
    ``RESOURCE_EXHAUSTED``), so stalled streams of one peer hold at most that many of the
    ``max_workers`` threads, for at most ``message_deadline`` each. Returns at once; the server runs on
    ``max_workers`` threads until :meth:`RunningServer.stop`.
    """
    check_party_id(party_id)
    if credentials.party_id != party_id:
        raise CredentialsError(f"credentials are for {credentials.party_id!r}, not {party_id!r}")
    if not 0 < message_deadline < float("inf"):
        raise ConfigError("message_deadline", f"must be a positive finite number of seconds, got {message_deadline!r}")
    if isinstance(max_calls_per_peer, bool) or not isinstance(max_calls_per_peer, int) or not 1 <= max_calls_per_peer <= max_workers:
        raise ConfigError("max_calls_per_peer", f"must be an int in [1, max_workers = {max_workers}], got {max_calls_per_peer!r}")
    slots = _PeerSlots(max_calls_per_peer)
    watchdog = _Watchdog()

    def call(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            peer = _client_identity(context, registry)
            with slots.slot(peer):
                try:
                    data = _gather_within(requests, context, max_size, message_deadline, watchdog)
                except _TooLarge as big:
                    raise RequestFailed("bad-request", "MessageError", f"request exceeds {max_size} bytes ({big.size}+)") from None
                if data is None:
                    log.warning("%s: a call from %s did not arrive within %g s; cancelled", party_id, peer, message_deadline)
                    return
                reply = serve_request(handler, data, self_id=party_id, peer_id=peer, max_size=max_size)
        except RequestFailed as failed:
            context.set_trailing_metadata(((_ERROR_TYPE_KEY, failed.remote_type),))
            context.set_code(_STATUS_OF[failed.kind])
            context.set_details(failed.message[:4000])
            return
        yield from _chunks(reply)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"ppbfl-{party_id}"),
        options=[("grpc.max_receive_message_length", _GRPC_MAX), ("grpc.max_send_message_length", _GRPC_MAX)],
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Call": grpc.stream_stream_rpc_method_handler(call)}),)
    )
    server_creds = grpc.ssl_server_credentials(
        [(credentials.key_pem, credentials.cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )
    bound = server.add_secure_port(f"{host}:{port}", server_creds)
    if bound == 0:
        watchdog.close()
        raise ConfigError("port", f"cannot bind {host}:{port}")
    server.start()
    return RunningServer(server, party_id, host, bound, watchdog.close)


# ---------------------------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------------------------


class _Retry(Exception):
    """Internal: a retryable failure (status name, detail)."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


@contextmanager
def _key_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths from which :mod:`ssl` (which loads keys from files only) reads ``cert_pem`` and
    ``key_pem``. On Linux they are anonymous memory files (``memfd_create``, ``/proc/self/fd``):
    the private key never touches a disk, and nothing is left if the process is killed while the
    check runs. Elsewhere, a 0700 temporary folder removed at once (a kill in that instant leaves it)."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("ppbfl-cert", "ppbfl-key")]
        try:
            for fd, data in zip(fds, (cert_pem, key_pem)):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ppbfl-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert_path, "wb") as fh:
            fh.write(cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(key_pem)
        yield cert_path, key_path


class GrpcTransport(BytesTransport):
    """Calls peers' gRPC servers over mutual TLS (implements :class:`~ppbfl.protocol.transport.Transport`).

    ``self_id``/``credentials``: this party and its certificate; ``ca_pem``: the consortium CA;
    ``peers``: party id -> ``"127.0.0.1:port"``; ``fingerprints``: party id -> registered 32-byte
    certificate fingerprint (checked before first use, see module docstring); ``pins``: where the
    servers' fingerprints come from instead (the chain's party registry; every peer is then
    checked, the pin asked again after ``pins.max_age_s``); ``retries``: extra
    attempts after UNAVAILABLE / DEADLINE_EXCEEDED, waiting ``backoff * 2**k`` seconds before the
    k-th. Worst-case duration of a call: ``(retries + 1) * timeout + backoff * (2**retries - 1)``
    (plus one TLS handshake of at most ``timeout`` per attempt while a fingerprint is unverified).
    Thread-safe.
    """

    def __init__(
        self,
        self_id: str,
        credentials: PartyCredentials,
        ca_pem: bytes,
        peers: Mapping[str, str],
        *,
        fingerprints: Mapping[str, bytes] | None = None,
        pins: PeerPins | None = None,
        retries: int = 2,
        backoff: float = 0.05,
        max_size: int = MAX_MESSAGE_BYTES,
    ) -> None:
        check_party_id(self_id)
        if credentials.party_id != self_id:
            raise CredentialsError(f"credentials are for {credentials.party_id!r}, not {self_id!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError("retries", f"must be an int >= 0, got {retries!r}")
        if not 0 <= backoff < 60:
            raise ConfigError("backoff", f"must be in [0, 60) seconds, got {backoff!r}")
        self.self_id = self_id
        self._creds = credentials
        self._ca_pem = ca_pem
        self._peers = dict(peers)
        if pins is not None and fingerprints:
            raise ConfigError("pins", "give fixed fingerprints or pins, not both")
        self._fingerprints = dict(fingerprints or {})
        self._pins = pins
        self.retries = retries
        self.backoff = backoff
        self._max_size = max_size
        self._channel_creds = grpc.ssl_channel_credentials(ca_pem, credentials.key_pem, credentials.cert_pem)
        self._channels: dict[str, grpc.Channel] = {}
        self._verified: dict[str, tuple[bytes, float]] = {}  # party -> (the fingerprint its server showed, when: time.monotonic)
        self._lock = threading.Lock()
        self._closed = False

    def _stub(self, party: str) -> Any:
        with self._lock:
            if self._closed:
                raise ConfigError("transport", f"the transport of {self.self_id} is closed")
            channel = self._channels.get(party)
            if channel is None:
                channel = grpc.secure_channel(
                    self._peers[party],
                    self._channel_creds,
                    options=[
                        ("grpc.ssl_target_name_override", party),
                        ("grpc.max_receive_message_length", _GRPC_MAX),
                        ("grpc.max_send_message_length", _GRPC_MAX),
                        ("grpc.enable_retries", 0),
                        ("grpc.initial_reconnect_backoff_ms", 100),
                        ("grpc.min_reconnect_backoff_ms", 100),
                        ("grpc.max_reconnect_backoff_ms", 1000),
                    ],
                )
                self._channels[party] = channel
            return channel.stream_stream(METHOD)

    def _verify_fingerprint(self, party: str, timeout: float) -> None:
        """Handshake with ``party`` over Python ``ssl`` and compare its certificate's fingerprint
        (the fixed one, or the one ``pins`` gives, asked again after ``pins.max_age_s``: while it is
        the one the server showed and the connection has not failed since, no new handshake)."""
        checked = self._verified.get(party)
        if self._pins is None:
            if party not in self._fingerprints or checked is not None:
                return
            expected = self._fingerprints[party]
        else:
            if checked is not None and time.monotonic() - checked[1] < self._pins.max_age_s:
                return
            pinned = self._pins.fingerprint_of(party)  # PeerAuthError when the registry cannot answer
            if pinned is None:
                self._verified.pop(party, None)
                raise PeerAuthError(party, "no active certificate is registered for it (revoked or never registered)")
            if checked is not None and checked[0] == pinned:
                self._verified[party] = (pinned, time.monotonic())
                return
            expected = pinned
        host, _, port = self._peers[party].rpartition(":")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(cadata=self._ca_pem.decode("ascii"))
        ctx.set_alpn_protocols(["h2"])
        with _key_files(self._creds.cert_pem, self._creds.key_pem) as (cert_path, key_path):
            ctx.load_cert_chain(cert_path, key_path)
        try:
            with (
                socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock,
                ctx.wrap_socket(sock, server_hostname=party) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except ssl.SSLCertVerificationError as exc:
            raise PeerAuthError(party, f"TLS verification failed: {exc.verify_message}") from None
        except OSError as exc:  # refused, reset, timed out, handshake cut
            raise _Retry("UNAVAILABLE", f"fingerprint check: {exc}") from None
        if der is None:
            raise PeerAuthError(party, "the server presented no certificate")
        if hashlib.sha256(der).digest() != expected:
            self._verified.pop(party, None)
            raise PeerAuthError(party, "server certificate does not match the registered fingerprint")
        self._verified[party] = (expected, time.monotonic())

    def _attempt(self, party: str, data: bytes, timeout: float) -> bytes:
        self._verify_fingerprint(party, timeout)
        responses = self._stub(party)(_chunks(data), timeout=timeout)
        try:
            return _gather(responses, self._max_size)
        except _TooLarge as big:
            responses.cancel()
            raise MessageError(party, "<bytes>", f"reply exceeds {self._max_size} bytes ({big.size}+)") from None
        except grpc.RpcError as err:
            code, detail = err.code(), err.details() or ""
            if code in _RETRYABLE:
                if any(mark in detail.lower() for mark in _TLS_FAILURE_MARKS):
                    raise PeerAuthError(party, detail) from None
                self._verified.pop(party, None)
                raise _Retry(code.name, detail) from None
            remote_type = dict(err.trailing_metadata() or ()).get(_ERROR_TYPE_KEY, code.name)
            if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                raise PeerAuthError(party, f"refused our request: {detail}") from None
            raise RemoteError(party, remote_type, detail) from None

    def call_bytes(self, party: str, data: bytes, *, timeout: float) -> bytes:
        """Deliver already-encoded request bytes to ``party``; return its raw reply bytes (unchecked).

        Retries and errors as for :meth:`call`. For tests and tools that must send malformed
        messages; protocol code uses :meth:`call`.
        """
        timeout = check_timeout(timeout)
        if party not in self._peers:
            raise PeerUnavailableError(party, 1, timeout, "UNKNOWN_PARTY", "no address for this party")
        last = _Retry("UNAVAILABLE", "")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._attempt(party, data, timeout)
            except _Retry as retry:
                last = retry
        raise PeerUnavailableError(party, self.retries + 1, timeout, last.status, last.detail)

    def close(self) -> None:
        """Close every channel; later calls raise ConfigError."""
        with self._lock:
            self._closed = True
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
