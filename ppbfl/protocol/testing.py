"""A tiny echo handler for transport tests and the transport benchmark (not used by the protocol).

:class:`EchoHandler` answers an :class:`EchoRequest` with an :class:`EchoReply` that carries the
same field elements back, their sum modulo 2^64, the caller's id and a call count. The request's
``op`` selects misbehaviour for tests: ``"echo"`` (default), ``"sleep"`` (sleep ``seconds`` first),
``"raise"`` (raise ValueError), ``"exit"`` (the server process dies mid-call with status 3).
Serve it in its own process with
``python -m ppbfl.protocol.serve --handler ppbfl.protocol.testing:make_echo_handler ...``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np

from ppbfl.protocol.wire import (
    Envelope,
    FieldArray,
    Float,
    Message,
    Text,
    UInt,
    register,
)

__all__ = ["EchoHandler", "EchoReply", "EchoRequest", "make_echo_handler"]


@register
@dataclass(frozen=True, eq=False)
class EchoRequest(Message):
    """``values``: (d,) uint64 in [0, p); ``op``: echo | sleep | raise | exit; ``seconds``: for sleep."""

    KIND: ClassVar[str] = "ppbfl.testing.echo"
    VERSION: ClassVar[int] = 1
    values: Annotated[np.ndarray, FieldArray(ndim=1)]
    op: Annotated[str, Text(max_len=16)] = "echo"
    seconds: Annotated[float, Float()] = 0.0


@register
@dataclass(frozen=True, eq=False)
class EchoReply(Message):
    """The request's ``values`` back, their ``total`` mod 2^64, the ``caller`` id, and ``calls`` served."""

    KIND: ClassVar[str] = "ppbfl.testing.echo-reply"
    VERSION: ClassVar[int] = 1
    values: Annotated[np.ndarray, FieldArray(ndim=1)]
    total: Annotated[int, UInt(bits=64)]
    caller: Annotated[str, Text(max_len=64)]
    calls: Annotated[int, UInt(bits=64)]


class EchoHandler:
    """Serves :class:`EchoRequest` (see module docstring); ``calls`` counts requests handled."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def handle(self, envelope: Envelope) -> EchoReply:
        """Answer one request according to its ``op``."""
        req = envelope.message
        if not isinstance(req, EchoRequest):
            raise TypeError(f"EchoHandler cannot serve {type(req).__name__}")
        with self._lock:
            self.calls += 1
            calls = self.calls
        if req.op == "sleep":
            time.sleep(req.seconds)
        elif req.op == "raise":
            raise ValueError(f"echo handler asked to fail (call {calls})")
        elif req.op == "exit":
            os._exit(3)
        elif req.op != "echo":
            raise ValueError(f"unknown op {req.op!r}")
        total = int(req.values.sum(dtype=np.uint64))
        return EchoReply(values=req.values, total=total, caller=envelope.sender, calls=calls)


def make_echo_handler() -> EchoHandler:
    """Factory for ``python -m ppbfl.protocol.serve --handler ppbfl.protocol.testing:make_echo_handler``."""
    return EchoHandler()
