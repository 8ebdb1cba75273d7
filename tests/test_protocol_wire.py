"""Wire format: round trips for every field spec, and every kind of bad input -> MessageError."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, ClassVar, Optional

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppbfl.field import MERSENNE61
from ppbfl.protocol.errors import MessageError, SchemaError
from ppbfl.protocol.wire import (
    Array,
    Bool,
    Bytes,
    FieldArray,
    Float,
    ListOf,
    Message,
    Text,
    UInt,
    decode,
    encode,
    register,
)

P = MERSENNE61


@register
@dataclass(frozen=True, eq=False)
class AllKinds(Message):
    KIND: ClassVar[str] = "test.wire.all-kinds"
    VERSION: ClassVar[int] = 2
    u64: Annotated[int, UInt(bits=64)]
    small: Annotated[int, UInt(max=1000)]
    x: Annotated[float, Float()]
    flag: Annotated[bool, Bool()]
    name: Annotated[str, Text(max_len=32)]
    seed: Annotated[bytes, Bytes(length=32)]
    blob: Annotated[bytes, Bytes(max_len=100)]
    shares: Annotated[np.ndarray, FieldArray(ndim=1)]
    matrix: Annotated[np.ndarray, FieldArray(ndim=2)]
    weights: Annotated[np.ndarray, Array(dtype="<f8", ndim=1)]
    counts: Annotated[np.ndarray, Array(dtype="<i4", ndim=2)]
    ids: Annotated[tuple, ListOf(UInt(bits=32), max_len=10)]
    vecs: Annotated[tuple, ListOf(FieldArray(ndim=1), max_len=5)]
    tags: Annotated[tuple, ListOf(Bytes(max_len=8), max_len=4)]
    small_field: Annotated[np.ndarray, FieldArray(ndim=1, p=65537)]
    maybe_seed: Annotated[Optional[bytes], Bytes(length=32)]  # noqa: UP045 - the schema accepts typing.Optional too
    maybe_vec: Optional[Annotated[np.ndarray, FieldArray(ndim=1)]]  # noqa: UP045 - ... outside Annotated as well


@register
@dataclass(frozen=True, eq=False)
class Sized(Message):
    """Shapes bound to the decode context: d (vector length), n (number of parties)."""

    KIND: ClassVar[str] = "test.wire.sized"
    share: Annotated[np.ndarray, FieldArray(ndim=1, length="d")]
    shares: Annotated[np.ndarray, FieldArray(ndim=2, shape=("n", "d"))]
    points: Annotated[tuple, ListOf(UInt(bits=16), length="n")]


def field_arrays(ndim: int):
    return hnp.arrays(
        np.uint64,
        hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=6),
        elements=st.integers(0, P - 1),
    )


all_kinds = st.builds(
    AllKinds,
    u64=st.integers(0, 2**64 - 1),
    small=st.integers(0, 1000),
    x=st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    name=st.text(max_size=32),
    seed=st.binary(min_size=32, max_size=32),
    blob=st.binary(max_size=100),
    shares=field_arrays(1),
    matrix=field_arrays(2),
    weights=hnp.arrays("<f8", st.integers(0, 8), elements=st.floats(allow_nan=False, allow_infinity=False)),
    counts=hnp.arrays("<i4", hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=4)),
    ids=st.lists(st.integers(0, 2**32 - 1), max_size=10).map(tuple),
    vecs=st.lists(field_arrays(1), max_size=5).map(tuple),
    tags=st.lists(st.binary(max_size=8), max_size=4).map(tuple),
    small_field=hnp.arrays(np.uint64, st.integers(0, 6), elements=st.integers(0, 65536)),
    maybe_seed=st.none() | st.binary(min_size=32, max_size=32),
    maybe_vec=st.none() | field_arrays(1),
)


def same_value(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def same_message(a: Message, b: Message) -> bool:
    return type(a) is type(b) and all(same_value(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))


def valid() -> AllKinds:
    return AllKinds(
        u64=2**64 - 1, small=7, x=-1.5, flag=True, name="edge", seed=bytes(range(32)), blob=b"xyz",
        shares=np.array([0, 1, P - 1], dtype=np.uint64), matrix=np.arange(6, dtype=np.uint64).reshape(2, 3),
        weights=np.array([0.5, -2.0]), counts=np.zeros((1, 2), dtype="<i4"), ids=(1, 2),
        vecs=(np.array([5], dtype=np.uint64),), tags=(b"a", b""), small_field=np.array([65536], dtype=np.uint64),
        maybe_seed=None, maybe_vec=np.array([3], dtype=np.uint64),
    )


def raw_of(msg: Message, **envelope) -> dict:
    """The unpacked msgpack envelope of ``msg`` (to be tampered with and re-packed)."""
    env = msgpack.unpackb(encode(msg, sender="edge-1", round=4))
    env.update(envelope)
    return env


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(msg=all_kinds, sender=st.sampled_from(["edge-1", "device-42", "dealer"]), rnd=st.integers(0, 2**63 - 1))
def test_round_trip_every_spec_kind(msg, sender, rnd):
    env = decode(encode(msg, sender=sender, round=rnd), expected_sender=sender, expected_round=rnd, expected_kind=AllKinds)
    assert env.sender == sender and env.round == rnd
    assert same_message(env.message, msg)


def test_decoded_arrays_are_read_only_views():
    env = decode(encode(valid(), sender="edge-1", round=0))
    assert not env.message.shares.flags.writeable
    with pytest.raises(ValueError):
        env.message.shares[0] = 1


@given(d=st.integers(0, 5), n=st.integers(1, 4))
def test_context_bound_shapes_accept_matching_sizes(d, n):
    msg = Sized(share=np.zeros(d, np.uint64), shares=np.ones((n, d), np.uint64), points=tuple(range(1, n + 1)))
    env = decode(encode(msg, sender="device-1", round=1), context={"d": d, "n": n})
    assert same_message(env.message, msg)


def test_wire_layout_is_the_documented_envelope():
    env = msgpack.unpackb(encode(valid(), sender="edge-1", round=4))
    assert set(env) == {"v", "kind", "sender", "round", "body"}
    assert (env["v"], env["kind"], env["sender"], env["round"]) == (2, "test.wire.all-kinds", "edge-1", 4)
    shares = env["body"]["shares"]
    assert shares["dtype"] == "<u8" and shares["shape"] == [3]
    assert shares["data"] == np.array([0, 1, P - 1], dtype="<u8").tobytes()


# ---------------------------------------------------------------------------------------------
# bad input: every case is a MessageError naming party and field
# ---------------------------------------------------------------------------------------------


def tampered(field: str, value) -> bytes:
    env = raw_of(valid())
    env["body"][field] = value
    return pack(env)


def array_map(arr: np.ndarray, dtype: str | None = None) -> dict:
    return {"dtype": dtype or arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}


BAD_BODIES = {
    "wrong dtype": ("shares", array_map(np.arange(3, dtype="<u4")), "dtype uint32, expected uint64"),
    "wrong ndim": ("shares", array_map(np.zeros((1, 3), dtype="<u8")), "ndim 2, expected 1"),
    "element >= p": ("shares", array_map(np.array([1, P], dtype="<u8")), f"element [1] = {P} is not < p"),
    "element 2^64-1": ("matrix", array_map(np.array([[2**64 - 1]], dtype="<u8")), "is not < p"),
    "data length vs shape": ("shares", {"dtype": "<u8", "shape": [4], "data": bytes(24)}, "needs 32"),
    "array keys": ("shares", {"dtype": "<u8", "shape": [0]}, "array map"),
    "negative shape": ("shares", {"dtype": "<u8", "shape": [-1], "data": b""}, "is not a list of ints in [0,"),
    "empty array, huge axis": ("matrix", {"dtype": "<u8", "shape": [0, 2**62], "data": b""}, "is not a list of ints in [0,"),
    "dtype numpy parses as a struct": ("matrix", {"dtype": ",", "shape": [1, 1], "data": bytes(8)}, "dtype ','"),
    "dtype with a trailing comma": ("shares", {"dtype": "u8,", "shape": [1], "data": bytes(8)}, "expected uint64"),
    "object dtype": ("weights", {"dtype": "|O", "shape": [1], "data": bytes(8)}, "expected float64"),
    "nan weight": ("weights", array_map(np.array([np.nan])), "not finite"),
    "int for float": ("x", 3, "expected float"),
    "inf float": ("x", float("inf"), "not finite"),
    "uint too big": ("small", 1001, "not in [0, 1000]"),
    "negative uint": ("u64", -1, "not in [0,"),
    "bool for uint": ("u64", True, "expected int"),
    "str for bool": ("flag", "yes", "expected bool"),
    "bytes for text": ("name", b"edge", "expected str"),
    "text too long": ("name", "x" * 33, "at most 32"),
    "seed length": ("seed", bytes(31), "expected exactly 32"),
    "blob too long": ("blob", bytes(101), "at most 100"),
    "None in required": ("shares", None, "None is not allowed"),
    "list too long": ("ids", list(range(11)), "at most 10"),
    "list element": ("ids", [1, 2**32], "not in [0,"),
    "list of arrays element": ("vecs", [array_map(np.array([P], dtype="<u8"))], "is not < p"),
    "not a list": ("ids", 5, "expected list"),
    "optional wrong type": ("maybe_seed", "x", "expected bytes"),
    "list of bytes element": ("tags", [b"ok", b"too long!"], "at most 8"),
    "element >= spec p": ("small_field", array_map(np.array([65537], dtype="<u8")), "is not < p = 65537"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_field_value_names_party_and_field(case):
    field, value, reason = BAD_BODIES[case]
    with pytest.raises(MessageError) as err:
        decode(tampered(field, value), expected_sender="edge-1")
    expected_field = {"list element": "ids[1]", "list of arrays element": "vecs[0]", "list of bytes element": "tags[1]"}.get(case, field)
    assert (err.value.party, err.value.field) == ("edge-1", expected_field)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"message from edge-1: field {expected_field!r}: ")


def test_missing_field():
    env = raw_of(valid())
    del env["body"]["seed"]
    with pytest.raises(MessageError, match="field 'seed': missing") as err:
        decode(pack(env))
    assert err.value.party == "edge-1"


def test_extra_field():
    env = raw_of(valid())
    env["body"]["bonus"] = 1
    with pytest.raises(MessageError, match="field 'bonus': unexpected field") as err:
        decode(pack(env))
    assert err.value.party == "edge-1"


ENVELOPE_CASES = {
    "wrong version": ({"v": 1}, {}, "v", "version 1 of kind 'test.wire.all-kinds', expected 2"),
    "unknown kind": ({"kind": "nope"}, {}, "kind", "unknown message kind"),
    "unexpected kind": ({}, {"expected_kind": Sized}, "kind", "expected 'test.wire.sized'"),
    "wrong sender": ({}, {"expected_sender": "edge-2"}, "sender", "claims to be 'edge-1'"),
    "wrong round": ({}, {"expected_round": 5}, "round", "round 4, expected 5"),
    "negative round": ({"round": -1}, {}, "round", "expected an int"),
    "sender not str": ({"sender": 7}, {}, "sender", "expected a party id"),
    "body not map": ({"body": [1]}, {}, "body", "expected a map"),
}


@pytest.mark.parametrize("case", sorted(ENVELOPE_CASES))
def test_bad_envelope(case):
    change, kwargs, field, reason = ENVELOPE_CASES[case]
    with pytest.raises(MessageError) as err:
        decode(pack(raw_of(valid(), **change)), **kwargs)
    assert err.value.field == field and reason in err.value.reason
    # blame: the authenticated id when given, else the claimed sender (when it is a valid id)
    assert err.value.party == kwargs.get("expected_sender", None if case == "sender not str" else "edge-1")


def test_envelope_missing_and_extra_keys():
    env = raw_of(valid())
    del env["round"]
    with pytest.raises(MessageError, match="field 'round': missing from the envelope"):
        decode(pack(env))
    with pytest.raises(MessageError, match="field 'extra': unexpected envelope field"):
        decode(pack(raw_of(valid(), extra=1)))


def test_context_bound_shape_mismatch():
    msg = Sized(share=np.zeros(3, np.uint64), shares=np.ones((2, 3), np.uint64), points=(1, 2))
    data = encode(msg, sender="device-1", round=1)
    with pytest.raises(MessageError, match=r"field 'share': shape \(3,\): axis 0 has length 3, expected 4 \(context 'd'\)"):
        decode(data, context={"d": 4})
    with pytest.raises(MessageError, match=r"field 'shares': .*axis 0 has length 2, expected 3 \(context 'n'\)"):
        decode(data, context={"n": 3, "d": 3})
    odd = Sized(share=np.zeros(3, np.uint64), shares=np.ones((2, 3), np.uint64), points=(1, 2, 3))
    with pytest.raises(MessageError, match="field 'points': list of 3 items, expected 2"):
        decode(encode(odd, sender="device-1", round=1), context={"n": 2})


def test_a_modulus_in_the_spec_wins_over_the_context():
    over = tampered("small_field", array_map(np.array([65537], dtype="<u8")))
    with pytest.raises(MessageError, match=r"field 'small_field': .* is not < p = 65537"):
        decode(over, context={"p": 2**64})


def test_range_uses_the_context_modulus():
    msg = Sized(share=np.array([10], np.uint64), shares=np.ones((1, 1), np.uint64), points=(1,))
    data = encode(msg, sender="device-1", round=1)
    decode(data)  # fine under 2^61 - 1
    with pytest.raises(MessageError, match="field 'share': element \\[0\\] = 10 is not < p = 7"):
        decode(data, context={"p": 7})


def test_every_prefix_of_a_valid_message_is_rejected():
    data = encode(valid(), sender="edge-1", round=4)
    for cut in range(len(data)):
        with pytest.raises(MessageError) as err:
            decode(data[:cut], expected_sender="edge-1")
        assert err.value.party == "edge-1"
        assert err.value.field in ("<bytes>", "<envelope>")
    with pytest.raises(MessageError, match="'<bytes>'"):
        decode(data + b"\x00")  # trailing garbage


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_random_bytes_are_rejected(garbage):
    with pytest.raises(MessageError):
        decode(garbage)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    dtype=st.one_of(st.text(max_size=8), st.sampled_from([",", "u8,", "S0,i4", "(2)u8", "O", "<u8", "V8"])),
    shape=st.lists(st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)), max_size=3),
    data=st.binary(max_size=32),
    field=st.sampled_from(["shares", "matrix", "weights"]),
)
@settings(max_examples=300, deadline=None)
def test_any_array_map_is_a_message_error_or_a_valid_array(dtype, shape, data, field):
    """Malformed array maps (odd dtype strings, huge or zero axes, wrong lengths) never escape as
    anything but MessageError (a fuzzer found ValueError and SyntaxError here)."""
    try:
        envelope = decode(tampered(field, {"dtype": dtype, "shape": shape, "data": data}), expected_sender="edge-1")
    except MessageError as error:
        assert error.field == field and error.party == "edge-1"
    else:  # a well-formed map: exactly the array it describes
        array = getattr(envelope.message, field)
        assert array.shape == tuple(shape) and array.tobytes() == data


@settings(max_examples=200, deadline=None)
@given(value=msgpack_values, body=st.dictionaries(st.text(max_size=10), msgpack_values, max_size=5))
def test_random_msgpack_objects_are_rejected(value, body):
    with pytest.raises(MessageError):
        decode(pack(value))
    env = raw_of(valid())
    env["body"] = body  # a well-formed envelope around a random body
    with pytest.raises(MessageError) as err:
        decode(pack(env), expected_sender="edge-1")
    assert err.value.party == "edge-1"


def test_oversized_message_rejected_on_both_sides():
    data = encode(valid(), sender="edge-1", round=4)
    with pytest.raises(MessageError, match=r"field '<bytes>': message is .* more than the limit"):
        decode(data, max_size=len(data) - 1)
    with pytest.raises(MessageError, match="more than the limit") as err:
        encode(valid(), sender="edge-1", round=4, max_size=len(data) - 1)
    assert err.value.party == "edge-1"


def test_not_bytes_is_rejected():
    with pytest.raises(MessageError, match="expected bytes"):
        decode("a string")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# encoding checks the sender's own values; schema declarations are checked once
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field, reason",
    [
        ({"shares": np.arange(3, dtype=np.uint32)}, "shares", "dtype uint32, expected uint64"),
        ({"shares": np.array([P], dtype=np.uint64)}, "shares", "is not < p"),
        ({"shares": [1, 2]}, "shares", "expected numpy array"),
        ({"counts": np.zeros(3, dtype="<i4")}, "counts", "ndim 1, expected 2"),
        ({"seed": None}, "seed", "None is not allowed"),
        ({"x": float("nan")}, "x", "not finite"),
        ({"ids": (1, -1)}, "ids[1]", "not in [0,"),
    ],
)
def test_encode_rejects_bad_local_values(change, field, reason):
    base = {f.name: getattr(valid(), f.name) for f in fields(AllKinds)}
    msg = AllKinds(**{**base, **change})
    with pytest.raises(MessageError) as err:
        encode(msg, sender="device-3", round=0)
    assert (err.value.party, err.value.field) == ("device-3", field)
    assert reason in err.value.reason


def test_numpy_round_numbers_are_accepted_when_sending():
    assert decode(encode(valid(), sender="edge-1", round=np.int64(3))).round == 3


def test_encode_rejects_bad_sender_and_round():
    with pytest.raises(MessageError, match="field 'sender'"):
        encode(valid(), sender="", round=0)
    with pytest.raises(MessageError, match="field 'round'"):
        encode(valid(), sender="edge-1", round=-1)


def test_schema_errors():
    with pytest.raises(SchemaError, match="already registered"):
        @register
        @dataclass(frozen=True)
        class Again(Message):
            KIND: ClassVar[str] = "test.wire.sized"

    with pytest.raises(SchemaError, match="Annotated"):
        @register
        @dataclass(frozen=True)
        class NoSpec(Message):
            KIND: ClassVar[str] = "test.wire.no-spec"
            x: int

    with pytest.raises(SchemaError, match="dataclass"):
        @register
        class NotADataclass(Message):
            KIND: ClassVar[str] = "test.wire.not-a-dataclass"

    with pytest.raises(SchemaError):
        FieldArray(ndim=2, length="d")
    with pytest.raises(SchemaError):
        Array(dtype="O")
    with pytest.raises(SchemaError):
        encode(Message(), sender="edge-1", round=0)
