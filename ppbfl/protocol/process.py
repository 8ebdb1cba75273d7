"""Run a party's server in its own OS process and tear it down without leaving orphans.

:func:`spawn_server` starts a command (typically ``python -m ppbfl.protocol.serve ...`` or
``ppbfl edge ...``) whose first stdout line is ``LISTENING <host>:<port>`` and returns a
:class:`ServerProcess` once that line arrives (or raises :class:`ServerStartError` after
``ready_timeout`` seconds, with the child's stderr). Three guards against orphans:

* :class:`ServerProcess` is a context manager (``terminate()`` on exit: SIGTERM, then SIGKILL);
* every live child is killed by an ``atexit`` hook of this process;
* the child gets a stdin pipe and ``PPBFL_EXIT_ON_STDIN_EOF=1``; servers run by
  :func:`ppbfl.protocol.serve.run_server` exit when that pipe closes, i.e. when this process dies,
  even by SIGKILL.
"""

from __future__ import annotations

import atexit
import collections
import os
import re
import selectors
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Self

from ppbfl.protocol.errors import ServerStartError

__all__ = ["EXIT_ON_STDIN_EOF", "ServerProcess", "spawn_server"]

#: environment variable telling a served child to exit when its stdin reaches EOF
EXIT_ON_STDIN_EOF = "PPBFL_EXIT_ON_STDIN_EOF"
_LISTENING = re.compile(rb"^LISTENING (\S+):(\d+)\s*$")
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


class ServerProcess:
    """A running server child: ``pid``, ``host``, ``port``, ``address``; ``terminate()``, ``kill()``."""

    def __init__(self, popen: subprocess.Popen, host: str, port: int, stderr_file, rest: bytes) -> None:
        self._popen = popen
        self.host = host
        self.port = port
        self._stderr = stderr_file
        self._stdout_tail: collections.deque[bytes] = collections.deque([rest] if rest else [], maxlen=64)
        self._drain = threading.Thread(target=self._drain_stdout, name=f"drain-{popen.pid}", daemon=True)
        self._drain.start()
        _LIVE.add(self)

    def _drain_stdout(self) -> None:  # keep the pipe from filling up and blocking the child
        assert self._popen.stdout is not None
        for line in iter(self._popen.stdout.readline, b""):
            self._stdout_tail.append(line)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._popen.pid

    @property
    def address(self) -> str:
        """``"host:port"`` the child listens on."""
        return f"{self.host}:{self.port}"

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited (negative: killed by that signal), else None."""
        return self._popen.poll()

    def alive(self) -> bool:
        """True while the child runs."""
        return self._popen.poll() is None

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; return the exit status."""
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                return self._finish(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
        return self._finish(timeout)

    def kill(self) -> int:
        """SIGKILL at once and reap; return the exit status."""
        if self._popen.poll() is None:
            self._popen.kill()
        return self._finish(5.0)

    def _finish(self, timeout: float) -> int:
        code = self._popen.wait(timeout)
        for stream in (self._popen.stdin,):
            if stream is not None and not stream.closed:
                stream.close()
        _LIVE.discard(self)
        return code

    def output(self) -> str:
        """The child's stderr so far and the last stdout lines (for error messages)."""
        self._stderr.seek(0)
        err = self._stderr.read().decode("utf-8", "replace")
        return f"stderr:\n{err[-4000:]}\nstdout (tail):\n" + b"".join(self._stdout_tail).decode("utf-8", "replace")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def _read_first_line(popen: subprocess.Popen, deadline: float) -> tuple[bytes, bytes]:
    """Read the child's stdout up to the first newline before ``deadline``: (line, what followed)."""
    assert popen.stdout is not None
    fd = popen.stdout.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError
            buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line, rest


def spawn_server(
    command_args: Sequence[str],
    ready_timeout: float = 30.0,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ServerProcess:
    """Start ``command_args`` and wait up to ``ready_timeout`` s for its ``LISTENING host:port`` line.

    ``env``: the child's environment (default: this process's), to which ``PPBFL_EXIT_ON_STDIN_EOF=1``
    is added. Raises :class:`ServerStartError` (with the child's stderr) if the child exits, prints
    something else first, or is not ready in time; the child is killed in that case.
    """
    child_env = dict(os.environ if env is None else env)
    child_env[EXIT_ON_STDIN_EOF] = "1"
    stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - the ServerProcess keeps it for output()
    # stdout is read with os.read on the raw pipe, so it must be unbuffered on our side
    popen = subprocess.Popen(
        list(command_args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file,
        env=child_env, cwd=cwd, bufsize=0,
    )
    try:
        line, rest = _read_first_line(popen, time.monotonic() + ready_timeout)
        match = _LISTENING.match(line)
        if match is None:
            raise ValueError(line)
    except (TimeoutError, EOFError, ValueError) as exc:
        popen.kill()
        popen.wait()
        stderr_file.seek(0)
        err = stderr_file.read().decode("utf-8", "replace")[-4000:]
        stderr_file.close()
        if isinstance(exc, TimeoutError):
            what = f"did not print 'LISTENING host:port' within {ready_timeout:g} s"
        elif isinstance(exc, EOFError):
            what = f"exited (status {popen.returncode}) before listening"
        else:
            what = f"printed {exc.args[0][:200].decode('utf-8', 'replace')!r} instead of 'LISTENING host:port'"
        raise ServerStartError(f"server {list(command_args)[:6]} {what}; stderr:\n{err}") from None
    return ServerProcess(popen, match.group(1).decode(), int(match.group(2)), stderr_file, rest)


@atexit.register
def _kill_live_children() -> None:
    for proc in list(_LIVE):
        proc.kill()
