"""Wire format between the trusted grader and the in-sandbox agent.

One message is one frame::

    u32 payload_length | u32 header_length | header (UTF-8 JSON) | blob bytes

The JSON header holds plain data. An ndarray is written in the header as
``{"__nd__": [dtype_str, shape, offset, nbytes]}`` pointing into the blob bytes
that follow the header; a handle to an object that stays in the sandbox is
``{"__h__": id, "type": "module.Qualname"}``. Nothing is ever pickled.

Both directions decode defensively: the frame size is capped, the dtype comes
from an allow-list, and every array's declared shape must match its byte length
exactly. This module is copied into the sandbox, so it imports only the
standard library and NumPy.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

LENGTH = struct.Struct("<I")
MAX_FRAME_BYTES = 1 << 30  # absolute ceiling of the u32 prefix we accept
MAX_HEADER_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_NDIM = 8

ALLOWED_DTYPES = frozenset(
    np.dtype(name).str
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
        "uint64", "float16", "float32", "float64", "complex64", "complex128",
    )
)


class ProtocolError(Exception):
    """A frame that is malformed, oversized or truncated."""


@dataclass(frozen=True)
class Handle:
    """A reference to an object that lives in the sandbox."""

    id: int
    type_name: str


def encode(message: Any, handle_of: Any = None) -> bytes:
    """Encode ``message`` into one frame.

    ``handle_of`` maps a non-data object to a :class:`Handle` (the agent's side);
    the trusted side passes None, so an unexpected object raises TypeError.
    """
    blobs: list[bytes] = []
    offset = [0]

    def walk(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise TypeError("value is nested too deeply to send")
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int) and type(value) in (int, bool):
            return value
        if type(value) is float:
            return _encode_float(value)
        if isinstance(value, np.generic) and type(value).__module__ == "numpy":
            return walk(value.item(), depth)
        if type(value) is np.ndarray and value.dtype.str in ALLOWED_DTYPES:
            data = np.ascontiguousarray(value).tobytes()
            ref = [value.dtype.str, list(value.shape), offset[0], len(data)]
            blobs.append(data)
            offset[0] += len(data)
            return {"__nd__": ref}
        if isinstance(value, Handle):
            return {"__h__": value.id, "type": value.type_name}
        if type(value) in (list, tuple):
            return [walk(item, depth + 1) for item in value]
        if type(value) is dict and all(type(k) is str for k in value):
            if "__nd__" in value or "__h__" in value or "__f__" in value:
                raise TypeError("dict keys __nd__, __h__ and __f__ are reserved")
            return {k: walk(v, depth + 1) for k, v in value.items()}
        if handle_of is not None:
            return walk(handle_of(value), depth)
        raise TypeError(f"cannot send a value of type {type(value).__name__}")

    header = json.dumps(walk(message, 0), allow_nan=False, separators=(",", ":")).encode()
    blob = b"".join(blobs)
    payload_length = LENGTH.size + len(header) + len(blob)
    return LENGTH.pack(payload_length) + LENGTH.pack(len(header)) + header + blob


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"__f__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def decode(payload: bytes) -> Any:
    """Decode one frame's payload (everything after the length prefix)."""
    if len(payload) < LENGTH.size:
        raise ProtocolError("frame shorter than its header length")
    (header_length,) = LENGTH.unpack_from(payload)
    if header_length > MAX_HEADER_BYTES or LENGTH.size + header_length > len(payload):
        raise ProtocolError("frame header length is out of range")
    header_bytes = payload[LENGTH.size : LENGTH.size + header_length]
    blob = memoryview(payload)[LENGTH.size + header_length :]
    try:
        tree = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame header is not valid JSON ({type(exc).__name__})") from None
    used: list[tuple[int, int]] = []
    value = _rebuild(tree, blob, 0, used)
    _check_blob_coverage(used, len(blob))
    return value


def _rebuild(node: Any, blob: memoryview, depth: int, used: list[tuple[int, int]]) -> Any:
    if depth > MAX_DEPTH:
        raise ProtocolError("frame is nested too deeply")
    if node is None or isinstance(node, bool | int | float | str):
        if isinstance(node, float) and not math.isfinite(node):
            raise ProtocolError("bare non-finite float in frame")
        return node
    if isinstance(node, list):
        return [_rebuild(item, blob, depth + 1, used) for item in node]
    if not isinstance(node, dict):
        raise ProtocolError("unexpected JSON value in frame")
    if "__nd__" in node:
        return _rebuild_array(node, blob, used)
    if "__h__" in node:
        return _rebuild_handle(node)
    if "__f__" in node:
        special = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        if len(node) != 1 or not isinstance(node["__f__"], str) or node["__f__"] not in special:
            raise ProtocolError("malformed special float")
        return special[node["__f__"]]
    return {str(k): _rebuild(v, blob, depth + 1, used) for k, v in node.items()}


def _rebuild_array(node: dict[str, Any], blob: memoryview, used: list[tuple[int, int]]) -> Any:
    ref = node["__nd__"]
    if len(node) != 1 or not isinstance(ref, list) or len(ref) != 4:
        raise ProtocolError("malformed array reference")
    dtype_str, shape, offset, nbytes = ref
    if not isinstance(dtype_str, str) or dtype_str not in ALLOWED_DTYPES:
        raise ProtocolError(f"array dtype {str(dtype_str)[:20]!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise ProtocolError("array shape is malformed")
    if not all(type(d) is int and 0 <= d < 2**40 for d in shape):
        raise ProtocolError("array shape is malformed")
    if type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
        raise ProtocolError("array offset is malformed")
    dtype = np.dtype(dtype_str)
    if math.prod(shape) * dtype.itemsize != nbytes:
        raise ProtocolError("array shape does not match its byte length")
    if offset + nbytes > len(blob):
        raise ProtocolError("array bytes lie outside the frame")
    used.append((offset, nbytes))
    array = np.frombuffer(blob[offset : offset + nbytes], dtype=dtype).reshape(shape)
    return array.copy()


def _rebuild_handle(node: dict[str, Any]) -> Handle:
    handle_id, type_name = node.get("__h__"), node.get("type")
    if set(node) != {"__h__", "type"} or type(handle_id) is not int:
        raise ProtocolError("malformed handle")
    if not isinstance(type_name, str) or len(type_name) > 300:
        raise ProtocolError("malformed handle type")
    return Handle(handle_id, type_name)


def _check_blob_coverage(used: list[tuple[int, int]], blob_length: int) -> None:
    position = 0
    for offset, nbytes in sorted(used):
        if offset != position:
            raise ProtocolError("array bytes overlap or leave gaps")
        position += nbytes
    if position != blob_length:
        raise ProtocolError("frame carries bytes no array claims")


def read_exact(fd: int, count: int) -> bytes:
    """Blocking read of exactly ``count`` bytes; ProtocolError on EOF."""
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ProtocolError("channel closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_bytes: int) -> Any:
    """Blocking read and decode of one frame (used by the agent)."""
    (length,) = LENGTH.unpack(read_exact(fd, LENGTH.size))
    if length > max_bytes:
        raise ProtocolError(f"frame of {length} bytes exceeds the {max_bytes}-byte cap")
    return decode(read_exact(fd, length))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
