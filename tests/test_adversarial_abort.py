"""A round that fails at the coordinator is aborted on chain and the next round opens (issue 12);
the gRPC deployment leaves no private key on disk and removes its folder on a crash (on close:
``tests/test_protocol_grpc.py``, with the servers' processes started for real)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ppbfl.chain.rounds import Phase
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError
from ppbfl.protocol.transport import InProcessTransport
from tests.protocol_helpers import synthetic_round
from tests.test_protocol_transport import child_env

T, N, D, M = 2, 3, 32, 4


class GarbageReplies(InProcessTransport):
    """The coordinator's transport, with the replies of the edge nodes in ``liars`` replaced by garbage."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.liars: set[str] = set()

    def call_bytes(self, party: str, data: bytes, *, timeout: float) -> bytes:
        reply = super().call_bytes(party, data, timeout=timeout)
        return b"\x92\xc1garbage" + reply[9:] if party in self.liars else reply


def test_a_round_that_fails_at_the_coordinator_is_aborted_and_the_next_round_opens():
    deployment = InProcessDeployment(T, N, D)
    deployment.coordinator = GarbageReplies("coordinator", deployment._handlers)
    updates, reference = synthetic_round(M, D, set(), seed=5)
    with open_ledger("embedded", T, N, devices=M) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        federation = Federation(deployment, coordinator, range(M), ledger=ledger)
        coordinator.setup()
        deployment.coordinator.liars = {"edge-1", "edge-2"}  # two of three nodes answer garbage: fewer than t remain
        with pytest.raises(NotEnoughEdgeNodesError):
            federation.run_round(1, updates, reference)
        assert ledger.contract.round_state(1).phase == Phase.FAILED
        deployment.coordinator.liars = set()
        result = federation.run_round(2, updates, reference)  # reverted with WrongPhase before
        assert result.accepted == list(range(M)) and ledger.contract.round_state(2).phase == Phase.CLOSED
        federation.close()


CRASH = """
import sys
from pathlib import Path
from ppbfl.protocol.deployment import GrpcDeployment

class Started:  # the servers' processes (started for real in tests/test_protocol_grpc.py)
    address = "127.0.0.1:9"
    def alive(self): return False

GrpcDeployment._spawn = lambda self, party, factory, args, ready_timeout, on_chain: Started()
deployment = GrpcDeployment(2, 3, 4)
print(deployment.workdir, flush=True)
print(" ".join(sorted(p.name for p in Path(deployment.workdir).iterdir())), flush=True)
sys.stdin.readline()
raise RuntimeError("the coordinator's process crashes")
"""


def test_the_grpc_deployment_keeps_no_key_on_disk_and_its_folder_goes_on_a_crash():
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_env(), text=True,
    )
    try:
        workdir = Path(proc.stdout.readline().strip())
        files = proc.stdout.readline().split()
        assert workdir.is_dir() and {"ca.crt", "registry.json", "edge-1.crt", "dealer.crt"} <= set(files)
        assert not [f for f in files if f.endswith(".key")], files  # the servers loaded theirs; none stays on disk
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(60) != 0 and "crashes" in proc.stderr.read()
        assert not workdir.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
