"""Durable atomic file replacement: write a temporary file in the target's folder, fsync it,
``os.replace`` it over the target, fsync the folder. A crash at any point leaves the old file or
the new one, never a mix (the edge node's state, the resumable run's model files)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["replace_durably"]


def replace_durably(target: Path, write: Callable[[BinaryIO], object], *, prefix: str) -> None:
    """Replace ``target`` by what ``write(file)`` writes, durably and atomically.

    The temporary file (``prefix`` + random, mode 0600 from ``mkstemp``) lives in ``target``'s
    folder and is removed if anything fails before the replace.

    Raises:
        OSError: the file or its folder cannot be written or synced (the old file is intact).
    """
    folder = target.parent
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
