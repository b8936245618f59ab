"""A model's computation as the sandbox reports it: decoded and checked as plain data.

``sandbox.routines.torch_capture`` records one forward pass at PyTorch's dispatch level
and answers with plain data (``sandbox.protocol``; nothing is pickled)::

    {inputs: [tid], params: [{name, tid, requires_grad, value}], buffers: [{name, tid,
     value}], constants: [{tid, value}], nodes: [{op: "aten.addmm.default", args, kwargs,
     out}], outputs: [tid], output_values: [array], registered: [{name, shape,
     requires_grad}]}

A tensor is an integer id (``tid``); an argument that is a tensor is ``{"t": tid}``, a
dtype ``{"dtype": "float32"}`` (likewise layout, memory_format, device); ``out`` is a
tid, a list of them, or None. Student code shares the process that answers, so all of
it is a claim: this module only checks that it is well formed and within size limits
(:class:`GraphLimits`); what it computes is established by running it on the trusted
side (``grader.graph.run``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.graph import ops

OP_NAME = re.compile(r"^aten\.([a-z0-9_]+)\.([A-Za-z0-9_]+)$")
ENUMS = {"dtype", "layout", "memory_format", "device"}
DTYPES = frozenset({"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16",
                    "int8", "uint8", "bool"})
MAX_NAME = 200


class GraphError(Exception):
    """The reported computation is malformed or too large; ``message`` is for students."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class GraphLimits:
    """What the trusted side accepts: nodes, elements per tensor and in all parameters,
    stored constants (numbers the model computes with that are not parameters)."""

    max_nodes: int = 200_000
    max_tensor_elements: int = 1 << 26
    max_param_elements: int = 20_000_000
    max_constant_elements: int = 1 << 24
    max_activation_bytes: int = 2 << 30


