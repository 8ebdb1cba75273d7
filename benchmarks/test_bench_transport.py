"""Transport round trips of one share vector: in-process vs gRPC + mutual TLS on loopback.

Every case moves a ``(size,)`` uint64 field vector to an :class:`~ppbfl.protocol.testing.EchoHandler`
and back (request and reply both carry the vector), with baselines measured in the same run:

* ``numpy_bytes`` - ``tobytes`` + ``frombuffer`` twice (the copy floor of any byte transport);
* ``msgpack_raw`` - msgpack pack/unpack of the raw bytes twice (the serialisation floor);
* ``wire_codec`` - :func:`ppbfl.protocol.wire.encode` + :func:`decode` twice (schema checks, ``< p``);
* ``in_process`` - :class:`InProcessTransport.call` (the codec path plus the handler);
* ``grpc_mtls`` - :class:`GrpcTransport.call` to a server in its own process (``python -m
  ppbfl.protocol.serve``), chunked streaming over TLS 1.3 with client certificates;
* ``grpc_mtls_chain_pins`` - the same server, called by a client that pins it to the certificate
  the round contract's party registry holds (``pins=ChainRegistry``, embedded chain, default
  ``max_age_s`` = 5 s: a view call and a pin comparison every 5 s, a handshake only when the pin
  changed), against ``grpc_mtls``.

Sizes: 1e5 and 1e6 elements (0.8 and 8 MB); quick mode 1e3 and 1e4.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
from conftest import QUICK, field_vector, size_id

from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.process import spawn_server
from ppbfl.protocol.registry import MANIFEST, write_manifest
from ppbfl.protocol.testing import EchoHandler, EchoReply, EchoRequest
from ppbfl.protocol.tls import issue, make_ca, save_ca, save_credentials
from ppbfl.protocol.transport import InProcessTransport
from ppbfl.protocol.wire import decode, encode

SIZES = (10**3, 10**4) if QUICK else (10**5, 10**6)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=SIZES, ids=[f"d{size_id(s)}" for s in SIZES])
def size(request, group) -> int:
    group("transport roundtrip", d=request.param)
    return request.param


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    """An echo server (edge-1) in its own process: ``(ca, {party: credentials}, address)``."""
    ca = make_ca("bench consortium")
    directory = tmp_path_factory.mktemp("bench-pki")
    save_ca(ca, directory)
    creds = {pid: issue(ca, pid) for pid in ("edge-1", "device-1")}
    for c in creds.values():
        save_credentials(c, directory)
    write_manifest(directory / MANIFEST, {pid: c.fingerprint for pid, c in creds.items()})  # the server's registry
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    args = [
        sys.executable, "-m", "ppbfl.protocol.serve", "--handler", "ppbfl.protocol.testing:make_echo_handler",
        "--party", "edge-1", "--creds", str(directory), "--ca", str(directory / "ca.crt"), "--port", "0",
    ]
    env = dict(os.environ, PYTHONPATH=path, GRPC_VERBOSITY="NONE")
    with spawn_server(args, ready_timeout=60, env=env) as proc:
        yield ca, creds, proc.address


@pytest.fixture(scope="module")
def grpc_client(echo_server):
    """A device-1 client of the echo server."""
    ca, creds, address = echo_server
    with GrpcTransport("device-1", creds["device-1"], ca.cert_pem, {"edge-1": address}) as client:
        yield client


@pytest.fixture(scope="module")
def chain_pinned_client(echo_server):
    """A device-1 client of the echo server, pinned to edge-1's certificate on chain."""
    from ppbfl.chain import Chain
    from ppbfl.chain.rounds import ROLE_EDGE
    from ppbfl.protocol.chain_registry import ChainRegistry

    ca, creds, address = echo_server
    with Chain.embedded(accounts=4) as chain:
        contract = chain.deploy(1, 1)
        contract.register_edge_node(1, chain.new_account(), creds["edge-1"].fingerprint)
        contract.register_parties([(creds["edge-1"].fingerprint, ROLE_EDGE, 1)])
        pins = ChainRegistry(contract)
        with GrpcTransport("device-1", creds["device-1"], ca.cert_pem, {"edge-1": address}, pins=pins) as client:
            yield client


def _request(size: int) -> EchoRequest:
    return EchoRequest(values=field_vector("transport", size))


def test_transport_numpy_bytes(benchmark, size):
    values = field_vector("transport", size)

    def round_trip():
        there = np.frombuffer(values.tobytes(), dtype="<u8")
        return np.frombuffer(there.tobytes(), dtype="<u8")

    assert np.array_equal(benchmark(round_trip), values)


def test_transport_msgpack_raw(benchmark, size):
    values = field_vector("transport", size)

    def round_trip():
        there = np.frombuffer(msgpack.unpackb(msgpack.packb(values.tobytes())), dtype="<u8")
        return np.frombuffer(msgpack.unpackb(msgpack.packb(there.tobytes())), dtype="<u8")

    assert np.array_equal(benchmark(round_trip), values)


def test_transport_wire_codec(benchmark, size):
    msg = _request(size)

    def round_trip():
        there = decode(encode(msg, sender="device-1", round=1), expected_sender="device-1").message
        back = EchoRequest(values=there.values)
        return decode(encode(back, sender="edge-1", round=1), expected_sender="edge-1").message

    assert np.array_equal(benchmark(round_trip).values, msg.values)


def test_transport_in_process(benchmark, size):
    transport = InProcessTransport("device-1", {"edge-1": EchoHandler()})
    msg = _request(size)
    env = benchmark(transport.call, "edge-1", msg, round=1, timeout=30, expect=EchoReply)
    assert np.array_equal(env.message.values, msg.values)


def test_transport_grpc_mtls(benchmark, size, grpc_client):
    msg = _request(size)
    env = benchmark(grpc_client.call, "edge-1", msg, round=1, timeout=30, expect=EchoReply)
    assert env.sender == "edge-1" and np.array_equal(env.message.values, msg.values)


def test_transport_grpc_mtls_chain_pins(benchmark, size, chain_pinned_client):
    msg = _request(size)
    env = benchmark(chain_pinned_client.call, "edge-1", msg, round=1, timeout=30, expect=EchoReply)
    assert env.sender == "edge-1" and np.array_equal(env.message.values, msg.values)
