"""Nothing outlives a killed coordinator (issue 12, item 4): its anvil node and its temporary
credentials folder (with the servers' private keys while they start) go with it, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from ppbfl.protocol.cleanup import OWNER_FILE, PrivateFolder, sweep_stale
from tests.test_protocol_transport import child_env

STARTING = """
import sys
import threading
from ppbfl.chain import Chain
from ppbfl.protocol.deployment import GrpcDeployment

chain = Chain.anvil(accounts=4)
first = threading.Lock()

def starting(self, party, factory, args, ready_timeout, on_chain):  # the servers are starting: their keys are on disk
    if first.acquire(blocking=False):  # the servers start on several threads: one line, written once
        print(f"{chain.node.pid} {self.workdir}", flush=True)
    sys.stdin.readline()  # killed here

GrpcDeployment._spawn = starting
GrpcDeployment(2, 3, 4)
"""


def _gone(pid: int) -> bool:
    """The process ended (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _wait(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_killed_coordinator_takes_its_anvil_and_its_key_folder_with_it():
    """SIGKILL, the signal nothing can handle (SIGTERM's default action ends the process the same
    way: the kernel closes its pipes and sends the parent-death signal)."""
    sig = signal.SIGKILL
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTING], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_env(), text=True,
    )
    try:
        pid_text, folder_text = proc.stdout.readline().split()
        anvil, folder = int(pid_text), Path(folder_text)
        assert not _gone(anvil)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        keys = sorted(p.name for p in folder.glob("*.key"))
        assert "edge-1.key" in keys  # the window a kill can hit
        proc.send_signal(sig)
        assert proc.wait(30) == -sig
        assert _wait(lambda: _gone(anvil)), f"anvil (pid {anvil}) outlived its parent"
        assert _wait(lambda: not folder.exists()), f"{folder} outlived its parent: {list(folder.iterdir())}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stale_folders_are_swept_at_the_next_start_and_live_ones_kept(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / "ppbfl-grpc-stale"  # its owner and its watchdog were both killed
    stale.mkdir(mode=0o700)
    (stale / OWNER_FILE).write_text(f"{int(finished.stdout)} 1")
    (stale / "edge-1.key").write_text("private")
    reused = tmp_path / "ppbfl-grpc-reused"  # the owner's pid now belongs to another process
    reused.mkdir(mode=0o700)
    (reused / OWNER_FILE).write_text(f"{os.getpid()} 1")
    live = PrivateFolder("ppbfl-grpc-", tmp_path)
    unstamped = tmp_path / "ppbfl-grpc-being-made"
    unstamped.mkdir()
    try:
        assert not stale.exists() and not reused.exists()
        assert live.path.is_dir() and stat.S_IMODE(live.path.stat().st_mode) == 0o700
        assert sweep_stale("ppbfl-grpc-", tmp_path) == []  # a running owner's folder, and one without a stamp yet, stay
        assert unstamped.exists()
    finally:
        live.remove()
    assert not live.path.exists()