@dataclass(frozen=True)
class Placeholder:
    """A tensor that exists before the pass: ``kind`` is input, param, buffer or constant."""

    tid: int
    kind: str
    name: str
    value: np.ndarray | None = None
    requires_grad: bool = False

    @property
    def numel(self) -> int:
        return 0 if self.value is None else int(self.value.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.value is None else tuple(self.value.shape)


@dataclass(frozen=True)
class Node:
    index: int
    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    out: Any
    grad: bool = True   # False: run inside torch.no_grad() in the student's forward

    @property
    def packet(self) -> str:
        """``addmm`` for ``aten.addmm.default``."""
        return self.op.split(".")[1]

    def out_tids(self) -> list[int]:
        return list(_tids_of(self.out))

    def in_tids(self) -> list[int]:
        return [*_arg_tids(self.args), *_arg_tids(list(self.kwargs.values()))]


@dataclass(frozen=True)
class Registered:
    name: str
    shape: tuple[int, ...]
    requires_grad: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class Graph:
    """One recorded pass (``train`` says which mode), checked for form and size only."""

    train: bool
    inputs: list[Placeholder]
    params: list[Placeholder]
    buffers: list[Placeholder]
    constants: list[Placeholder]
    nodes: list[Node]
    outputs: list[int]
    output_values: list[np.ndarray]
    registered: list[Registered] = field(default_factory=list)

    @property
    def placeholders(self) -> list[Placeholder]:
        return [*self.inputs, *self.params, *self.buffers, *self.constants]

    def by_tid(self) -> dict[int, Placeholder]:
        return {p.tid: p for p in self.placeholders}

    def param_named(self, name: str) -> Placeholder | None:
        return next((p for p in self.params if p.name == name), None)


def decode(value: Any, *, train: bool, limits: GraphLimits,
           input_shapes: list[tuple[int, ...]]) -> Graph:
    """A :class:`Graph` from what ``torch_capture`` returned, or GraphError."""
    if not isinstance(value, dict):
        raise GraphError("the recorded computation is not a mapping")
    defined: set[int] = set()
    inputs = [_placeholder(t, "input", f"input {i}", None, defined)
              for i, t in enumerate(_list(value, "inputs"))]
    if len(inputs) != len(input_shapes):
        raise GraphError(f"the recorded computation has {len(inputs)} inputs, not "
                         f"{len(input_shapes)}")
    params = [_named(row, "param", defined, limits, requires_grad=True)
              for row in _list(value, "params")]
    buffers = [_named(row, "buffer", defined, limits) for row in _list(value, "buffers")]
    constants = [_named(row, "constant", defined, limits) for row in _list(value, "constants")]
    if any(p.value is None or p.value.dtype.kind != "f" for p in params):
        raise GraphError("every parameter must hold floating-point values")
    if sum(p.numel for p in params) > limits.max_param_elements:
        raise GraphError(f"the model holds more than {limits.max_param_elements:,} parameters")
    stored = sum(c.numel for c in constants)
    if stored > limits.max_constant_elements:
        big = sorted(constants, key=lambda c: -c.numel)[0]
        raise GraphError(
            f"forward() computes with {stored:,} stored numbers that are not parameters "
            f"(the largest, of shape {big.shape}, is a tensor created "
            f"outside forward or from Python data); at most {limits.max_constant_elements:,} "
            f"are allowed. Make weights nn.Parameters and build other tensors in forward().")
    nodes = _nodes(_list(value, "nodes"), defined, limits)
    outputs = [_tid(t, "output") for t in _list(value, "outputs")]
    if not outputs or any(t not in defined for t in outputs):
        raise GraphError("the recorded outputs are not tensors of the computation")
    values = _list(value, "output_values")
    if len(values) != len(outputs) or any(type(v) is not np.ndarray for v in values):
        raise GraphError("the recorded output values are malformed")
    registered = [_registered(row) for row in _list(value, "registered")]
    return Graph(train, inputs, params, buffers, constants, nodes, outputs, list(values),
                 registered)


def _list(value: dict[str, Any], key: str) -> list[Any]:
    found = value.get(key)
    if not isinstance(found, list):
        raise GraphError(f"the recorded computation has no list '{key}'")
    return found


def _tid(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise GraphError(f"malformed tensor id in {what}")
    return value


def _placeholder(tid: Any, kind: str, name: str, value: np.ndarray | None, defined: set[int],
                 requires_grad: bool = False) -> Placeholder:
    tid = _tid(tid, kind)
    if tid in defined:
        raise GraphError(f"tensor id {tid} is defined twice")
    defined.add(tid)
    return Placeholder(tid, kind, name, value, requires_grad)


def _named(row: Any, kind: str, defined: set[int], limits: GraphLimits,
           requires_grad: bool = False) -> Placeholder:
    if not isinstance(row, dict):
        raise GraphError(f"malformed {kind} entry")
    value = row.get("value")
    if type(value) is not np.ndarray or value.dtype.name not in DTYPES:
        raise GraphError(f"a {kind} without a numeric array value")
    if value.size > limits.max_tensor_elements:
        raise GraphError(f"a {kind} of shape {value.shape} is larger than allowed")
    name = row.get("name", f"constant {row.get('tid')}")
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise GraphError(f"malformed {kind} name")
    grad = requires_grad and row.get("requires_grad") is True
    return _placeholder(row.get("tid"), kind, name, value, defined, grad)


def _registered(row: Any) -> Registered:
    if not isinstance(row, dict) or not isinstance(row.get("name"), str):
        raise GraphError("malformed parameter list")
    shape = row.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise GraphError("malformed parameter list")
    return Registered(row["name"][:MAX_NAME], tuple(shape), row.get("requires_grad") is True)


def _nodes(rows: list[Any], defined: set[int], limits: GraphLimits) -> list[Node]:
    if len(rows) > limits.max_nodes:
        raise GraphError(f"forward() runs {len(rows):,} tensor operations; at most "
                         f"{limits.max_nodes:,} are allowed")
    nodes = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("op"), str):
            raise GraphError(f"operation {index} is malformed")
        op = row["op"]
        match = OP_NAME.match(op)
        if match is None or not ops.is_allowed(match.group(1), match.group(2)):
            raise GraphError(f"forward() uses {op[:80]}, an operation the grader does not "
                             f"run (only plain tensor operations are accepted)")
        args, kwargs = row.get("args"), row.get("kwargs")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise GraphError(f"operation {index} ({op}) has malformed arguments")
        if not all(isinstance(k, str) and len(k) <= 40 for k in kwargs):
            raise GraphError(f"operation {index} ({op}) has malformed keyword arguments")
        _check_args(args, defined, op)
        _check_args(list(kwargs.values()), defined, op)
        out = row.get("out")
        for tid in _tids_of(out):
            defined.add(_tid(tid, op))
        nodes.append(Node(index, op, args, kwargs, out, row.get("grad") is not False))
    return nodes


def _check_args(value: Any, defined: set[int], op: str, depth: int = 0) -> None:
    if depth > 8:
        raise GraphError(f"{op}: arguments nested too deeply")
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > 40:
            raise GraphError(f"{op}: malformed argument")
        return
    if isinstance(value, list):
        for item in value:
            _check_args(item, defined, op, depth + 1)
        return
    if isinstance(value, dict) and len(value) == 1:
        (key, item), = value.items()
        if key == "t":
            if type(item) is not int or item not in defined:
                raise GraphError(f"{op} reads a tensor the computation never defined")
            return
        if key in ENUMS and isinstance(item, str) and len(item) <= 40:
            return
        if key == "opaque":
            raise GraphError(f"{op} takes an argument of type {str(item)[:40]}, which the "
                             f"grader cannot rebuild")
    raise GraphError(f"{op}: malformed argument")


def _tids_of(value: Any) -> Iterator[int]:
    if type(value) is int:
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _tids_of(item)
    elif value is not None:
        raise GraphError("malformed operation output")


def _arg_tids(value: Any) -> Iterator[int]:
    if isinstance(value, dict):
        if set(value) == {"t"}:
            yield value["t"]
    elif isinstance(value, list):
        for item in value:
            yield from _arg_tids(item)
