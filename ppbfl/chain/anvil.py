"""Find, install and run a local anvil node (npm ``@foundry-rs/anvil``, version pinned in package.json).

Where the binary comes from, first match wins:

1. ``$PPBFL_ANVIL`` (a path to an anvil executable);
2. the repository's ``node_modules`` (``npm ci`` at the repo root);
3. ``anvil`` on ``PATH``;
4. the user cache ``~/.cache/ppbfl/anvil-<version>`` (``$XDG_CACHE_HOME`` respected); if it is
   not there and ``npm`` is available, the pinned package is installed there once with
   ``npm install --prefix``.

The npm package's ``bin`` entry is a Node wrapper that spawns the native binary; we start the
native binary (``@foundry-rs/anvil-<os>-<arch>/bin/anvil``) directly, so the node is one process
with one PID that :meth:`AnvilProcess.stop` terminates.

A started node never outlives this process. :meth:`AnvilProcess.stop` ends it (``Chain.close``),
an ``atexit`` hook stops every node still running at normal exit, and on Linux the kernel kills it
when this process dies in any way, ``kill -9`` included: the child asks for
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` between ``fork`` and ``exec`` (anvil is a native binary we
cannot teach to watch a pipe, and a watchdog process per node would cost a second process). The
signal fires when the *thread* that forked the child ends, so nodes are forked by one
long-lived thread of this module (it ends only at interpreter exit); a parent that died before
the ``prctl`` is caught by comparing ``getppid()``. Elsewhere than Linux only the first two hold.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ppbfl.chain.errors import AnvilStartError, AnvilUnavailableError

__all__ = ["ANVIL_VERSION", "AnvilProcess", "find_anvil"]

#: the @foundry-rs/anvil version installed into the user cache (same pin as package.json)
ANVIL_VERSION = "1.7.1"
_REPO = Path(__file__).resolve().parents[2]
_NPM_TIMEOUT_S = 300.0
_PR_SET_PDEATHSIG = 1
_LIVE: weakref.WeakSet[AnvilProcess] = weakref.WeakSet()
_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _platform_package() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "unknown")
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "unknown")
    return f"anvil-{system}-{arch}"


def _in_node_modules(prefix: Path) -> Path | None:
    native = prefix / "node_modules" / "@foundry-rs" / _platform_package() / "bin" / "anvil"
    if native.is_file() and os.access(native, os.X_OK):
        return native
    return None


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ppbfl" / f"anvil-{ANVIL_VERSION}"


def find_anvil(install: bool = True) -> Path:
    """Path of an anvil executable (see the module docstring for the search order).

    With ``install=True`` a missing binary is installed into the user cache with npm.
    Raises :class:`AnvilUnavailableError` naming every place tried.
    """
    tried = []
    env = os.environ.get("PPBFL_ANVIL")
    if env:
        if Path(env).is_file() and os.access(env, os.X_OK):
            return Path(env)
        tried.append(f"$PPBFL_ANVIL={env} (not an executable file)")
    for prefix in (_REPO, _cache_dir()):
        found = _in_node_modules(prefix)
        if found:
            return found
        tried.append(str(prefix / "node_modules"))
        if prefix == _REPO:
            on_path = shutil.which("anvil")
            if on_path:
                return Path(on_path)
            tried.append("anvil on PATH")
    npm = shutil.which("npm")
    if install and npm:
        cache = _cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save",
                 f"@foundry-rs/anvil@{ANVIL_VERSION}"],
                check=False, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S,
            )
            outcome = f"exit {done.returncode}: {done.stderr.strip()[-500:]}"
        except subprocess.TimeoutExpired:
            outcome = f"no answer in {_NPM_TIMEOUT_S:.0f} s"
        found = _in_node_modules(cache)
        if found:
            return found
        tried.append(f"npm install into {cache} ({outcome})")
    elif install:
        tried.append("npm (not on PATH, cannot install)")
    raise AnvilUnavailableError("no anvil binary found; tried: " + "; ".join(tried))


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux), else None.

    libc's ``prctl`` is looked up here, in the parent: the child runs only the call itself."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return preexec


def _spawn(args: list[str], log: BinaryIO) -> subprocess.Popen:
    """Start ``args`` from the module's long-lived spawner thread (see the module docstring)."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ppbfl-anvil-spawner")
        spawner = _SPAWNER
    return spawner.submit(
        subprocess.Popen, args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent(),
    ).result()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rpc_ready(url: str, timeout: float) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return b'"result"' in response.read()
    except OSError:
        return False


@dataclass(eq=False)  # hashed by identity (kept in a WeakSet)
class AnvilProcess:
    """A running anvil node on ``127.0.0.1:port`` (start with :meth:`start`, end with :meth:`stop`)."""

    binary: Path
    port: int
    accounts: int
    process: subprocess.Popen = field(repr=False)
    log: BinaryIO = field(repr=False)

    @property
    def url(self) -> str:
        """HTTP JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """PID of the anvil process."""
        return self.process.pid

    @classmethod
    def start(
        cls,
        *,
        accounts: int = 128,
        binary: Path | None = None,
        timeout_s: float = 20.0,
        attempts: int = 3,
    ) -> AnvilProcess:
        """Start anvil with ``accounts`` funded, unlocked dev accounts on a free port.

        Waits (at most ``timeout_s`` per attempt) until it answers ``eth_chainId``; a port lost
        to a race is retried on a new port. Raises :class:`AnvilStartError` with anvil's stderr.
        """
        binary = binary or find_anvil()
        last = ""
        for _ in range(attempts):
            port = _free_port()
            log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop(), lives as long as the node)
            process = _spawn(
                [str(binary), "--host", "127.0.0.1", "--port", str(port), "--accounts", str(accounts),
                 "--balance", "1000000", "--hardfork", "cancun", "--silent"],
                log,
            )
            node = cls(binary, port, accounts, process, log)
            _LIVE.add(node)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                if _rpc_ready(node.url, timeout=1.0):
                    return node
                time.sleep(0.05)
            last = node.stop()
        raise AnvilStartError(f"anvil ({binary}) did not answer RPC after {attempts} attempts; stderr: {last!r}")

    def stop(self, timeout_s: float = 10.0) -> str:
        """Terminate the process (kill it if it does not exit within ``timeout_s``).

        Returns the tail of its stderr."""
        _LIVE.discard(self)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self.log.closed:
            return ""
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace")[-2000:]
        self.log.close()
        return tail


@atexit.register
def _stop_live_nodes() -> None:
    for node in list(_LIVE):
        node.stop()
