"""Private temporary folders that go away with their process, however it ends.

A deployment writes certificates, a manifest and (while its servers start) their private keys to
a temporary folder. :class:`PrivateFolder` makes that folder so that nothing outlives the process:

* it is created owner-only (``0700``, :func:`tempfile.mkdtemp`) and stamped with its owner's
  process id and start time (file ``owner``);
* a watchdog process (``python -I``, stdlib only, its own session so a terminal's Ctrl-C does not
  reach it) holds the read end of a pipe from this process and removes the folder when the pipe
  closes: on :meth:`PrivateFolder.remove`, at normal exit, after an uncaught exception, and also
  when this process is killed by a signal it cannot handle (SIGTERM's default action, SIGKILL, the
  OOM killer), since the kernel closes the pipe then. No signal handler is installed.
* if the watchdog itself is killed with its parent (``kill -9`` of both), :func:`sweep_stale`
  removes every folder of the prefix whose owner is gone at the next start (it is run whenever a
  :class:`PrivateFolder` is made).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["OWNER_FILE", "PrivateFolder", "sweep_stale"]

OWNER_FILE = "owner"
"""The stamp in each folder: ``<pid> <process start time>`` of the process that made it."""

_WATCHDOG = (
    "import shutil, sys\n"
    "sys.stdin.buffer.read()\n"  # returns at EOF: the parent closed the pipe or died
    "shutil.rmtree(sys.argv[1], ignore_errors=True)\n"
)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or ``"-"`` where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat.rpartition(")")[2].split()[19]  # field 22; the command name may contain spaces


def _alive(stamp: str) -> bool:
    """Whether the process a stamp ``"<pid> <start time>"`` names still runs (a reused pid does not count)."""
    try:
        pid_text, started = stamp.split()
        pid = int(pid_text)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the pid is in use
        return True
    return started == "-" or _start_time(pid) == started


def sweep_stale(prefix: str, directory: str | os.PathLike | None = None) -> list[Path]:
    """Remove the folders ``<directory>/<prefix>*`` of this user whose stamped owner no longer runs.

    ``directory`` defaults to :func:`tempfile.gettempdir`. Folders without a readable stamp (being
    made right now, or not ours) are left alone. Returns the folders removed.
    """
    base = Path(directory or tempfile.gettempdir())
    removed = []
    for folder in base.glob(f"{prefix}*"):
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            stamp = (folder / OWNER_FILE).read_text()
        except OSError:
            continue
        if not _alive(stamp):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class PrivateFolder:
    """An owner-only temporary folder, removed on :meth:`remove` and whenever this process ends.

    Args:
        prefix: the folder's name prefix (``<tmp>/<prefix>XXXXXXXX``); stale folders of the same
            prefix are swept first (:func:`sweep_stale`).
        directory: where to make it (default :func:`tempfile.gettempdir`).
    """

    def __init__(self, prefix: str, directory: str | os.PathLike | None = None) -> None:
        sweep_stale(prefix, directory)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))  # 0700
        (self.path / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}")
        self._watchdog: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, str(self.path)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def remove(self) -> None:
        """Remove the folder now and let the watchdog go (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            assert watchdog.stdin is not None
            watchdog.stdin.close()
            try:
                watchdog.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
