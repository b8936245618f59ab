"""The wire format: exact round trips, and defensive decoding of hostile frames."""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sandbox import protocol
from sandbox.protocol import ALLOWED_DTYPES, Handle, ProtocolError, decode, encode

DTYPES = sorted(ALLOWED_DTYPES)
FUZZ = settings(max_examples=200, deadline=None)


def round_trip(value: Any) -> Any:
    frame = encode(value)
    (length,) = struct.unpack_from("<I", frame)
    assert length == len(frame) - 4
    return decode(frame[4:])


def frame_of(header: Any, blob: bytes = b"", *, raw_header: bytes | None = None) -> bytes:
    """A payload (no outer length prefix) with an arbitrary header and blob."""
    data = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<I", len(data)) + data + blob


def same(a: Any, b: Any) -> bool:
    """Exact equality: types, dtypes, shapes, bytes, NaN and the sign of zero."""
    if isinstance(a, np.ndarray):
        return (
            type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes() == b.tobytes()
        )
    if type(a) is float:
        if type(b) is not float:
            return False
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list | tuple):
        return type(b) is list and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, 2**62, -(2**63), 1.5, -0.0, 1e-300, 1e300, "", "héllo ✓ \x00",
     [], {}, [1, [2, [3, [None]]]], {"a": {"b": [1.0, "x", {"c": None}]}}],
    ids=repr,
)
def test_plain_values_round_trip(value: Any) -> None:
    assert same(value, round_trip(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip(value: float) -> None:
    got = round_trip([value, {"x": value}])
    assert same([value, {"x": value}], got)


def test_tuples_become_lists_and_numpy_scalars_become_python() -> None:
    got = round_trip({"t": (1, (2, 3)), "f": np.float32(0.5), "i": np.int64(7), "b": np.bool_(1)})
    assert got == {"t": [1, [2, 3]], "f": 0.5, "i": 7, "b": True}
    assert type(got["i"]) is int and type(got["b"]) is bool


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)], ids=str)
def test_arrays_of_every_allowed_dtype(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    array = raw.view(dtype).reshape(shape) if raw.size else np.zeros(shape, dtype)
    got = round_trip(array)
    assert same(array, got)
    assert got.flags.writeable and got.flags.c_contiguous


def test_non_contiguous_arrays() -> None:
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    for view in (base[:, ::2, 1::3], base.T, np.asfortranarray(base), base[::-1]):
        assert not view.flags.c_contiguous
        got = round_trip(view)
        np.testing.assert_array_equal(got, view)
        assert got.flags.c_contiguous


def test_many_arrays_share_one_blob() -> None:
    value = {"a": np.arange(3, dtype=np.int8), "b": [np.zeros(0), np.ones((2, 2), np.float32)],
             "c": np.array(4.5), "d": np.zeros((0, 3), np.int64)}
    assert same(value, round_trip(value))


def test_handles_round_trip() -> None:
    value = {"obj": Handle(3, "mytorch.conv.Conv1D"), "list": [Handle(1, "x.Y"), 2]}
    assert round_trip(value) == value


def test_agent_side_turns_unknown_objects_into_handles() -> None:
    made: list[object] = []

    def handle_of(obj: object) -> Handle:
        made.append(obj)
        return Handle(len(made), type(obj).__qualname__)

    thing = object()
    frame = encode({"x": [thing, np.array([1], dtype=object), 1.5]}, handle_of)
    got = decode(frame[4:])
    assert got["x"][0] == Handle(1, "object")
    assert got["x"][1] == Handle(2, "ndarray")  # object arrays never travel as data
    assert made[0] is thing


@pytest.mark.parametrize(
    "value",
    [object(), np.array([1], dtype=object), np.array(["a"]), np.zeros(2, ">f8"), {1: 2},
     {"__nd__": 1}, {"__h__": 1}, {"__f__": "nan"}, b"bytes", 1 + 2j],
    ids=repr,
)
def test_trusted_side_refuses_to_send_non_data(value: Any) -> None:
    with pytest.raises(TypeError):
        encode(value)


def test_encode_refuses_very_deep_values() -> None:
    value: Any = 1
    for _ in range(protocol.MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(TypeError, match="nested too deeply"):
        encode(value)


# -- rejects -----------------------------------------------------------------------------


def array_frame(dtype: str, shape: list[Any], offset: int, nbytes: int, blob: bytes) -> bytes:
    return frame_of({"ok": True, "value": {"__nd__": [dtype, shape, offset, nbytes]}}, blob)


MALFORMED = [
    (array_frame("|O", [1], 0, 8, b"\0" * 8), "not allowed"),
    (array_frame("<U1", [1], 0, 4, b"\0" * 4), "not allowed"),
    (array_frame(">f8", [1], 0, 8, b"\0" * 8), "not allowed"),
    (array_frame("<V8", [1], 0, 8, b"\0" * 8), "not allowed"),
    (array_frame("<f8", [10**6, 10**6], 0, 8, b"\0" * 8), "shape does not match"),
    (array_frame("<f8", [10**12], 0, 8 * 10**12, b"\0" * 8), "outside the frame"),
    (array_frame("<f8", [2**40], 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", [-1], 0, -8, b""), "shape is malformed"),
    (array_frame("<f8", [2, -1], 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", [1.0], 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", [True], 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", [1] * 9, 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", "3", 0, 8, b"\0" * 8), "shape is malformed"),
    (array_frame("<f8", [1], -8, 8, b"\0" * 8), "offset is malformed"),
    (array_frame("<f8", [1], 8, 8, b"\0" * 8), "outside the frame"),
    (array_frame("<f8", [1], 2**62, 8, b"\0" * 8), "outside the frame"),
    (array_frame("<f8", [1], 0, 8, b"\0" * 16), "no array claims"),
    (array_frame("<f8", [1], 4, 8, b"\0" * 12), "overlap or leave gaps"),
    (frame_of({"__nd__": ["<f8", [1], 0, 8], "x": 1}, b"\0" * 8), "malformed array"),
    (frame_of({"__nd__": ["<f8", [1], 0]}, b"\0" * 8), "malformed array"),
    (frame_of({"__nd__": "<f8"}), "malformed array"),
    (frame_of([{"__nd__": ["<f8", [1], 0, 8]}, {"__nd__": ["<f8", [1], 0, 8]}], b"\0" * 8),
     "overlap or leave gaps"),
    (frame_of([{"__nd__": ["<f8", [2], 0, 16]}, {"__nd__": ["<f8", [1], 8, 8]}],
              b"\0" * 16), "overlap or leave gaps"),
    (frame_of({"__h__": "1", "type": "x"}), "malformed handle"),
    (frame_of({"__h__": True, "type": "x"}), "malformed handle"),
    (frame_of({"__h__": 1}), "malformed handle"),
    (frame_of({"__h__": 1, "type": "x", "extra": 0}), "malformed handle"),
    (frame_of({"__h__": 1, "type": "x" * 301}), "malformed handle type"),
    (frame_of({"__h__": 1, "type": 5}), "malformed handle type"),
    (frame_of({"__f__": "NaN"}), "special float"),
    (frame_of({"__f__": [1]}), "special float"),
    (frame_of({"__f__": {"a": 1}}), "special float"),
    (frame_of({"__f__": "nan", "x": 1}), "special float"),
    (frame_of(None, raw_header=b"[NaN]"), "non-finite"),
    (frame_of(None, raw_header=b"[1e999]"), "non-finite"),
    (frame_of(None, raw_header=b"{bad json"), "not valid JSON"),
    (frame_of(None, raw_header=b"\xff\xfe"), "not valid JSON"),
    (frame_of(None, raw_header=b"[" + b"9" * 5000 + b"]"), "not valid JSON"),
    (frame_of(None, raw_header=b"[1] trailing"), "not valid JSON"),
    (frame_of(None, raw_header=b""), "not valid JSON"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), MALFORMED, ids=[f"{i}-{r}" for i, (_, r) in enumerate(MALFORMED)]
)
def test_rejects_malformed_frames(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode(payload)


@pytest.mark.parametrize("depth", [protocol.MAX_DEPTH + 2, 1000, 10_000, 100_000])
def test_rejects_deep_nesting(depth: int) -> None:
    for header in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        with pytest.raises(ProtocolError, match="nested too deeply|not valid JSON"):
            decode(frame_of(None, raw_header=header))


def test_rejects_header_lengths_beyond_the_frame() -> None:
    with pytest.raises(ProtocolError, match="shorter"):
        decode(b"\x01\x00")
    with pytest.raises(ProtocolError, match="out of range"):
        decode(struct.pack("<I", 100) + b"[1]")
    with pytest.raises(ProtocolError, match="out of range"):
        decode(struct.pack("<I", 0xFFFFFFFF) + b"[1]")
    with pytest.raises(ProtocolError, match="out of range"):
        decode(struct.pack("<I", protocol.MAX_HEADER_BYTES + 1) + b" " * (9 << 20))


def test_read_frame_enforces_the_size_cap_before_reading() -> None:
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("<I", 1 << 29))
        with pytest.raises(ProtocolError, match="exceeds"):
            protocol.read_frame(read, 1 << 20)
        os.write(write, encode({"x": np.arange(3)}))
        assert same({"x": np.arange(3)}, protocol.read_frame(read, 1 << 20))
        os.write(write, struct.pack("<I", 10) + b"abc")
        os.close(write)
        write = -1
        with pytest.raises(ProtocolError, match="closed"):
            protocol.read_frame(read, 1 << 20)
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


# -- property tests ----------------------------------------------------------------------

KEYS = st.text(max_size=8).filter(lambda k: k not in ("__nd__", "__h__", "__f__"))
ARRAYS = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        np.dtype(dtype),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    )
)
LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=20)
    | ARRAYS | st.builds(Handle, st.integers(0, 2**31), st.text(max_size=30))
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(VALUES)
def test_random_values_round_trip(value: Any) -> None:
    assert same(value, round_trip(value))


@FUZZ
@given(st.lists(ARRAYS, max_size=5), st.data())
def test_random_arrays_round_trip_non_contiguous(arrays: list[np.ndarray], data: Any) -> None:
    views = []
    for array in arrays:
        if array.ndim and data.draw(st.booleans()):
            array = array[..., ::-1] if array.shape[-1] else array
        if array.ndim > 1 and data.draw(st.booleans()):
            array = array.T
        views.append(array)
    got = round_trip(views)
    assert len(got) == len(views)
    for want, have in zip(views, got, strict=True):
        assert same(want, have)


SAMPLE_FRAMES = [
    encode(value)[4:]
    for value in (
        {"ok": True, "value": [np.arange(6, dtype=np.float32).reshape(2, 3), Handle(2, "a.B")]},
        {"ok": False, "error": {"type": "E", "message": "m", "traceback": "t"}},
        [math.nan, {"x": [np.zeros((2, 0)), np.ones(3, np.int16), "s"]}, None, True, -3],
    )
]


def _decode_or_protocol_error(payload: bytes) -> None:
    try:
        decode(payload)
    except ProtocolError:
        pass


@FUZZ
@given(
    st.sampled_from(SAMPLE_FRAMES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_mutated_frames_decode_or_raise_protocol_error(
    frame: bytes, flips: list[tuple[int, int]], cut: int, truncate: bool
) -> None:
    payload = bytearray(frame)
    for position, byte in flips:
        payload[position % len(payload)] = byte
    if truncate:
        del payload[cut % len(payload):]
    _decode_or_protocol_error(bytes(payload))


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_protocol_error(payload: bytes) -> None:
    _decode_or_protocol_error(payload)


JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    | st.sampled_from(["__nd__", "__h__", "__f__", "nan", "<f8", "|O", "|b1"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["__nd__", "__h__", "__f__", "type", "ok", "value", "x"]), children,
        max_size=3,
    ),
    max_leaves=25,
)


@FUZZ
@given(JSON_TREES, st.binary(max_size=64))
def test_hostile_json_headers_decode_or_raise_protocol_error(tree: Any, blob: bytes) -> None:
    header = json.dumps(tree, allow_nan=True).encode()
    _decode_or_protocol_error(frame_of(None, blob, raw_header=header))
