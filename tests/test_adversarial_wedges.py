"""Attacks that try to wedge a round (issue 12, "nothing wedges a round").

* a device uploads for round r + 2 (or further): before, every node dropped round r's state;
* a coordinator (or anyone holding its identity) sends a SetupEdge with n, t, d near 2^32;
* one device floods a node with forged 238-byte seed uploads (each expands to a d-vector);
* one device opens many streams and never finishes them (the server's worker threads).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import grpc
import numpy as np
import pytest

from ppbfl.field.csprng import new_seed
from ppbfl.protocol.commitments import share_leaf
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.errors import PeerAuthError, RemoteError
from ppbfl.protocol.grpc_transport import METHOD, GrpcTransport, serve
from ppbfl.protocol.messages import DeviceUpload, SetupEdge
from ppbfl.protocol.registry import Registry
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.testing import EchoHandler, EchoRequest
from tests.protocol_helpers import synthetic_round
from tests.test_protocol_transport import pki  # noqa: F401 - the module-scoped PKI fixture

T, N, D, M = 2, 3, 64, 4


def test_an_upload_for_a_later_round_leaves_the_open_round_intact_at_every_node():
    updates, reference = synthetic_round(M, D, set(), seed=3)
    with InProcessDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator)
        coordinator.setup()
        announcement = coordinator.open_round(1)
        devices = [Device(i, T, N, coordinator.codec, transport=deployment.device_transport(i)) for i in range(M)]
        for i, device in enumerate(devices):
            device.submit(announcement, updates[i])
        attacker = Device(M, T, N, coordinator.codec, transport=deployment.device_transport(M))
        for later in (3, 4, 1 << 40):
            refused = attacker.submit(dataclasses.replace(announcement, round=later), updates[0]).refused
            assert sorted(refused) == [1, 2, 3] and all("OutOfPhaseError" in why and "round" in why for why in refused.values())
        for node in deployment.nodes.values():
            assert sorted(node.rounds) == [1] and sorted(node.rounds[1].uploads) == list(range(M))
        challenge = coordinator.challenge(1)
        for device in devices:
            device.prove(challenge)
        result = coordinator.finish_round(1, reference)
        assert result.devices == list(range(M)) and not result.missing and result.accepted == list(range(M))
        coordinator.close()


@pytest.mark.parametrize("field", ["n", "t", "d", "index"])
def test_a_setup_with_absurd_parameters_is_refused_at_once(field):
    with InProcessDeployment(T, N, D) as deployment:
        sane = dict(index=1, t=T, n=N, d=D, frac_bits=16, tau=0.0, validity_k=40, session=bytes(32))
        absurd = {**sane, field: (1 << 32) - 1}
        if field == "t":
            absurd["n"] = (1 << 32) - 1
        start = time.perf_counter()
        with pytest.raises(RemoteError) as refused:
            deployment.coordinator.call("edge-1", SetupEdge(**absurd), round=0, timeout=5)
        assert time.perf_counter() - start < 1.0
        assert refused.value.remote_type == "OutOfPhaseError" and "setup" in refused.value.remote_message
        assert deployment.nodes["edge-1"].setup is None  # nothing was set up


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def test_a_flood_of_forged_seed_uploads_does_not_grow_a_node(capsys):
    d, flood = 20_000, 1_500
    with InProcessDeployment(T, N, d) as deployment:
        Coordinator(T, N, d, deployment.coordinator).setup()
        node = deployment.nodes["edge-1"]
        transport = deployment.device_transport(6)
        seed = new_seed()

        def forged(round: int, device: int) -> DeviceUpload:
            leaves = [share_leaf(round, device, j, 1, seed=seed, stream=0) for j in range(1, N + 1)]
            return DeviceUpload(device=device, share=None, seed=seed, stream=0, mask_share=1, leaves=leaves)

        transport.call("edge-1", forged(1, 6), round=1, timeout=5)  # its one legitimate upload (warms the path up)
        before = _rss_bytes()
        outcomes: dict[str, int] = {}
        attempts = [(i, 1) for i in range(flood) if i != 6] + [(6, r) for r in range(2, 202)]
        for device, round in attempts:  # other devices' ids, then its own id in ever later rounds
            try:
                transport.call("edge-1", forged(round, device), round=round, timeout=5)
                outcomes["stored"] = outcomes.get("stored", 0) + 1
            except (PeerAuthError, RemoteError) as error:
                name = type(error).__name__ if isinstance(error, PeerAuthError) else error.remote_type
                outcomes[name] = outcomes.get(name, 0) + 1
        grown = _rss_bytes() - before
        with capsys.disabled():
            print(f"\n{len(attempts)} forged seed uploads (d = {d}): {outcomes}, RSS {before / 2**20:.0f} MB -> +{grown / 2**20:.1f} MB")
        stored = sum(len(state.uploads) for state in node.rounds.values())
        assert outcomes == {"PeerAuthError": flood - 1, "stored": 1, "OutOfPhaseError": 199}
        assert stored == 2 and sorted(node.rounds) == [1, 2]  # its own id, in the rounds of the window
        assert grown < 8 * 2**20  # 1,700 stored expansions would be 270 MB


def test_stalled_streams_of_one_device_do_not_starve_the_others(pki):  # noqa: F811
    registry = Registry({p: pki[p].fingerprint for p in ("device-1", "device-2")})
    release = threading.Event()

    def stall():
        yield b"\x92"  # the first byte of a message, then nothing
        release.wait(30)

    with serve(
        EchoHandler(), "edge-1", pki["edge-1"], pki["ca"].cert_pem, registry=registry,
        max_workers=4, message_deadline=1.0, max_calls_per_peer=2,
    ) as server:
        creds = grpc.ssl_channel_credentials(pki["ca"].cert_pem, pki["device-1"].key_pem, pki["device-1"].cert_pem)
        with grpc.secure_channel(server.address, creds, options=[("grpc.ssl_target_name_override", "edge-1")]) as channel:
            stalled = [channel.stream_stream(METHOD)(stall(), timeout=30) for _ in range(8)]
            time.sleep(0.3)
            with GrpcTransport("device-2", pki["device-2"], pki["ca"].cert_pem, {"edge-1": server.address}) as honest:
                start = time.perf_counter()
                reply = honest.call("edge-1", EchoRequest(np.arange(3, dtype=np.uint64)), round=1, timeout=5)
                assert reply.message.caller == "device-2" and time.perf_counter() - start < 3.0
            codes = []
            for call in stalled:
                with pytest.raises(grpc.RpcError) as failed:
                    list(call)
                codes.append(failed.value.code())
            release.set()
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 6  # more than 2 at once from one peer
        assert codes.count(grpc.StatusCode.CANCELLED) == 2  # the other two: cut at the message deadline


def test_a_triple_request_larger_than_one_message_is_refused_before_any_allocation():
    from ppbfl.protocol.messages import TripleRequest

    with InProcessDeployment(T, N, D) as deployment:
        start = time.perf_counter()
        with pytest.raises(RemoteError) as refused:
            deployment.coordinator.call("dealer", TripleRequest((1 << 32) - 1, 840, [1, 2, 3]), round=1, timeout=5)
        assert time.perf_counter() - start < 1.0
        assert refused.value.remote_type == "OutOfPhaseError" and "count" in refused.value.remote_message
