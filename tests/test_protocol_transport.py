"""Transports: in-process and gRPC + mutual TLS over real 127.0.0.1 sockets, servers as OS processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ppbfl.field import MERSENNE61
from ppbfl.protocol.errors import (
    ConfigError,
    MessageError,
    PeerAuthError,
    PeerUnavailableError,
    RemoteError,
    ServerStartError,
)
from ppbfl.protocol.grpc_transport import GrpcTransport, serve
from ppbfl.protocol.process import spawn_server
from ppbfl.protocol.registry import MANIFEST, Registry, write_manifest
from ppbfl.protocol.testing import EchoHandler, EchoReply, EchoRequest
from ppbfl.protocol.tls import issue, make_ca, save_ca, save_credentials
from ppbfl.protocol.transport import InProcessTransport
from ppbfl.protocol.wire import encode

ROOT = Path(__file__).resolve().parents[1]
P = MERSENNE61


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """CA + credentials of edge-1, device-1, device-2 on disk; an outsider CA with its own device-1."""
    ca = make_ca("ppbfl test consortium")
    creds = {pid: issue(ca, pid) for pid in ("edge-1", "device-1", "device-2")}
    directory = tmp_path_factory.mktemp("pki")
    save_ca(ca, directory)
    for c in creds.values():
        save_credentials(c, directory)
    write_manifest(directory / MANIFEST, {pid: c.fingerprint for pid, c in creds.items()})
    outsider_ca = make_ca("outsider")
    return {"ca": ca, "dir": directory, **creds, "outsider_ca": outsider_ca, "outsider": issue(outsider_ca, "device-1")}


def echo_server_args(pki) -> list[str]:
    return [
        sys.executable, "-m", "ppbfl.protocol.serve", "--handler", "ppbfl.protocol.testing:make_echo_handler",
        "--party", "edge-1", "--creds", str(pki["dir"]), "--ca", str(pki["dir"] / "ca.crt"), "--port", "0",
    ]


def child_env() -> dict[str, str]:
    """The child imports this worktree's ppbfl, and grpc's C core stays quiet."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, GRPC_VERBOSITY="NONE")


@pytest.fixture(scope="module")
def echo_proc(pki):
    """One echo server process (edge-1) shared by the tests that leave it running."""
    with spawn_server(echo_server_args(pki), ready_timeout=60, env=child_env()) as proc:
        yield proc


def client_for(pki, address: str, party_id: str = "device-1", **kwargs) -> GrpcTransport:
    return GrpcTransport(party_id, pki[party_id], pki["ca"].cert_pem, {"edge-1": address}, **kwargs)


@pytest.fixture
def client(pki, echo_proc):
    with client_for(pki, echo_proc.address) as c:
        yield c


