"""Versioned, schema-checked protocol messages on msgpack.

A message is a frozen dataclass subclassing :class:`Message` with a ``KIND`` and a ``VERSION``,
registered with :func:`register`; every field carries its wire spec as ``typing.Annotated``
metadata::

    @register
    @dataclass(frozen=True)
    class ShareUpload(Message):
        KIND: ClassVar[str] = "share-upload"
        VERSION: ClassVar[int] = 1
        shares: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]   # (d,) uint64 in [0, p)
        seed: Annotated[Optional[bytes], Bytes(length=32)]               # None allowed
        weight: Annotated[float, Float()]

Wire format (see ``docs/protocol.md``): one msgpack map
``{"v": VERSION, "kind": KIND, "sender": str, "round": int, "body": {field: value}}``; arrays are
maps ``{"dtype": "<u8", "shape": [..], "data": <raw little-endian bytes>}``.

:func:`decode` validates everything a peer controls, in this order: size limit, msgpack
well-formedness, envelope keys, sender (against the TLS identity when given), kind (registered, and
expected), version, round, the exact field set, then each field's type, dtype, ndim, shape
(context-bound lengths such as ``"d"``), range (``< p`` for field arrays, finite for floats). Any
failure is a :class:`~ppbfl.protocol.errors.MessageError` naming the party and the field.

Decoded arrays are zero-copy views of the received bytes and therefore **read-only**
(``arr.flags.writeable`` is False); copy one (``arr.copy()``) before modifying it in place.
Decoded :class:`ListOf` values are tuples.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Union

import msgpack
import numpy as np

from ppbfl.field import MERSENNE61
from ppbfl.protocol.errors import MessageError, SchemaError

__all__ = [
    "DEFAULT_P",
    "MAX_MESSAGE_BYTES",
    "Array",
    "Bool",
    "Bytes",
    "Envelope",
    "FieldArray",
    "Float",
    "ListOf",
    "Message",
    "Spec",
    "Text",
    "UInt",
    "decode",
    "encode",
    "message_class",
    "register",
]

#: default limit on an encoded message (bytes); both encode and decode enforce it
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_ARRAY_AXIS = MAX_MESSAGE_BYTES
"""Longest axis a received array may declare: no message holds more elements (an empty array
with a huge axis, e.g. shape ``[0, 2^62]``, would otherwise overflow NumPy's strides)."""
#: the field modulus used for FieldArray range checks when neither spec nor context gives one
DEFAULT_P = MERSENNE61
_MAX_ID_LEN = 64
_ENVELOPE_KEYS = ("v", "kind", "sender", "round", "body")
_ARRAY_KEYS = frozenset(("dtype", "shape", "data"))


class _Bad(Exception):
    """Internal: one field is bad. Turned into a MessageError (with the party) at the top level."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason
        self.party: str | None = None  # the claimed sender, once the envelope got that far


def _type_name(value: Any) -> str:
    return type(value).__name__


def _dtype_name(dtype: Any) -> str:
    """``'<u4' -> 'uint32'`` for a readable error; anything unparseable is shown as given."""
    if isinstance(dtype, str) and len(dtype) <= 8:
        try:
            return np.dtype(dtype).name
        except (TypeError, ValueError, SyntaxError):  # numpy parses "," and "i8," as struct specs
            pass
    return repr(dtype)


def _resolve(constraint: int | str | None, context: Mapping[str, Any]) -> int | None:
    """An int constraint, a context-bound one (``"d"`` -> ``context["d"]`` if present), or None."""
    if isinstance(constraint, str):
        value = context.get(constraint)
        return None if value is None else int(value)
    return constraint


# ---------------------------------------------------------------------------------------------
# field specs
# ---------------------------------------------------------------------------------------------


class Spec:
    """Base of the field specs. ``to_wire`` checks a local value; ``from_wire`` a received one."""

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> Any:
        """Check ``value`` and return its msgpack-able form; raises ``_Bad(field, reason)``."""
        raise NotImplementedError

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> Any:
        """Check the unpacked ``raw`` and return the Python value; raises ``_Bad(field, reason)``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class UInt(Spec):
    """A Python ``int`` in ``[0, 2**bits)``, or in ``[0, max]`` when ``max`` is given."""

    bits: int = 64
    max: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 64:
            raise SchemaError(f"UInt(bits={self.bits}): bits must be in [1, 64]")
        if self.max is not None and not 0 <= self.max < 2**self.bits:
            raise SchemaError(f"UInt(max={self.max}): max must be in [0, 2**{self.bits})")

    @property
    def limit(self) -> int:
        """The largest allowed value."""
        return self.max if self.max is not None else 2**self.bits - 1

    def _check(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(field, f"expected int, got {_type_name(value)}")
        if not 0 <= value <= self.limit:
            raise _Bad(field, f"value {value} is not in [0, {self.limit}]")
        return value

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> int:
        if isinstance(value, np.integer):
            value = int(value)
        return self._check(value, field)

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> int:
        return self._check(raw, field)


@dataclass(frozen=True, kw_only=True)
class Float(Spec):
    """A finite Python ``float`` (ints and NumPy floats are accepted when sending)."""

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> float:
        if isinstance(value, (int, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            value = float(value)
        return self.from_wire(value, field, context)

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> float:
        if type(raw) is not float:
            raise _Bad(field, f"expected float, got {_type_name(raw)}")
        if not math.isfinite(raw):
            raise _Bad(field, f"value {raw!r} is not finite")
        return raw


@dataclass(frozen=True, kw_only=True)
class Bool(Spec):
    """A Python ``bool``."""

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> bool:
        if isinstance(value, np.bool_):
            value = bool(value)
        return self.from_wire(value, field, context)

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> bool:
        if type(raw) is not bool:
            raise _Bad(field, f"expected bool, got {_type_name(raw)}")
        return raw


@dataclass(frozen=True, kw_only=True)
class Text(Spec):
    """A ``str`` of at most ``max_len`` characters."""

    max_len: int = 1024

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> str:
        return self.from_wire(value, field, context)

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> str:
        if type(raw) is not str:
            raise _Bad(field, f"expected str, got {_type_name(raw)}")
        if len(raw) > self.max_len:
            raise _Bad(field, f"text of {len(raw)} characters, at most {self.max_len} allowed")
        return raw


@dataclass(frozen=True, kw_only=True)
class Bytes(Spec):
    """``bytes`` of exactly ``length`` bytes, or at most ``max_len`` (``bytearray`` accepted when sending)."""

    length: int | None = None
    max_len: int | None = None

    def __post_init__(self) -> None:
        if self.length is not None and self.max_len is not None:
            raise SchemaError("Bytes: give length or max_len, not both")

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> bytes:
        if isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        return self.from_wire(value, field, context)

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> bytes:
        if type(raw) is not bytes:
            raise _Bad(field, f"expected bytes, got {_type_name(raw)}")
        if self.length is not None and len(raw) != self.length:
            raise _Bad(field, f"{len(raw)} bytes, expected exactly {self.length}")
        if self.max_len is not None and len(raw) > self.max_len:
            raise _Bad(field, f"{len(raw)} bytes, at most {self.max_len} allowed")
        return raw


@dataclass(frozen=True, kw_only=True)
class Array(Spec):
    """A NumPy array of ``dtype`` (integer or float kinds, little-endian on the wire) and ``ndim``.

    ``shape``: per-axis constraints, each an int, a context key (``"d"``: must equal
    ``context["d"]`` when the decode context has it) or None; ``length``: shorthand for
    ``shape=(length,)`` when ``ndim == 1``. Float arrays must be finite unless ``finite=False``.
    """

    dtype: str = "<f8"
    ndim: int = 1
    length: int | str | None = None
    shape: tuple[int | str | None, ...] | None = None
    finite: bool = True

    def __post_init__(self) -> None:
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            raise SchemaError(f"Array: unknown dtype {self.dtype!r}") from None
        if dt.kind not in "iuf":
            raise SchemaError(f"Array: dtype {dt} is not an integer or float dtype")
        object.__setattr__(self, "_dt", dt.newbyteorder("<"))
        if self.ndim < 1:
            raise SchemaError(f"Array: ndim must be >= 1, got {self.ndim}")
        if self.length is not None:
            if self.ndim != 1 or self.shape is not None:
                raise SchemaError("Array: length= is only for ndim=1 without shape=")
            object.__setattr__(self, "shape", (self.length,))
        if self.shape is not None and len(self.shape) != self.ndim:
            raise SchemaError(f"Array: shape constraint {self.shape} does not have ndim={self.ndim} axes")

    @property
    def wire_dtype(self) -> np.dtype:
        """The little-endian dtype the array travels as."""
        return self._dt  # type: ignore[attr-defined]

    def _check_shape(self, shape: tuple[int, ...], field: str, context: Mapping[str, Any]) -> None:
        if len(shape) != self.ndim:
            raise _Bad(field, f"ndim {len(shape)}, expected {self.ndim}")
        for axis, (got, constraint) in enumerate(zip(shape, self.shape or (None,) * self.ndim)):
            want = _resolve(constraint, context)
            if want is not None and got != want:
                via = f" (context {constraint!r})" if isinstance(constraint, str) else ""
                raise _Bad(field, f"shape {shape}: axis {axis} has length {got}, expected {want}{via}")

    def _check_values(self, arr: np.ndarray, field: str, context: Mapping[str, Any]) -> None:
        if self.finite and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            index = tuple(int(i) for i in np.unravel_index(int(np.argmin(np.isfinite(arr))), arr.shape))
            raise _Bad(field, f"element {list(index)} = {float(arr[index])!r} is not finite")

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> dict:
        if not isinstance(value, np.ndarray):
            raise _Bad(field, f"expected numpy array, got {_type_name(value)}")
        if value.dtype != self.wire_dtype:
            raise _Bad(field, f"dtype {value.dtype.name}, expected {self.wire_dtype.name}")
        self._check_shape(value.shape, field, context)
        self._check_values(value, field, context)
        flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        return {"dtype": self.wire_dtype.str, "shape": list(value.shape), "data": flat.data}

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> np.ndarray:
        if type(raw) is not dict or raw.keys() != _ARRAY_KEYS:
            raise _Bad(field, "expected an array map with keys dtype, shape, data")
        dtype, shape, data = raw["dtype"], raw["shape"], raw["data"]
        if dtype != self.wire_dtype.str:
            raise _Bad(field, f"dtype {_dtype_name(dtype)}, expected {self.wire_dtype.name}")
        if type(shape) is not list or not all(type(s) is int and 0 <= s <= MAX_ARRAY_AXIS for s in shape):
            raise _Bad(field, f"shape {shape!r} is not a list of ints in [0, {MAX_ARRAY_AXIS}]")
        shape = tuple(shape)
        self._check_shape(shape, field, context)
        if type(data) is not bytes:
            raise _Bad(field, f"array data is {_type_name(data)}, expected bytes")
        need = math.prod(shape) * self.wire_dtype.itemsize
        if len(data) != need:
            raise _Bad(field, f"array data is {len(data)} bytes, shape {shape} of {self.wire_dtype.name} needs {need}")
        try:
            arr = np.frombuffer(data, dtype=self.wire_dtype).reshape(shape)
        except ValueError as error:  # e.g. an empty array whose other axes overflow NumPy's strides
            raise _Bad(field, f"shape {list(shape)}: {error}") from None
        arr.flags.writeable = False  # already so (bytes-backed); stated for the reader
        self._check_values(arr, field, context)
        return arr


@dataclass(frozen=True, kw_only=True)
class FieldArray(Array):
    """A ``uint64`` array of field elements, every one ``< p``.

    ``p``: fixed modulus; when None, ``context["p"]`` if given, else :data:`DEFAULT_P` (2^61 - 1).
    Shape constraints as for :class:`Array`.
    """

    dtype: str = "<u8"
    p: int | None = None

    def __post_init__(self) -> None:
        if np.dtype(self.dtype) != np.dtype("<u8"):
            raise SchemaError(f"FieldArray: dtype is always uint64, got {self.dtype!r}")
        if self.p is not None and not 2 <= self.p <= 2**64:
            raise SchemaError(f"FieldArray: p = {self.p} is not in [2, 2**64]")
        super().__post_init__()

    def _check_values(self, arr: np.ndarray, field: str, context: Mapping[str, Any]) -> None:
        p = self.p if self.p is not None else int(context.get("p", DEFAULT_P))
        if arr.size and p <= 2**64 - 1 and int(arr.max()) >= p:
            index = tuple(int(i) for i in np.unravel_index(int(np.argmax(arr >= np.uint64(p))), arr.shape))
            raise _Bad(field, f"element {list(index)} = {int(arr[index])} is not < p = {p}")


@dataclass(frozen=True)
class ListOf(Spec):
    """A list of values of ``spec`` (decoded as a tuple; a list or tuple is accepted when sending).

    ``max_len`` bounds its length; ``length`` fixes it (an int or a context key such as ``"n"``).
    """

    spec: Spec
    max_len: int | None = None
    length: int | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spec, Spec):
            raise SchemaError(f"ListOf: {self.spec!r} is not a field spec")

    def _check_len(self, n: int, field: str, context: Mapping[str, Any]) -> None:
        if self.max_len is not None and n > self.max_len:
            raise _Bad(field, f"list of {n} items, at most {self.max_len} allowed")
        want = _resolve(self.length, context)
        if want is not None and n != want:
            raise _Bad(field, f"list of {n} items, expected {want}")

    def to_wire(self, value: Any, field: str, context: Mapping[str, Any]) -> list:
        if not isinstance(value, (list, tuple)):
            raise _Bad(field, f"expected list or tuple, got {_type_name(value)}")
        self._check_len(len(value), field, context)
        return [self.spec.to_wire(v, f"{field}[{i}]", context) for i, v in enumerate(value)]

    def from_wire(self, raw: Any, field: str, context: Mapping[str, Any]) -> tuple:
        if type(raw) is not list:
            raise _Bad(field, f"expected list, got {_type_name(raw)}")
        self._check_len(len(raw), field, context)
        return tuple(self.spec.from_wire(v, f"{field}[{i}]", context) for i, v in enumerate(raw))


# ---------------------------------------------------------------------------------------------
# messages and the registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """Base of every protocol message: a frozen dataclass with a ``KIND`` and a ``VERSION``."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1


@dataclass(frozen=True)
class _FieldSchema:
    name: str
    spec: Spec
    optional: bool


_REGISTRY: dict[str, type[Message]] = {}
_SCHEMAS: dict[type[Message], tuple[_FieldSchema, ...]] = {}


def _field_schema(cls: type, name: str, hint: Any) -> _FieldSchema:
    optional = False
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):  # Optional[Annotated[X, spec]]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else hint
    if typing.get_origin(hint) is not typing.Annotated:
        raise SchemaError(f"{cls.__name__}.{name}: annotate the field as Annotated[<type>, <spec>]")
    specs = [m for m in hint.__metadata__ if isinstance(m, Spec)]
    if len(specs) != 1:
        raise SchemaError(f"{cls.__name__}.{name}: expected exactly one wire spec, found {len(specs)}")
    inner = typing.get_args(hint)[0]
    if typing.get_origin(inner) in (Union, types.UnionType) and type(None) in typing.get_args(inner):
        optional = True  # Annotated[Optional[X], spec]
    return _FieldSchema(name, specs[0], optional)


def register(cls: type[Message]) -> type[Message]:
    """Class decorator: add a frozen dataclass ``Message`` subclass to the registry (kind -> class).

    Put it above ``@dataclass(frozen=True)``. Raises SchemaError for a duplicate or empty ``KIND``,
    a bad ``VERSION``, or a field without exactly one spec in its ``Annotated`` metadata.
    """
    if not (isinstance(cls, type) and issubclass(cls, Message) and "__dataclass_fields__" in cls.__dict__):
        raise SchemaError(f"{cls!r}: register a @dataclass(frozen=True) subclass of Message")
    if not isinstance(cls.KIND, str) or not cls.KIND:
        raise SchemaError(f"{cls.__name__}: KIND must be a non-empty str")
    if type(cls.VERSION) is not int or cls.VERSION < 1:
        raise SchemaError(f"{cls.__name__}: VERSION must be an int >= 1")
    if cls.KIND in _REGISTRY:
        raise SchemaError(f"message kind {cls.KIND!r} is already registered by {_REGISTRY[cls.KIND].__qualname__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    schema = tuple(_field_schema(cls, f.name, hints[f.name]) for f in dataclasses.fields(cls))
    _REGISTRY[cls.KIND] = cls
    _SCHEMAS[cls] = schema
    return cls


def message_class(kind: str) -> type[Message]:
    """The registered class of ``kind`` (KeyError if none)."""
    return _REGISTRY[kind]


@dataclass(frozen=True)
class Envelope:
    """A validated received message: the (checked) ``sender`` id, the ``round`` and the ``message``."""

    sender: str
    round: int
    message: Message


# ---------------------------------------------------------------------------------------------
# encode / decode
# ---------------------------------------------------------------------------------------------


def _check_id(sender: Any, field: str) -> str:
    if type(sender) is not str or not 1 <= len(sender) <= _MAX_ID_LEN:
        raise _Bad(field, f"expected a party id (str of 1..{_MAX_ID_LEN} characters), got {sender!r:.80}")
    return sender


def _check_round(rnd: Any) -> int:
    if isinstance(rnd, bool) or not isinstance(rnd, int) or not 0 <= rnd < 2**63:
        raise _Bad("round", f"expected an int in [0, 2**63), got {rnd!r:.80}")
    return rnd


def encode(
    msg: Message,
    *,
    sender: str,
    round: int,
    context: Mapping[str, Any] | None = None,
    max_size: int = MAX_MESSAGE_BYTES,
) -> bytes:
    """Encode ``msg`` from ``sender`` in ``round`` to msgpack bytes, checking it against its schema.

    The same checks as :func:`decode` apply to the local values (so a party cannot send what its
    peers would reject); a failure is a :class:`MessageError` naming ``sender`` and the field.
    """
    cls = type(msg)
    if _REGISTRY.get(getattr(cls, "KIND", "")) is not cls:
        raise SchemaError(f"{cls.__qualname__} is not a registered message class")
    ctx = context or {}
    if isinstance(round, np.integer):
        round = int(round)
    try:
        _check_id(sender, "sender")
        _check_round(round)
        body: dict[str, Any] = {}
        for f in _SCHEMAS[cls]:
            value = getattr(msg, f.name)
            if value is None:
                if not f.optional:
                    raise _Bad(f.name, "None is not allowed for a required field")
                body[f.name] = None
            else:
                body[f.name] = f.spec.to_wire(value, f.name, ctx)
    except _Bad as bad:
        raise MessageError(sender if isinstance(sender, str) else None, bad.field, bad.reason) from None
    data = msgpack.packb(
        {"v": cls.VERSION, "kind": cls.KIND, "sender": sender, "round": round, "body": body},
        use_bin_type=True,
    )
    if len(data) > max_size:
        raise MessageError(sender, "<bytes>", f"message is {len(data)} bytes, more than the limit {max_size}")
    return data


def decode(
    data: bytes,
    *,
    expected_sender: str | None = None,
    expected_round: int | None = None,
    expected_kind: type[Message] | tuple[type[Message], ...] | None = None,
    context: Mapping[str, Any] | None = None,
    max_size: int = MAX_MESSAGE_BYTES,
) -> Envelope:
    """Decode and validate received bytes (order and rules: module docstring).

    ``expected_sender``: the TLS-authenticated peer id; a message claiming another sender is
    rejected (field ``"sender"``). ``expected_round`` / ``expected_kind``: checked when given.
    ``context``: values for context-bound constraints (``"p"``, ``"d"``, ...). Every failure is a
    :class:`MessageError` naming the party (the authenticated id if given, else the claimed one)
    and the field; nothing else escapes for any input bytes.
    """
    try:
        return _decode(data, expected_sender, expected_round, expected_kind, context or {}, max_size)
    except _Bad as bad:
        party = expected_sender if expected_sender is not None else bad.party
        raise MessageError(party, bad.field, bad.reason) from None


def _decode(
    data: Any,
    expected_sender: str | None,
    expected_round: int | None,
    expected_kind: type | tuple | None,
    ctx: Mapping[str, Any],
    max_size: int,
) -> Envelope:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _Bad("<bytes>", f"expected bytes, got {_type_name(data)}")
    if len(data) > max_size:
        raise _Bad("<bytes>", f"message is {len(data)} bytes, more than the limit {max_size}")
    try:
        env = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise _Bad("<bytes>", f"not a valid msgpack message ({type(exc).__name__}: {exc})") from None
    if type(env) is not dict:
        raise _Bad("<envelope>", f"expected a map, got {_type_name(env)}")
    for key in _ENVELOPE_KEYS:
        if key not in env:
            raise _Bad(key, "missing from the envelope")
    for key in env:
        if key not in _ENVELOPE_KEYS:
            raise _Bad(str(key)[:80], "unexpected envelope field")

    sender = _check_id(env["sender"], "sender")
    if expected_sender is not None and sender != expected_sender:
        raise _Bad("sender", f"claims to be {sender!r}, but the channel authenticated {expected_sender!r}")
    try:
        return _decode_body(env, sender, expected_round, expected_kind, ctx)
    except _Bad as bad:
        bad.party = sender
        raise


def _decode_body(
    env: dict, sender: str, expected_round: int | None, expected_kind: type | tuple | None, ctx: Mapping[str, Any]
) -> Envelope:
    kind = env["kind"]
    if type(kind) is not str or kind not in _REGISTRY:
        raise _Bad("kind", f"unknown message kind {kind!r:.80}")
    cls = _REGISTRY[kind]
    if expected_kind is not None:
        allowed = expected_kind if isinstance(expected_kind, tuple) else (expected_kind,)
        if cls not in allowed:
            raise _Bad("kind", f"kind {kind!r}, expected {' or '.join(repr(c.KIND) for c in allowed)}")
    if type(env["v"]) is not int or env["v"] != cls.VERSION:
        raise _Bad("v", f"version {env['v']!r:.40} of kind {kind!r}, expected {cls.VERSION}")
    rnd = _check_round(env["round"])
    if expected_round is not None and rnd != expected_round:
        raise _Bad("round", f"round {rnd}, expected {expected_round}")

    body = env["body"]
    if type(body) is not dict:
        raise _Bad("body", f"expected a map, got {_type_name(body)}")
    schema = _SCHEMAS[cls]
    for f in schema:
        if f.name not in body:
            raise _Bad(f.name, "missing")
    names = {f.name for f in schema}
    for key in body:
        if key not in names:
            raise _Bad(str(key)[:80], f"unexpected field for kind {kind!r}")
    values: dict[str, Any] = {}
    for f in schema:
        raw = body[f.name]
        if raw is None:
            if not f.optional:
                raise _Bad(f.name, "None is not allowed for a required field")
            values[f.name] = None
        else:
            values[f.name] = f.spec.from_wire(raw, f.name, ctx)
    try:
        msg = cls(**values)
    except (ValueError, TypeError) as exc:  # the class's own __post_init__ checks
        raise _Bad("<body>", f"{kind} rejected its fields: {exc}") from None
    return Envelope(sender=sender, round=rnd, message=msg)
