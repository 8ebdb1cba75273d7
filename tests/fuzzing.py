"""A seeded mutation fuzzer of the wire codec (:mod:`ppbfl.protocol.wire`), for the fuzz tests and
``benchmarks/fuzz_wire.py`` (issue 12: "for any bytes, ``decode`` raises only ``MessageError``").

* :func:`corpus` builds VALID encoded messages of every registered message kind (found by walking
  :class:`~ppbfl.protocol.wire.Message`'s subclasses, so a kind added later is covered): values are
  drawn from each field's wire spec with consistent sizes (``d``, ``m`` devices, ``k`` nodes), and
  :data:`REALISTIC` builds the kinds whose checks go deeper with realistic values (a setup an edge
  node accepts, an upload whose leaf matches its share). A kind neither can build fails with
  :class:`CorpusError`, naming it.
* :class:`Mutator` turns corpus entries into mutants: byte-level (bit flips, byte insert / delete /
  duplicate / overwrite, truncation, splicing two messages, msgpack headers with huge lengths,
  deep nesting) and msgpack-structure-aware (a value replaced by one of another type, huge and
  negative ints, NaN, wrong ``kind`` / ``v`` / ``round`` / ``sender``, kind confusion, array maps
  with odd dtypes, giant or negative shapes and data of the matching length, fields added,
  removed or set to None, over-long lists). Everything comes from one ``numpy`` Generator, so a
  seed and a mutant's index reproduce it.
* :func:`decode_outcome` decodes one input: a decoded message (which must re-encode and decode to
  the same kind) or a :class:`MessageError`, classified by :func:`reason_class`; anything else
  escapes to the caller. :func:`fuzz_decode` runs a whole campaign and reports every untyped
  exception and the slowest decode (each under a wall-clock guard, :class:`Hang`).
* :func:`wild_message` / :func:`wild_source`: messages that pass the schema with values a receiver
  may not expect (boundary ints, other lengths), mixed into the mutants.
* :func:`fuzz_live` sends mutants to an edge node through its peers' transports and checks every
  answer (:func:`live_outcome`): a valid reply or a typed ppbfl error (:func:`ppbfl_error_names`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import signal
import threading
import time
import traceback
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

import ppbfl.protocol.edge_node  # registers the edge state's kind; defines the node's error types
import ppbfl.protocol.messages as messages
import ppbfl.protocol.testing  # noqa: F401 - registers its message kinds
from ppbfl.errors import PPBFLError
from ppbfl.field import MERSENNE61
from ppbfl.protocol.commitments import share_leaf
from ppbfl.protocol.errors import MessageError, PeerAuthError, RemoteError
from ppbfl.protocol.parties import COORDINATOR_PARTY
from ppbfl.protocol.wire import (
    MAX_ARRAY_AXIS,
    Array,
    Bool,
    Bytes,
    FieldArray,
    Float,
    ListOf,
    Message,
    Spec,
    Text,
    UInt,
    decode,
    encode,
    message_class,
)

P = MERSENNE61
SENDERS = ("coordinator", "edge-1", "edge-2", "device-0", "device-7", "dealer")
_ENVELOPE_FIELDS = ("v", "kind", "sender", "round", "body", "<bytes>", "<envelope>", "<body>")


class CorpusError(AssertionError):
    """A registered message kind the corpus cannot build: add a builder to :data:`REALISTIC`."""


class Hang(Exception):
    """One input took longer than the fuzzer's per-message wall-clock limit."""


# ---------------------------------------------------------------------------------------------
# the registered kinds and their field specs
# ---------------------------------------------------------------------------------------------