def request(n: int = 5, op: str = "echo", seconds: float = 0.0) -> EchoRequest:
    values = (np.arange(n, dtype=np.uint64) * np.uint64(P // 7)) % np.uint64(P)
    return EchoRequest(values=values, op=op, seconds=seconds)


def calls_so_far(client) -> int:
    return client.call("edge-1", request(1), round=0, timeout=10).message.calls


# ---------------------------------------------------------------------------------------------
# in process and over the network: the same results
# ---------------------------------------------------------------------------------------------


def test_in_process_and_grpc_give_identical_replies(client):
    local = InProcessTransport("device-1", {"edge-1": EchoHandler()})
    msg = request(1000)
    a = local.call("edge-1", msg, round=7, timeout=5, expect=EchoReply)
    b = client.call("edge-1", msg, round=7, timeout=10, expect=EchoReply)
    for env in (a, b):
        assert (env.sender, env.round, env.message.caller) == ("edge-1", 7, "device-1")
        assert np.array_equal(env.message.values, msg.values)
        assert env.message.total == int(msg.values.sum(dtype=np.uint64))


def test_eight_megabyte_vector_round_trip_streams_in_chunks(client):
    values = (np.arange(1 << 20, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(P)  # 8 MiB
    env = client.call("edge-1", EchoRequest(values=values), round=1, timeout=30, context={"p": P})
    assert env.message.values.dtype == np.uint64 and np.array_equal(env.message.values, values)


def test_reply_is_validated_against_the_callers_context(client):
    with pytest.raises(MessageError, match="field 'kind'") as err:
        client.call("edge-1", request(), round=1, timeout=10, expect=EchoRequest)
    assert err.value.party == "edge-1"
    with pytest.raises(MessageError, match=r"element .* is not < p = 5"):
        client.call("edge-1", request(), round=1, timeout=10, context={"p": 5})


# ---------------------------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------------------------


def test_client_certificate_from_another_ca_is_refused(pki, echo_proc, client):
    before = calls_so_far(client)
    intruder = GrpcTransport(
        "device-1", pki["outsider"], pki["ca"].cert_pem, {"edge-1": echo_proc.address}, retries=0
    )
    with intruder, pytest.raises((PeerUnavailableError, PeerAuthError)):
        intruder.call("edge-1", request(), round=0, timeout=5)
    assert calls_so_far(client) == before + 1  # the handler never saw the intruder


def test_server_certificate_from_another_ca_is_refused(pki, echo_proc):
    outsider = GrpcTransport(
        "device-1", pki["outsider"], pki["outsider_ca"].cert_pem, {"edge-1": echo_proc.address}, retries=0
    )
    with outsider, pytest.raises(PeerAuthError):
        outsider.call("edge-1", request(), round=0, timeout=5)


def test_server_must_hold_the_called_party_id(pki, echo_proc):
    confused = GrpcTransport("device-1", pki["device-1"], pki["ca"].cert_pem, {"edge-2": echo_proc.address}, retries=0)
    with confused, pytest.raises(PeerAuthError, match="edge-2"):
        confused.call("edge-2", request(), round=0, timeout=5)


def test_claiming_another_sender_is_refused(client):
    forged = encode(request(), sender="device-2", round=0)  # device-1's TLS identity, device-2's name
    with pytest.raises(PeerAuthError, match=r"claims to be 'device-2'.*authenticated 'device-1'"):
        client.call_bytes("edge-1", forged, timeout=10)
    assert calls_so_far(client) >= 1  # still serving


def test_fingerprints_pin_server_certificates(pki, echo_proc):
    right = {"edge-1": pki["edge-1"].fingerprint}
    with client_for(pki, echo_proc.address, fingerprints=right) as pinned:
        assert pinned.call("edge-1", request(), round=0, timeout=10).sender == "edge-1"
    wrong = {"edge-1": pki["device-2"].fingerprint}
    with client_for(pki, echo_proc.address, fingerprints=wrong) as pinned, pytest.raises(PeerAuthError, match="fingerprint"):
        pinned.call("edge-1", request(), round=0, timeout=10)


def test_the_pinned_handshake_writes_no_key_file(pki, echo_proc, tmp_path, monkeypatch):
    """The fingerprint check loads the client's key for Python's ssl from memory (Linux memfd), not
    from a temporary folder that a kill during the handshake would leave on disk."""
    made: list[str] = []
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *args, **kwargs: made.append("a folder") or str(tmp_path))
    with client_for(pki, echo_proc.address, fingerprints={"edge-1": pki["edge-1"].fingerprint}) as pinned:
        assert pinned.call("edge-1", request(), round=0, timeout=10).sender == "edge-1"
    assert made == [] and list(tmp_path.iterdir()) == []


def test_servers_take_the_callers_identity_from_the_registry(pki):
    registry = Registry({"device-1": pki["device-1"].fingerprint})
    with serve(EchoHandler(), "edge-1", pki["edge-1"], pki["ca"].cert_pem, registry=registry) as server:
        with client_for(pki, server.address) as ok:
            assert ok.call("edge-1", request(), round=0, timeout=10).message.caller == "device-1"
        with client_for(pki, server.address, party_id="device-2") as other, pytest.raises(PeerAuthError, match="not registered"):
            other.call("edge-1", request(), round=0, timeout=10)
    # the registered id, not the certificate's name: device-2's certificate registered as device-9
    registry = Registry({"device-9": pki["device-2"].fingerprint})
    with (
        serve(EchoHandler(), "edge-1", pki["edge-1"], pki["ca"].cert_pem, registry=registry) as server,
        client_for(pki, server.address, party_id="device-2") as renamed,
        pytest.raises(PeerAuthError, match="sender"),
    ):
        renamed.call("edge-1", request(), round=0, timeout=10)


# ---------------------------------------------------------------------------------------------
# failures: remote errors, malformed input, deadlines, dead servers
# ---------------------------------------------------------------------------------------------


def test_handler_exception_is_a_remote_error_and_the_server_keeps_serving(client):
    with pytest.raises(RemoteError) as err:
        client.call("edge-1", request(op="raise"), round=0, timeout=10)
    assert (err.value.party, err.value.remote_type) == ("edge-1", "ValueError")
    assert "asked to fail" in err.value.remote_message
    assert client.call("edge-1", request(), round=0, timeout=10).sender == "edge-1"


def test_malformed_and_truncated_requests_get_typed_error_replies(client):
    good = encode(request(), sender="device-1", round=0)
    for bad in (good[:1], good[: len(good) // 2], good[:-1], b"\xc1garbage", good + b"\x00"):
        with pytest.raises(RemoteError) as err:
            client.call_bytes("edge-1", bad, timeout=10)
        assert err.value.remote_type == "MessageError" and "message from device-1" in err.value.remote_message
    assert client.call("edge-1", request(), round=0, timeout=10).sender == "edge-1"


def test_silent_server_hits_the_deadline(pki, echo_proc):
    with client_for(pki, echo_proc.address, retries=1, backoff=0.01) as impatient, pytest.raises(PeerUnavailableError) as err:
        impatient.call("edge-1", request(op="sleep", seconds=1.0), round=0, timeout=0.2)
    assert (err.value.status, err.value.attempts, err.value.timeout) == ("DEADLINE_EXCEEDED", 2, 0.2)


def test_unknown_party_and_closed_port(pki):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with client_for(pki, f"127.0.0.1:{port}", retries=2, backoff=0.01) as lonely:
        with pytest.raises(PeerUnavailableError) as err:
            lonely.call("edge-1", request(), round=0, timeout=2)
        assert (err.value.status, err.value.attempts) == ("UNAVAILABLE", 3)
        with pytest.raises(PeerUnavailableError, match="UNKNOWN_PARTY"):
            lonely.call("edge-9", request(), round=0, timeout=2)


@pytest.mark.parametrize("how", ["killed from outside", "dies in its handler"])
def test_server_dying_mid_call_gives_peer_unavailable(pki, how):
    with spawn_server(echo_server_args(pki), ready_timeout=60, env=child_env()) as proc:
        outcome: list[BaseException] = []

        def call() -> None:
            op = "sleep" if how == "killed from outside" else "exit"
            with client_for(pki, proc.address, retries=2, backoff=0.05) as c:
                try:
                    c.call("edge-1", request(op=op, seconds=30.0), round=0, timeout=20)
                except BaseException as exc:  # handed to the main thread
                    outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        if how == "killed from outside":
            time.sleep(0.5)  # usually mid-call; if not yet, the call finds no server: same error
            proc.kill()
        caller.join(60)
        assert not caller.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], PeerUnavailableError), outcome
        assert outcome[0].status == "UNAVAILABLE"
        assert proc.returncode == (-9 if how == "killed from outside" else 3)


# ---------------------------------------------------------------------------------------------
# in-process transport: same errors
# ---------------------------------------------------------------------------------------------


def test_in_process_errors_match_the_network():
    local = InProcessTransport("device-1", {"edge-1": EchoHandler()})
    with pytest.raises(RemoteError) as err:
        local.call("edge-1", request(op="raise"), round=0, timeout=1)
    assert err.value.remote_type == "ValueError"
    with pytest.raises(RemoteError, match="MessageError"):
        local.call_bytes("edge-1", b"\x93", timeout=1)
    with pytest.raises(PeerAuthError):
        local.call_bytes("edge-1", encode(request(), sender="device-2", round=0), timeout=1)
    with pytest.raises(PeerUnavailableError, match="UNKNOWN_PARTY"):
        local.call("edge-2", request(), round=0, timeout=1)
    with pytest.raises(ConfigError, match="timeout"):
        local.call("edge-1", request(), round=0, timeout=0)
    local.close()
    with pytest.raises(ConfigError, match="closed"):
        local.call("edge-1", request(), round=0, timeout=1)


# ---------------------------------------------------------------------------------------------
# server processes
# ---------------------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (no such process, or a zombie waiting for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_terminate_exits_cleanly_and_kill_reaps(pki, echo_proc):
    proc = spawn_server(echo_server_args(pki), ready_timeout=60, env=child_env())
    assert proc.alive() and proc.host == "127.0.0.1" and proc.port > 0
    assert proc.terminate() == 0  # SIGTERM: clean exit
    assert _gone(proc.pid) and not proc.alive()
    assert proc.kill() == 0  # idempotent once exited


SPAWN_AND_ABANDON = """
import os, sys
from ppbfl.protocol.process import spawn_server
proc = spawn_server(sys.argv[1:], ready_timeout=60)
print(proc.pid, flush=True)
os._exit(0)  # no cleanup at all: the server must notice on its own
"""


def test_server_does_not_outlive_a_parent_that_dies(pki):
    done = subprocess.run(
        [sys.executable, "-c", SPAWN_AND_ABANDON, *echo_server_args(pki)],
        env=child_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    for _ in range(300):  # the server polls its stop flag every 0.5 s
        if _gone(pid):
            break
        time.sleep(0.05)
    assert _gone(pid), f"orphan server {pid} still running"


def test_spawn_server_reports_children_that_do_not_listen():
    with pytest.raises(ServerStartError, match=r"(?s)exited .* before listening.*boom"):
        spawn_server([sys.executable, "-c", "import sys; sys.exit('boom')"], ready_timeout=30)
    with pytest.raises(ServerStartError, match="printed 'hello'"):
        spawn_server([sys.executable, "-c", "print('hello')"], ready_timeout=30)
    with pytest.raises(ServerStartError, match=r"within 0\.3 s"):
        spawn_server([sys.executable, "-c", "import time; time.sleep(30)"], ready_timeout=0.3)
