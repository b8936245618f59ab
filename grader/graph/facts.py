"""Facts about a model read from its validated computation (never from the sandbox's say).

* parameters: every parameter the computation reads, plus any the model registers but
  never uses (the course's ``sum(p.numel() for p in model.parameters())`` counts those);
* families: what each live operation computes (``grader.graph.ops``), with the few ops
  that make up dropout (a Bernoulli mask, scaled, multiplied in) and batch norm's batch
  counter counted as dropout and batch norm;
* layers: matrix products and convolutions with a weight that does not depend on the
  input, their output width per example (hidden units), the parameters they read;
* dropout: each Bernoulli mask and its drop probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from grader.graph import ops
from grader.graph.run import Program
from grader.graph.wire import Node

WEIGHTED = ("linear", "convolution", "embedding", "rnn")


@dataclass(frozen=True)
class Layer:
    """A live matrix product or convolution that has a weight operand."""

    node: int
    family: str
    op: str
    width: int                     # output elements per example
    params: tuple[str, ...]        # parameters its weight operands are computed from
    weights: tuple[int, ...] = ()  # its operands that do not depend on the input


@dataclass
class Facts:
    families: dict[int, str] = field(default_factory=dict)   # live node -> family
    layers: list[Layer] = field(default_factory=list)
    dropout: list[tuple[int, float]] = field(default_factory=list)  # (mask node, p)
    dropout_apply: list[int] = field(default_factory=list)   # nodes that multiply a mask in
    param_elements: int = 0
    unused_registered: list[str] = field(default_factory=list)

    def ops_of(self, family: str, program: Program) -> list[str]:
        return sorted({program.graph.nodes[i].op for i, f in self.families.items()
                       if f == family})

    def count(self, family: str) -> int:
        return sum(1 for f in self.families.values() if f == family)


def read(program: Program, batch: int) -> Facts:
    """The facts of a validated program run on batches of ``batch`` examples."""
    graph, checked = program.graph, program.checked
    facts = Facts()
    motifs, applied = _motifs(program)
    for node in graph.nodes:
        if node.index in checked.live:
            facts.families[node.index] = motifs.get(node.index, ops.family(node.op))
    sources = _param_sources(program)
    for node in graph.nodes:
        family = facts.families.get(node.index)
        if family not in WEIGHTED:
            continue
        inputs = node.in_tids()
        weights = [t for t in inputs if t not in checked.input_dependent]
        if not weights or len(weights) == len(inputs):
            continue
        out = node.out_tids()[0]
        width = math.prod(checked.shapes.get(out, (0,))) // max(batch, 1)
        params = tuple(sorted({p for t in weights for p in sources.get(t, ())}))
        facts.layers.append(Layer(node.index, family, node.op, width, params, tuple(weights)))
    used = {p.name for p in graph.params}
    facts.param_elements = sum(p.numel for p in graph.params) + sum(
        r.numel for r in graph.registered if r.name not in used)
    facts.unused_registered = [r.name for r in graph.registered if r.name not in used]
    facts.dropout = dropout_probabilities(program)
    facts.dropout_apply = [i for i in applied if i in checked.live]
    return facts


def _motifs(program: Program) -> tuple[dict[int, str], list[int]]:
    """Nodes that are parts of dropout (mask drawn, scaled, multiplied in) or batch norm's
    counter, classed with them rather than as arithmetic; and the nodes that multiply a
    dropout mask into data."""
    alias = program.checked.alias
    masks: set[int] = set()
    found: dict[int, str] = {}
    applied: list[int] = []
    for node in program.graph.nodes:
        ins = {alias.get(t, t) for t in node.in_tids()}
        if node.packet in ("bernoulli_", "bernoulli", "native_dropout"):
            found[node.index] = "dropout"
            if node.packet == "native_dropout":
                applied.append(node.index)
            else:
                masks |= {alias.get(t, t) for t in node.out_tids()}
        elif node.packet in ("div_", "div", "mul_", "mul") and ins & masks:
            found[node.index] = "dropout"
            if ins <= masks:
                masks |= {alias.get(t, t) for t in node.out_tids()}
            else:
                applied.append(node.index)
        elif node.packet == "add_" and _is_counter(node, program):
            found[node.index] = "batch_norm"
    return found, applied


def _is_counter(node: Node, program: Program) -> bool:
    target = node.in_tids()[:1]
    buffers = {b.tid: b.value for b in program.graph.buffers}
    value = buffers.get(target[0]) if target else None
    return value is not None and value.dtype.kind in "iu"


def _param_sources(program: Program) -> dict[int, set[str]]:
    """For each tensor, the parameters it is computed from."""
    sources: dict[int, set[str]] = {p.tid: {p.name} for p in program.graph.params}
    for node in program.graph.nodes:
        found = set().union(*(sources.get(t, set()) for t in node.in_tids()))
        if found:
            for tid in node.out_tids():
                sources.setdefault(tid, set()).update(found)
    return sources


def dropout_probabilities(program: Program) -> list[tuple[int, float]]:
    """(node, drop probability) of each live Bernoulli mask of the program."""
    found = []
    for node in program.graph.nodes:
        if node.index not in program.checked.live:
            continue
        if node.packet == "bernoulli_":
            keep = node.args[1] if len(node.args) > 1 else node.kwargs.get("p", 0.5)
            if isinstance(keep, int | float):  # a tensor of probabilities is no dropout
                found.append((node.index, 1.0 - float(keep)))
        elif node.packet == "native_dropout" and len(node.args) > 2 and node.args[2]:
            found.append((node.index, float(node.args[1])))
    return found
