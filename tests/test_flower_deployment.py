"""ppbfl inside a Flower app on Flower's deployment engine: ``flower-superlink``, one
``flower-supernode`` per device and three ``ppbfl edge`` processes on 127.0.0.1, the app submitted
with ``flwr run`` (tests/flower_deploy_app), two rounds.

Device 1 is malicious (rejected every round); device 2's SuperNode is killed in the middle of round
2 (a dropout: the round completes without it). The oracle is the in-process protocol on the same
updates (``Federation.in_process``): the aggregates, the accepted devices and the final model must
be equal. Everything the test starts is stopped (process groups), bounded in time. flwr is a test
dependency: without it this module fails to import (no skip)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import flwr
import numpy as np
import pytest

from ppbfl.fl.federation import Federation
from tests import flower_apps as apps

# Three SuperNodes, the fewest that show both claims: one honest device (accepted every round), one
# malicious (rejected every round) and one whose SuperNode dies in round 2. Neither claim depends on
# the device count: the cosine check compares each update with the server's reference (not with the
# other devices), and the edge tier's (t, n) = (2, 3) is the same for any number of devices. Every
# SuperNode costs two flwr-clientapp processes a round, the bulk of this module's time.
DEVICES = 3
MALICIOUS = frozenset({1})
DROPOUT = 2  # its SuperNode dies in round 2
ROUNDS = 2
APP = Path(__file__).parent / "flower_deploy_app"
ROOT = Path(__file__).parent.parent
DEADLINE = 400.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (all bound at once, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every process group at once, SIGKILL the ones still running 5 s later."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_listening(port: int, process: subprocess.Popen, timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port`` (or ``process`` exited, or
    ``timeout`` seconds passed: the caller's next step then fails and says why)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def helpers_of(parents: set[int]) -> set[int]:
    """Pids of the detached helpers (flower-superexec) Flower started for ``parents``: their command
    line names a parent with ``--parent-pid``; they exit by themselves once that parent is gone."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            flag = args.index(b"--parent-pid") if b"--parent-pid" in args else -1
            if 0 <= flag < len(args) - 1 and args[flag + 1].isdigit() and int(args[flag + 1]) in parents:
                found.add(int(entry.name))
    return found


def wait_gone(pids: set[int], timeout: float) -> None:
    """Wait for ``pids`` to exit; SIGKILL the ones left after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if Path(f"/proc/{p}").exists()}
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("flower-deploy")
    env = {  # the SuperLink and SuperNodes start flower-superexec, flwr-serverapp, flwr-clientapp from PATH
        **os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "FLWR_HOME": str(work / "flwr-home"),
    }
    link, *node_ports = free_ports(1 + DEVICES)
    (work / "flwr-home").mkdir()
    (work / "flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "ppbfl-test"\n\n[superlink.ppbfl-test]\naddress = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    out = work / "rounds.json"
    processes: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> subprocess.Popen:
        with open(work / log, "wb") as sink:
            process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        processes.append(process)
        return process

    try:  # Flower's processes start (seconds of imports) while the edge tier starts
        superlink = start([tool("flower-superlink"), "--insecure", "--port", str(link), "--disable-runtime-dependency-installation"], "superlink.log")
        nodes = {
            i: start([tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}", "--port", str(node_ports[i]),
                      "--node-config", f"ppbfl-device={i}"], f"supernode-{i}.log")
            for i in range(DEVICES)
        }
        with apps.edge_tier(work, DEVICES) as (creds, edges, _):
            config = " ".join([
                f"edges='{','.join(f'{j}={a}' for j, a in edges.items())}'", f"ppbfl-creds='{creds}'", f"out='{out}'",
                f"devices={DEVICES}", f"malicious='{','.join(map(str, sorted(MALICIOUS)))}'", f"num-server-rounds={ROUNDS}",
                f"hang-device={DROPOUT}", "hang-round=2", "timeout=150.0",
            ])
            deadline = time.monotonic() + DEADLINE
            wait_listening(link, superlink, 120.0)  # the SuperLink takes a few seconds to listen
            while True:  # and a moment more to take runs
                submit = subprocess.run([tool("flwr"), "run", str(APP), "ppbfl-test", "--run-config", config],
                                        env=env, capture_output=True, text=True, timeout=60, cwd=work)
                if submit.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert submit.returncode == 0, submit.stdout + submit.stderr
            killed = False
            while not out.exists() and time.monotonic() < deadline:
                if not killed and Path(f"{out}.hang").exists():
                    os.killpg(nodes[DROPOUT].pid, signal.SIGTERM)  # the SuperNode leaves the federation
                    killed = True
                time.sleep(0.2)
            logs = {p.name: p.read_text(errors="replace")[-3000:] for p in work.glob("*.log")}
            assert out.exists(), f"no result within {DEADLINE} s: {logs}"
            return {"result": json.loads(out.read_text()), "killed": killed}
    finally:
        stop(processes[1:])  # the SuperNodes first: they deactivate at the SuperLink as they leave
        stop(processes[:1])
        detached = helpers_of({p.pid for p in processes})
        wait_gone(detached, 15.0)


def in_process_rounds() -> list[tuple[np.ndarray, list[int]]]:
    """Each round's aggregate and accepted devices by the in-process protocol (device DROPOUT absent in round 2)."""
    w = np.zeros(31)
    out = []
    with Federation.in_process(apps.T, apps.N, w.size, DEVICES) as federation:
        for r in range(1, ROUNDS + 1):
            present = [i for i in range(DEVICES) if not (r == 2 and i == DROPOUT)]
            updates = {i: apps.client_update(w, i, DEVICES, MALICIOUS) - w for i in present}
            result = federation.run_round(r, updates, apps.reference(w))
            w = w + result.aggregate
            out.append((result.aggregate, result.accepted))
    return out


def test_flwr_version_is_the_tested_one() -> None:
    assert flwr.__version__.startswith("1.42.")


def test_rounds_match_the_in_process_protocol(deployment: dict) -> None:
    rounds = deployment["result"]["rounds"]
    expected = in_process_rounds()
    w = np.zeros(31)
    for r, (aggregate, accepted) in enumerate(expected, start=1):
        assert rounds[str(r)]["accepted"] == accepted
        np.testing.assert_array_equal(np.array(rounds[str(r)]["aggregate"]), aggregate)
        w = w + aggregate
    np.testing.assert_array_equal(np.array(deployment["result"]["final"]), w)
    assert apps.accuracy(w) > 0.9


def test_malicious_client_rejected(deployment: dict) -> None:
    for r in ("1", "2"):
        assert deployment["result"]["rounds"][r]["rejected"] == sorted(MALICIOUS)
        assert deployment["result"]["rounds"][r]["metrics"]["plaintext-replies"] == 0


def test_supernode_dropout_mid_round_is_a_device_dropout(deployment: dict) -> None:
    assert deployment["killed"]
    first, second = deployment["result"]["rounds"]["1"], deployment["result"]["rounds"]["2"]
    assert first["devices"] == list(range(DEVICES))
    assert second["devices"] == [i for i in range(DEVICES) if i != DROPOUT]
    # SIGTERM: the SuperNode leaves and the SuperLink answers for it (an error reply); a crash would
    # instead be a missing reply at the workflow's timeout. Either way one sampled node is gone.
    assert second["metrics"]["flower-errors"] + second["metrics"]["no-reply"] == 1
    assert second["accepted"] == [i for i in range(DEVICES) if i not in MALICIOUS and i != DROPOUT]