def registered_kinds() -> dict[str, type[Message]]:
    """Every registered message kind -> its class (every subclass of Message that ``message_class`` knows)."""
    found: dict[str, type[Message]] = {}
    todo = list(Message.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        try:
            if message_class(cls.KIND) is cls:
                found[cls.KIND] = cls
        except KeyError:
            continue
    return dict(sorted(found.items()))


def field_specs(cls: type[Message]) -> list[tuple[str, Spec, bool]]:
    """``(name, spec, optional)`` of each field of ``cls``, from its ``Annotated`` metadata."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        hint, optional = hints[f.name], False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional, hint = True, args[0]
        spec = next(m for m in hint.__metadata__ if isinstance(m, Spec))
        inner = typing.get_args(hint)[0]
        if typing.get_origin(inner) in (typing.Union, types.UnionType) and type(None) in typing.get_args(inner):
            optional = True
        out.append((f.name, spec, optional))
    return out


# ---------------------------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """The sizes a corpus message is built with: update length ``d``, ``m`` devices, ``k`` nodes of a tier of ``n``."""

    d: int = 16
    m: int = 3
    k: int = 3
    n: int = 3


_TEXT = {"rule": "cosine", "flame_space": "updates", "note": "stored"}
_LIST_LENGTH = {"leaves": "n", "chain_signatures": 3, "ids_reports": 1, "signatures": "k"}


def _axis(constraint: int | str | None, axis: int, ndim: int, sizes: Sizes) -> int:
    if isinstance(constraint, int):
        return constraint
    if constraint is not None:
        return int(getattr(sizes, constraint))
    return sizes.k if ndim == 2 and axis == 0 else sizes.m


def sample_value(spec: Spec, name: str, rng: np.random.Generator, sizes: Sizes) -> Any:
    """A valid value of ``spec`` for field ``name`` (consistent sizes from ``sizes``)."""
    if isinstance(spec, Array):
        shape = tuple(_axis(c, a, spec.ndim, sizes) for a, c in enumerate(spec.shape or (None,) * spec.ndim))
        dt = spec.wire_dtype
        if isinstance(spec, FieldArray):
            return rng.integers(0, spec.p or P, size=shape, dtype=np.uint64)
        if dt.kind == "f":
            return rng.random(size=shape).astype(dt)
        return rng.integers(0, 100, size=shape).astype(dt)
    if isinstance(spec, ListOf):
        want = spec.length if spec.length is not None else _LIST_LENGTH.get(name, "m")
        n = want if isinstance(want, int) else int(getattr(sizes, want))
        n = min(n, spec.max_len) if spec.max_len is not None else n
        return [sample_value(spec.spec, name, rng, sizes) for _ in range(n)]
    if isinstance(spec, UInt):
        return int(rng.integers(0, min(spec.limit, sizes.m) + 1))
    if isinstance(spec, Float):
        return float(rng.random())
    if isinstance(spec, Bool):
        return bool(rng.integers(2))
    if isinstance(spec, Text):
        return _TEXT.get(name, "ok")[: spec.max_len]
    if isinstance(spec, Bytes):
        n = spec.length if spec.length is not None else min(spec.max_len or 72, 72)
        return rng.bytes(n)
    raise CorpusError(f"field {name!r}: no sampler for spec {type(spec).__name__}")


def generic_message(cls: type[Message], rng: np.random.Generator, sizes: Sizes) -> Message:
    """An instance of ``cls`` with every field drawn by :func:`sample_value` (optional ones None at times)."""
    values = {}
    for name, spec, optional in field_specs(cls):
        values[name] = None if optional and rng.random() < 0.3 else sample_value(spec, name, rng, sizes)
    return cls(**values)


def wild_value(spec: Spec, name: str, rng: np.random.Generator, sizes: Sizes) -> Any:
    """A value ``spec`` accepts but a receiver may not expect: boundary ints, extreme finite floats,
    empty or maximal lengths, lists and array axes of sizes unrelated to the other fields'. Axes
    bound to the context (``"d"``) keep their length, so the message still decodes."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if isinstance(spec, Array):
        shape = []
        for a, c in enumerate(spec.shape or (None,) * spec.ndim):
            shape.append(_axis(c, a, spec.ndim, sizes) if isinstance(c, (int, str)) else pick((0, 1, 2, sizes.m + 1, int(rng.integers(0, 40)))))
        if isinstance(spec, FieldArray):
            top = spec.p or P
            return rng.choice(np.array([0, 1, top - 1, top // 2], dtype=np.uint64), size=tuple(shape)) if rng.random() < 0.5 else rng.integers(0, top, size=tuple(shape), dtype=np.uint64)
        if spec.wire_dtype.kind == "f":
            info = np.finfo(spec.wire_dtype)
            values = np.array([0.0, -1.0, info.max, -info.max, info.smallest_subnormal, 1.0, -0.0] + ([float("nan"), float("inf")] if not spec.finite else []))
            return rng.choice(values, size=tuple(shape)).astype(spec.wire_dtype)
        return rng.integers(0, 100, size=tuple(shape)).astype(spec.wire_dtype)
    if isinstance(spec, ListOf):
        if isinstance(spec.length, int):
            n = spec.length
        elif isinstance(spec.length, str):
            n = int(getattr(sizes, spec.length))
        else:
            top = spec.max_len if spec.max_len is not None else 70
            n = pick((0, 1, 2, sizes.m + 1, min(top, 70), top if top <= 1025 else 70))
        return [wild_value(spec.spec, name, rng, sizes) if rng.random() < 0.5 else sample_value(spec.spec, name, rng, sizes) for _ in range(n)]
    if isinstance(spec, UInt):
        return int(pick((0, 1, 2, spec.limit, spec.limit - 1, spec.limit // 2, 2**31, int(rng.integers(0, spec.limit, endpoint=True)))) % (spec.limit + 1))
    if isinstance(spec, Float):
        return float(pick((0.0, -0.0, -1.0, 1.0, 1e300, -1e300, 5e-324, 2.0**63, float(rng.normal()))))
    if isinstance(spec, Text):
        return pick(("", "flame", "models", "cosine", "updates", "x" * spec.max_len, "\u00e9"))[: spec.max_len]
    if isinstance(spec, Bytes):
        if spec.length is not None:
            return pick((bytes(spec.length), b"\xff" * spec.length, rng.bytes(spec.length)))
        top = spec.max_len if spec.max_len is not None else 4096
        return rng.bytes(pick((0, 1, min(top, 4096), int(rng.integers(0, min(top, 4096) + 1)))))
    return sample_value(spec, name, rng, sizes)


def wild_message(cls: type[Message], rng: np.random.Generator, sizes: Sizes) -> Message:
    """An instance of ``cls`` whose fields are each drawn by :func:`wild_value` or :func:`sample_value`
    (optional ones None at times): one that passes the schema but not what the receiver expects.
    Raises whatever the class's own checks raise (the caller skips those)."""
    values = {}
    for name, spec, optional in field_specs(cls):
        r = rng.random()
        values[name] = None if optional and r < 0.25 else wild_value(spec, name, rng, sizes) if r < 0.7 else sample_value(spec, name, rng, sizes)
    return cls(**values)


def _setup_edge(rng: np.random.Generator, sizes: Sizes, round: int) -> Message:
    return messages.SetupEdge(
        index=1, t=2, n=sizes.n, d=sizes.d, frac_bits=16, tau=0.0, validity_k=40, session=rng.bytes(32),
    )


def _device_upload(rng: np.random.Generator, sizes: Sizes, round: int) -> Message:
    """Device 0's upload to edge node 1 whose leaf 0 matches it (by share or by seed)."""
    mask = int(rng.integers(0, P))
    leaves = [rng.bytes(32) for _ in range(sizes.n)]
    if rng.random() < 0.5:
        share = rng.integers(0, P, size=sizes.d, dtype=np.uint64)
        leaves[0] = share_leaf(round, 0, 1, mask, share=share)
        return messages.DeviceUpload(0, share, None, 0, mask, leaves)
    seed, stream = rng.bytes(32), int(rng.integers(0, 2**32))
    leaves[0] = share_leaf(round, 0, 1, mask, seed=seed, stream=stream)
    return messages.DeviceUpload(0, None, seed, stream, mask, leaves, signature=rng.bytes(64) if rng.random() < 0.5 else None)


REALISTIC: dict[str, Callable[[np.random.Generator, Sizes, int], Message]] = {
    "setup_edge": _setup_edge,
    "device_upload": _device_upload,
}
"""Kind -> a builder of realistic messages ``(rng, sizes, round) -> message`` where the generic one is not enough."""


def corpus_messages(rng: np.random.Generator, sizes: Sizes, round: int, per_kind: int = 2) -> list[Message]:
    """``per_kind`` valid messages of every registered kind (:data:`REALISTIC` or :func:`generic_message`).

    Raises:
        CorpusError: naming every kind that could not be built (and why).
    """
    out, missing = [], []
    for kind, cls in registered_kinds().items():
        build = REALISTIC.get(kind)
        try:
            for _ in range(per_kind):
                out.append(build(rng, sizes, round) if build is not None else generic_message(cls, rng, sizes))
        except Exception as exc:
            missing.append(f"{kind} ({cls.__qualname__}): {type(exc).__name__}: {exc}")
    if missing:
        raise CorpusError(
            "no corpus entry for message kind(s) " + "; ".join(missing)
            + ": add a builder for each to tests/fuzzing.py REALISTIC"
        )
    return out


def corpus(rng: np.random.Generator, sizes: Sizes = Sizes(), *, round: int = 1, per_kind: int = 2,
           senders: tuple[str, ...] = SENDERS) -> list[bytes]:
    """Encoded valid messages of every registered kind (:func:`corpus_messages`), each from a sender
    drawn from ``senders``, in ``round``; every one decodes (checked)."""
    ctx = {"d": sizes.d, "p": P}
    out = []
    for msg in corpus_messages(rng, sizes, round, per_kind):
        data = encode(msg, sender=str(rng.choice(senders)), round=round, context=ctx)
        decode(data, context=ctx)
        out.append(data)
    return out


def wild_source(rng: np.random.Generator, sizes: Sizes, senders: tuple[str, ...], round: int) -> Callable[[], bytes | None]:
    """A source of encoded :func:`wild_message` s of random registered kinds from ``senders`` in
    ``round`` (None when the drawn values break the class's own checks or its encoding)."""
    classes = list(registered_kinds().values())
    context = {"d": sizes.d, "p": P}

    def draw() -> bytes | None:
        cls = classes[int(rng.integers(len(classes)))]
        try:
            msg = wild_message(cls, rng, sizes)
            return encode(msg, sender=senders[int(rng.integers(len(senders)))], round=round, context=context)
        except (MessageError, ValueError, TypeError):
            return None

    return draw


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------

_NAN = float("nan")
EVIL_VALUES: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, -(2**7), 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63),
    0.5, -0.0, _NAN, float("inf"), -float("inf"), 1e308,
    "", "x" * 70, "\u00e9\u00e9", "\x00", "edge-1", "cosine", b"", b"\x00" * 32, b"\xff" * 33, b"x" * 300,
    [], [0], [[[]]], [None], [-1], [2**64 - 1] * 4, {}, {"": 0}, {"dtype": "<u8", "shape": [0], "data": b""},
    msgpack.ExtType(5, b"abc"), msgpack.ExtType(127, b""), msgpack.Timestamp(2**34 - 1, 999_999_999),
)
"""Replacement values of every msgpack type (a Timestamp is ext -1, which the unpacker decodes; malformed
ones are in :data:`HUGE_HEADERS`)."""
EVIL_DTYPES: tuple[Any, ...] = (
    ",", "i8,", "<u8,", "O", "V8", "S8", "U2", "<f2", ">u8", ">f8", "|u1", "b1", "?", "M8[s]", "m8", "<c16",
    "(2,)<u8", "<u8 ", "", "u8", "<i8", "<f8", "<f4", "<u4", "float64", "a" * 100, "\x00", 8, b"<u8", None, ["<u8"],
    {"a": 1}, 1.5, "[('a', '<u8')]", "<u8\x00",
)
EVIL_SHAPES: tuple[list[Any], ...] = (
    [0, 2**62], [2**62, 0], [0, MAX_ARRAY_AXIS], [MAX_ARRAY_AXIS + 1], [2**40, 2**40, 0], [0, 2**64 - 1],
    [2**32, 2**32], [-1], [1.0], [True], ["3"], [None], [], [1] * 64, [0] * 64, [1] * 33, [0, 0], [2**31],
    [2, -2], [MAX_ARRAY_AXIS, MAX_ARRAY_AXIS],
)
HUGE_HEADERS: tuple[bytes, ...] = (
    b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
    b"\xc9\xff\xff\xff\xff\xff", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xc1", b"\xd4\xff\x00", b"\xd7\xff" + b"\xff" * 8, b"\xc7\x0c\xff" + b"\xff" * 12, b"\xd6\xff\xff\xff\xff\xff",
    b"\xdc\xff\xff", b"\xde\xff\xff", b"\xda\xff\xff", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01",
    b"\x91" * 1500 + b"\xc0", b"\x81\xa1a" * 700 + b"\xc0", b"\x90", b"\x80", b"\xc0",
)
"""msgpack fragments: headers claiming 4 GiB, extreme ints, the never-used byte ``0xc1``, odd
timestamps, NaN, nesting deeper than the unpacker's stack."""


_WALK = 16
"""Items of a list the tree walks visit (the first ones; a mutant may hold lists of 2^16 items)."""


def _slots(obj: Any, parent: Any = None, key: Any = None, out: list | None = None) -> list[tuple[Any, Any]]:
    """Every ``(container, key)`` of the unpacked tree (the root as ``(None, None)``; of a list, its
    first :data:`_WALK` items)."""
    out = [] if out is None else out
    out.append((parent, key))
    if isinstance(obj, dict):
        for k in list(obj):
            _slots(obj[k], obj, k, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:_WALK]):
            _slots(v, obj, i, out)
    return out


def _arrays(obj: Any) -> list[dict]:
    """The array maps (``dtype`` / ``shape`` / ``data``) in the tree (lists: as :func:`_slots`)."""
    found = []
    if isinstance(obj, dict):
        if "dtype" in obj and "shape" in obj:
            found.append(obj)
        for v in obj.values():
            found.extend(_arrays(v))
    elif isinstance(obj, list):
        for v in obj[:_WALK]:
            found.extend(_arrays(v))
    return found


class Mutator:
    """Mutants of ``corpus`` (encoded valid messages), all drawn from ``rng``.

    ``kinds``: the registered kinds (for kind confusion). :meth:`next` returns ``(bytes, ops)``:
    a mutant and the names of the 1..4 mutations applied in order.
    """

    def __init__(
        self, corpus: list[bytes], rng: np.random.Generator, kinds: list[str] | None = None, *,
        wild: Callable[[], bytes | None] | None = None, wild_rate: float = 0.15,
    ) -> None:
        if not corpus:
            raise CorpusError("an empty corpus")
        self.corpus = corpus
        self.rng = rng
        self.kinds = kinds if kinds is not None else list(registered_kinds())
        self.wild, self.wild_rate = wild, wild_rate
        self.bodies = [msgpack.unpackb(c, raw=False)["body"] for c in corpus]
        self._byte_ops: list[Callable[[bytes], bytes]] = [
            self.bit_flip, self.set_byte, self.insert, self.delete, self.duplicate, self.truncate,
            self.splice, self.interesting, self.append,
        ]
        self._tree_ops: list[Callable[[Any], Any]] = [
            self.replace_value, self.replace_value, self.array_dtype, self.array_shape, self.array_data,
            self.kind, self.version, self.round, self.sender, self.body_field, self.long_list,
            self.swap_body, self.type_swap, self.wrap,
        ]

    def _int(self, n: int) -> int:
        return int(self.rng.integers(n))

    def _pick(self, seq: Any) -> Any:
        return seq[self._int(len(seq))]

    # -- byte level ------------------------------------------------------------------------------
    def bit_flip(self, b: bytes) -> bytes:
        """Flip 1..8 random bits."""
        out = bytearray(b)
        for _ in range(1 + self._int(8)):
            if out:
                i = self._int(len(out))
                out[i] ^= 1 << self._int(8)
        return bytes(out)

    def set_byte(self, b: bytes) -> bytes:
        """Overwrite one byte with a random or a boundary value."""
        if not b:
            return b
        out = bytearray(b)
        out[self._int(len(out))] = self._pick((0x00, 0xFF, 0x7F, 0x80, 0xC0, 0xC1, 0xC2, 0xDD, 0xDF, self._int(256)))
        return bytes(out)

    def insert(self, b: bytes) -> bytes:
        """Insert 1..16 random bytes."""
        i = self._int(len(b) + 1)
        return b[:i] + self.rng.bytes(1 + self._int(16)) + b[i:]

    def delete(self, b: bytes) -> bytes:
        """Delete a run of 1..32 bytes."""
        if not b:
            return b
        i = self._int(len(b))
        return b[:i] + b[i + 1 + self._int(32):]

    def duplicate(self, b: bytes) -> bytes:
        """Copy a run of the message to another place in it."""
        if not b:
            return b
        i = self._int(len(b))
        run = b[i:i + 1 + self._int(64)]
        j = self._int(len(b) + 1)
        return b[:j] + run + b[j:]

    def truncate(self, b: bytes) -> bytes:
        """Keep a random prefix."""
        return b[: self._int(len(b) + 1)]

    def splice(self, b: bytes) -> bytes:
        """A prefix of this message and a suffix of another corpus message."""
        other = self._pick(self.corpus)
        return b[: self._int(len(b) + 1)] + other[self._int(len(other) + 1):]

    def interesting(self, b: bytes) -> bytes:
        """Overwrite (or insert) a msgpack fragment of :data:`HUGE_HEADERS` at a random offset."""
        frag = self._pick(HUGE_HEADERS)
        i = self._int(len(b) + 1)
        return b[:i] + frag + b[i + (len(frag) if self.rng.random() < 0.5 else 0):]

    def append(self, b: bytes) -> bytes:
        """Trailing bytes after the message (a second msgpack object, or garbage)."""
        return b + self._pick((b"\x00", b"\xc0", self.rng.bytes(1 + self._int(8)), self._pick(self.corpus)[:8]))

    # -- structure level (on the unpacked envelope; each returns the new root) -----------------------
    def replace_value(self, env: Any) -> Any:
        """Replace a random node of the tree by a value of :data:`EVIL_VALUES`."""
        parent, key = self._pick(_slots(env))
        value = self._pick(EVIL_VALUES)
        if parent is None:
            return value
        parent[key] = value
        return env

    def type_swap(self, env: Any) -> Any:
        """Turn a random node into its natural neighbour type (bytes <-> str, int <-> float, list <-> map)."""
        parent, key = self._pick(_slots(env))
        if parent is None:
            return env
        v = parent[key]
        if isinstance(v, bytes):
            parent[key] = v.decode("latin-1")
        elif isinstance(v, str):
            parent[key] = v.encode()
        elif isinstance(v, bool):
            parent[key] = int(v)
        elif isinstance(v, int):
            parent[key] = float(v) if abs(v) < 2**63 else -1
        elif isinstance(v, float):
            parent[key] = int(v) if math.isfinite(v) else True
        elif isinstance(v, list):
            parent[key] = {str(i): x for i, x in enumerate(v)}
        elif isinstance(v, dict):
            parent[key] = list(v.values())
        return env

    def array_dtype(self, env: Any) -> Any:
        """An array map with an odd dtype (struct specs, objects, big-endian, not a string...)."""
        for arr in self._some(_arrays(env)):
            arr["dtype"] = self._pick(EVIL_DTYPES)
        return env

    def array_shape(self, env: Any) -> Any:
        """An array map with a giant, negative, non-int or many-axis shape, mostly with data of the
        length that shape needs (so decoding reaches the reshape)."""
        for arr in self._some(_arrays(env)):
            shape = list(self._pick(EVIL_SHAPES))
            arr["shape"] = shape
            if self.rng.random() < 0.7 and all(type(s) is int and s >= 0 for s in shape):
                need = math.prod(shape) * 8
                if need <= 1 << 16:
                    arr["data"] = bytes(need) if self.rng.random() < 0.5 else b"\xff" * need
        return env

    def array_data(self, env: Any) -> Any:
        """Array data one byte short or long, all ``0xff`` (>= p; NaN for floats), or not bytes."""
        for arr in self._some(_arrays(env)):
            data = arr.get("data")
            n = len(data) if isinstance(data, (bytes, str, list)) else 8
            arr["data"] = self._pick((b"", b"\xff" * n, bytes(n + 1), bytes(max(n - 1, 0)), "x" * n, [0] * min(n, 8), None))
        return env

    def kind(self, env: Any) -> Any:
        """Another registered kind with this body (kind confusion), or an unknown / non-str kind."""
        if isinstance(env, dict):
            env["kind"] = self._pick(self.kinds) if self.rng.random() < 0.7 else self._pick(("", "ack ", "ACK", 1, None, b"ack", "x" * 100))
        return env

    def version(self, env: Any) -> Any:
        """A wrong version: off by one, 0, negative, huge, or not an int."""
        if isinstance(env, dict):
            v = env.get("v", 1)
            v = v if type(v) is int else 1
            env["v"] = self._pick((v + 1, v - 1, 0, -1, 2**64 - 1, -(2**63), "1", 1.0, True, None))
        return env

    def round(self, env: Any) -> Any:
        """A round that is negative, 2^63 or more, a bool, a float, a string."""
        if isinstance(env, dict):
            env["round"] = self._pick((-1, 2**63, 2**63 - 1, 2**64 - 1, True, 1.5, "1", None, 0, 2))
        return env

    def sender(self, env: Any) -> Any:
        """A sender that is empty, too long, not a str, or another party."""
        if isinstance(env, dict):
            env["sender"] = self._pick(("", "x" * 65, "x" * 64, 7, None, b"edge-1", "\x00", "\u00e9" * 10, *SENDERS))
        return env

    def body_field(self, env: Any) -> Any:
        """Remove a body field, set it to None, or add an unknown one."""
        body = env.get("body") if isinstance(env, dict) else None
        if not isinstance(body, dict):
            return env
        choice = self._int(3)
        if choice == 0 and body:
            del body[self._pick(list(body))]
        elif choice == 1 and body:
            body[self._pick(list(body))] = None
        else:
            body[self._pick(("extra", "", "v", "x" * 200))] = self._pick(EVIL_VALUES)
        return env

    def long_list(self, env: Any) -> Any:
        """A list field made longer than its limit (2^16 + 1 items), or nested lists."""
        lists = [(p, k) for p, k in _slots(env) if p is not None and isinstance(p[k], list)]
        if not lists:
            return env
        parent, key = self._pick(lists)
        item = parent[key][0] if parent[key] else 0
        r = self.rng.random()
        if r < 0.15:  # over the devices' limit 2^16 (costly to pack: rarer)
            parent[key] = [item] * ((1 << 16) + 1) if not isinstance(item, (bytes, list, dict)) or len(item) <= 32 else [item] * 1025
        elif r < 0.5:  # over the nodes' limit 1024
            parent[key] = [item] * 1025
        else:
            parent[key] = [parent[key]] * 3
        return env

    def swap_body(self, env: Any) -> Any:
        """This envelope with another corpus message's body (or a field from it)."""
        if isinstance(env, dict):
            other = self._pick(self.bodies)
            if self.rng.random() < 0.5 or not isinstance(env.get("body"), dict) or not other:
                env["body"] = dict(other)
            else:
                name = self._pick(list(other))
                env["body"][name] = other[name]
        return env

    def wrap(self, env: Any) -> Any:
        """The envelope inside a list, a map or a map with a non-str key."""
        return self._pick(([env], {"body": env}, {1: env}, {b"v": env}, [env, env]))

    def _some(self, items: list) -> list:
        if not items:
            return []
        return [self._pick(items)] if self.rng.random() < 0.8 else items

    # -- driver ----------------------------------------------------------------------------------
    def _tree(self, data: bytes, op: Callable[[Any], Any]) -> bytes | None:
        try:
            env = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:
            return None
        try:
            return msgpack.packb(op(env), use_bin_type=True)
        except (ValueError, TypeError, OverflowError):  # e.g. an int msgpack cannot hold
            return None

    def next(self) -> tuple[bytes, list[str]]:
        """One mutant of a random corpus entry, and the mutations applied."""
        if self.wild is not None and self.rng.random() < self.wild_rate:
            fresh = self.wild()
            if fresh is not None:
                if self.rng.random() < 0.7:  # as it is: it decodes
                    return fresh, ["wild"]
                data, ops = fresh, ["wild"]
            else:
                data, ops = self._pick(self.corpus), []
        else:
            data, ops = self._pick(self.corpus), []
        for _ in range(1 + min(int(self.rng.geometric(0.55)) - 1, 3)):
            if self.rng.random() < 0.55:
                op = self._pick(self._tree_ops)
                mutated = self._tree(data, op)
                if mutated is not None:
                    data = mutated
                    ops.append(op.__name__)
                    continue
            byte_op = self._pick(self._byte_ops)
            data = byte_op(data)
            ops.append(byte_op.__name__)
        return data, ops


# ---------------------------------------------------------------------------------------------
# outcomes
# ---------------------------------------------------------------------------------------------


def reason_class(error: MessageError) -> str:
    """A short class of a :class:`MessageError`: its field (envelope fields by name, body fields as
    ``field``) and the start of its reason with numbers and quoted values blanked."""
    where = error.field if error.field in _ENVELOPE_FIELDS else "field"
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|b'[^']*'", "'_'", error.reason)
    reason = re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "N", reason)
    reason = re.split(r"[:(]", reason, maxsplit=1)[0].strip()
    return f"{where}: {' '.join(reason.split()[:5])}"


def decode_outcome(data: bytes, context: Mapping[str, Any]) -> str:
    """``"decoded <kind>"`` or ``"MessageError <reason class>"`` for ``data``; a decoded message must
    re-encode (same sender, round, context) and decode again to the same kind. Any other exception
    propagates."""
    try:
        env = decode(data, context=context)
    except MessageError as error:
        return f"MessageError {reason_class(error)}"
    again = decode(encode(env.message, sender=env.sender, round=env.round, context=context), context=context)
    assert type(again.message) is type(env.message) and again.round == env.round and again.sender == env.sender
    return f"decoded {type(env.message).KIND}"


@contextmanager
def wall_clock_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` (SIGALRM; the main thread only, else no limit).
    It interrupts Python code; a C call that never returns cannot be interrupted this way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Finding:
    """An input whose decode raised something other than MessageError (or hung)."""

    index: int
    ops: list[str]
    data: bytes
    error: str
    trace: str

    def describe(self, seed: int) -> str:
        """Everything needed to reproduce it: seed, index, mutations, the input's hex, the traceback."""
        return (
            f"seed {seed}, mutant #{self.index} ({' > '.join(self.ops)}): {self.error}\n"
            f"input ({len(self.data)} bytes) hex: {self.data.hex()}\n{self.trace}"
        )


@dataclass
class FuzzReport:
    """What :func:`fuzz_decode` saw: outcome -> count, the untyped findings, the slowest decode."""

    seed: int
    count: int = 0
    outcomes: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    slowest: float = 0.0
    slowest_ops: list[str] = field(default_factory=list)
    slowest_size: int = 0
    seconds: float = 0.0

    @property
    def decoded(self) -> int:
        """Mutants that decoded to a valid message."""
        return sum(n for k, n in self.outcomes.items() if k.startswith("decoded"))

    @property
    def rejected(self) -> int:
        """Mutants refused with a MessageError."""
        return sum(n for k, n in self.outcomes.items() if k.startswith("MessageError"))

    def summary(self) -> str:
        """A few lines for a log: totals, rate, slowest decode, the commonest outcomes."""
        lines = [
            f"seed {self.seed}: {self.count} mutants in {self.seconds:.1f} s ({self.count / max(self.seconds, 1e-9):,.0f}/s): "
            f"{self.decoded} decoded, {self.rejected} MessageError, {len(self.findings)} untyped; "
            f"slowest decode {self.slowest * 1e3:.2f} ms ({self.slowest_size} bytes, {' > '.join(self.slowest_ops)})",
        ]
        return "\n".join(lines)


def fuzz_decode(
    seed: int, count: int, *, sizes: Sizes = Sizes(), hang_s: float = 5.0, max_findings: int = 50,
    outcome_of: Callable[[bytes, Mapping[str, Any]], str] = decode_outcome,
) -> FuzzReport:
    """Decode ``count`` mutants of a fresh corpus (all drawn from ``numpy.random.default_rng(seed)``)
    with the context ``{"d": sizes.d, "p": P}`` through ``outcome_of`` (:func:`decode_outcome`); each
    runs under a ``hang_s`` wall-clock limit. Untyped exceptions and hangs are collected (up to
    ``max_findings``), not raised."""
    rng = np.random.default_rng(seed)
    mutator = Mutator(corpus(rng, sizes), rng, wild=wild_source(rng, sizes, SENDERS, 1))
    context = {"d": sizes.d, "p": P}
    report = FuzzReport(seed)
    start = time.perf_counter()
    for index in range(count):
        data, ops = mutator.next()
        tick = time.perf_counter()
        try:
            with wall_clock_limit(hang_s):
                outcome = outcome_of(data, context)
        except Exception as exc:
            outcome = f"untyped {type(exc).__name__}"
            if len(report.findings) < max_findings:
                report.findings.append(Finding(index, ops, data, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        took = time.perf_counter() - tick
        if took > report.slowest:
            report.slowest, report.slowest_ops, report.slowest_size = took, ops, len(data)
        report.outcomes[outcome] += 1
        report.count += 1
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------------------------------------
# a live edge node over gRPC
# ---------------------------------------------------------------------------------------------


def ppbfl_error_names() -> set[str]:
    """Class names of every :class:`~ppbfl.errors.PPBFLError` subclass defined so far: the typed errors."""
    names, todo = set(), [PPBFLError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


@dataclass
class LiveReport:
    """What :func:`fuzz_live` saw: answer -> count, the mutants not sent, the slowest answer."""

    seed: int
    count: int = 0
    outcomes: Counter = field(default_factory=Counter)
    skipped: int = 0
    slowest: float = 0.0
    seconds: float = 0.0

    def summary(self, target: str) -> str:
        """One line for a log."""
        return (
            f"seed {self.seed}: {self.count} mutants at {target} in {self.seconds:.1f} s ({self.count / max(self.seconds, 1e-9):,.0f}/s), "
            f"slowest answer {self.slowest * 1e3:.0f} ms, {self.skipped} valid setup / later-round coordinator messages "
            f"not sent: {dict(self.outcomes.most_common())}"
        )


def changes_the_tier(data: bytes, context: Mapping[str, Any], after: int) -> bool:
    """Whether ``data`` is what the coordinator may legitimately send to re-key an edge node or move
    it on (a valid setup, or a valid message for a round after ``after``): the relay's own powers,
    which change what the next round finds; :func:`fuzz_live` does not send those."""
    try:
        env = decode(data, expected_sender=COORDINATOR_PARTY, context=context)
    except MessageError:
        return False
    return isinstance(env.message, messages.SetupEdge) or env.round > after


def live_outcome(transport: Any, target: str, data: bytes, context: Mapping[str, Any], typed: set[str], timeout: float) -> str:
    """``target``'s answer to ``data`` sent through ``transport`` (``call_bytes``): ``"reply <kind>"``
    (a reply that decodes) or the typed error. Raises AssertionError for an untyped remote error;
    a reply that does not decode (MessageError) or no answer within ``timeout`` (PeerUnavailableError)
    propagates."""
    try:
        reply = transport.call_bytes(target, data, timeout=timeout)
    except RemoteError as error:
        if error.remote_type not in typed:
            raise AssertionError(f"untyped error at {target}: {error}") from None
        return f"RemoteError {error.remote_type}"
    except PeerAuthError:
        return "PeerAuthError"
    env = decode(reply, expected_sender=target, context=context)
    return f"reply {env.message.KIND}"


def fuzz_live(
    transports: Mapping[str, Any], target: str, seed: int, count: int, *, sizes: Sizes, rounds: Mapping[str, int],
    done_round: int, timeout: float = 10.0,
) -> LiveReport:
    """Send ``count`` mutants to edge node ``target``, alternating between the parties of
    ``transports`` (party -> its own transport to ``target``); party ``p``'s mutants derive from a
    corpus and wild messages of ``p`` in round ``rounds[p]``. The coordinator's mutants that
    :func:`changes_the_tier` after ``done_round`` are drawn again (counted as skipped). Every answer
    goes through :func:`live_outcome`; the first failure raises AssertionError with the seed, the
    mutant's index, its mutations and its hex."""
    rng = np.random.default_rng(seed)
    context = {"d": sizes.d, "p": P}
    typed = ppbfl_error_names()
    mutators = {
        party: Mutator(corpus(rng, sizes, round=rounds[party], senders=(party,)), rng,
                       wild=wild_source(rng, sizes, (party,), rounds[party]), wild_rate=0.3)
        for party in transports
    }
    parties = list(transports)
    report = LiveReport(seed)
    start = time.perf_counter()
    for index in range(count):
        party = parties[index % len(parties)]
        data, ops = mutators[party].next()
        while party == COORDINATOR_PARTY and changes_the_tier(data, context, done_round):
            report.skipped += 1
            data, ops = mutators[party].next()
        tick = time.perf_counter()
        try:
            outcome = live_outcome(transports[party], target, data, context, typed, timeout)
        except Exception as exc:
            raise AssertionError(
                f"seed {seed}, live mutant #{index} from {party} ({' > '.join(ops)}): {type(exc).__name__}: {exc}\n"
                f"input ({len(data)} bytes) hex: {data.hex()}"
            ) from exc
        report.slowest = max(report.slowest, time.perf_counter() - tick)
        report.outcomes[outcome] += 1
        report.count += 1
    report.seconds = time.perf_counter() - start
    return report
