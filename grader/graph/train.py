"""Training a validated computation on the trusted side: our initialisation, our loop.

A :class:`Model` holds the programs of one model (``"train"``: a train-mode pass on
batches of the training batch size; ``"eval"``: an eval-mode pass on evaluation
batches) and one state, shared by name: parameters, buffers, constants. No student code
runs here: the optimiser steps, the examples seen and the loss are counted by us.

Initialisation (``init``):

* ``"trusted"``: every parameter is drawn again here, by the role the computation gives
  it, as PyTorch's own layers initialise themselves: weights of matrix products and
  convolutions uniform in ±1/sqrt(fan_in) (nn.Linear's and nn.Conv2d's default), their
  biases likewise, normalisation weights 1 and biases 0, embeddings N(0, 1), anything
  else N(0, 0.02^2); parameters matching ``keep`` keep the values the student set.
* ``"student"``: the values the student's model had when it was recorded (courses that
  let students choose their initialisation; the accuracy check then adds controls).

Batch-norm statistics restart at mean 0, variance 1 and count 0 either way.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own convention

from grader.graph import ops
from grader.graph.run import NORM_STAT_ARGS, Program
from grader.graph.wire import GraphError, Node

STAT_POSITIONS = {**NORM_STAT_ARGS, "_native_batch_norm_legit_no_training": (3, 4)}
NORM_ROLES = {"native_batch_norm": {1: "ones", 2: "zeros"},
              "_native_batch_norm_legit": {1: "ones", 2: "zeros"},
              "_native_batch_norm_legit_no_training": {1: "ones", 2: "zeros"},
              "native_layer_norm": {2: "ones", 3: "zeros"},
              "native_group_norm": {1: "ones", 2: "zeros"}}


@dataclass(frozen=True)
class Role:
    kind: str            # uniform | ones | zeros | normal | small
    fan_in: int = 1


def roles(program: Program) -> dict[str, Role]:
    """How PyTorch's layers would initialise each parameter, read from how the
    computation uses it (the first use decides)."""
    names = {p.tid: p.name for p in program.graph.params}
    shapes = program.checked.shapes
    direct: dict[int, str] = dict(names)   # tensor -> the parameter it is a view of
    fan_of: dict[int, int] = {}            # tensor -> fan-in of the product that made it
    found: dict[str, Role] = {}

    def claim(position: int, node: Node, role: Role) -> None:
        if position < len(node.args):
            tid = _tid(node.args[position])
            if tid in direct:
                found.setdefault(direct[tid], role)

    for node in program.graph.nodes:
        family, tids = ops.family(node.op), [_tid(a) for a in node.args]
        if family == "structural" and tids and tids[0] in direct:
            for out in node.out_tids():
                direct[out] = direct[tids[0]]
        if family == "structural" and tids and tids[0] in fan_of:
            for out in node.out_tids():
                fan_of[out] = fan_of[tids[0]]
        if family == "convolution" and len(tids) > 1 and tids[1] in shapes:
            weight = shapes[tids[1]]
            fan = max(math.prod(weight[1:]), 1)
            claim(1, node, Role("uniform", fan))
            claim(2, node, Role("uniform", fan))
            fan_of.update({t: fan for t in node.out_tids()})
        elif family == "linear":
            first = 1 if node.packet.startswith(("addmm", "baddbmm", "addmv", "addbmm")) else 0
            left = tids[first] if first < len(tids) else None
            fan = shapes.get(left, (1,))[-1] if left is not None else 1
            for position in (first, first + 1):
                claim(position, node, Role("uniform", max(fan, 1)))
            if first:
                claim(0, node, Role("uniform", max(fan, 1)))
            fan_of.update({t: max(fan, 1) for t in node.out_tids()})
        elif node.packet in NORM_ROLES:
            for position, kind in NORM_ROLES[node.packet].items():
                claim(position, node, Role(kind))
        elif family == "embedding":
            claim(0, node, Role("normal"))
        elif node.packet in ("add", "add_") and len(tids) > 1:
            for mine, other in ((0, 1), (1, 0)):
                source = tids[other]
                if source is not None and source in fan_of:
                    claim(mine, node, Role("uniform", fan_of[source]))
    return found


def _tid(value: Any) -> int | None:
    if isinstance(value, dict) and set(value) == {"t"}:
        return int(value["t"])
    return None


class Model:
    """The programs of one model and the state they share."""

    def __init__(self, programs: dict[str, Program]) -> None:
        self.programs = programs
        first = next(iter(programs.values())).graph
        self.shapes = {p.name: p.value.shape for p in first.params if p.value is not None}
        for program in programs.values():
            for p in program.graph.params:
                if p.value is not None and self.shapes.setdefault(p.name, p.value.shape) != \
                        p.value.shape:
                    raise GraphError(f"parameter {p.name} has two shapes in two passes")
        self.params: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.optimizer: torch.optim.Optimizer | None = None
        self.steps = 0
        self.examples = 0

    # -- state ---------------------------------------------------------------------------

    def initialise(self, policy: str, seed: int, keep: list[str]) -> dict[str, Any]:
        """Set every parameter per ``policy`` (see the module docstring); returns what was
        kept from the student's values."""
        if policy not in ("trusted", "student"):
            raise ValueError(f"init must be 'trusted' or 'student', not {policy!r}")
        generator = torch.Generator().manual_seed(int(seed))
        found: dict[str, Role] = {}
        for program in self.programs.values():
            for name, role in roles(program).items():
                found.setdefault(name, role)
        self.params, self.buffers, kept = {}, {}, []
        for program in self.programs.values():
            for p in program.graph.params:
                if p.name in self.params or p.value is None:
                    continue
                student = torch.tensor(p.value)
                if policy == "student" or any(fnmatch.fnmatch(p.name, g) for g in keep):
                    value = student
                    kept.append(p.name)
                else:
                    value = _draw(found.get(p.name, Role("small")), tuple(p.value.shape),
                                  generator)
                self.params[p.name] = value.requires_grad_(p.requires_grad)
            for b in program.graph.buffers:
                if b.name not in self.buffers and b.value is not None:
                    self.buffers[b.name] = _fresh_buffer(program, b.tid, b.value)
        self.optimizer, self.steps, self.examples = None, 0, 0
        return {"kept": kept, "kept_elements": sum(self.params[n].numel() for n in kept)}

    def state_for(self, program: Program) -> dict[int, torch.Tensor]:
        state = {p.tid: self.params[p.name] for p in program.graph.params}
        state.update({b.tid: self.buffers[b.name] for b in program.graph.buffers})
        for c in program.graph.constants:
            assert c.value is not None
            state[c.tid] = torch.tensor(c.value)
        return state

    # -- running -------------------------------------------------------------------------

    def forward(self, key: str, inputs: list[np.ndarray], *, dropout_seed: int | None = None,
                perturb: int | None = None, seed: int = 0) -> list[np.ndarray]:
        program = self.programs[key]
        tensors = [torch.tensor(x) for x in inputs]
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            outputs = program.run(tensors, self.state_for(program), dropout_seed=dropout_seed,
                                  perturb=perturb, generator=generator)
        return [o.detach().float().numpy().copy() for o in outputs]

    def influence(self, key: str, inputs: list[np.ndarray], nodes: list[int],
                  dropout_seed: int | None = None) -> list[bool]:
        program = self.programs[key]
        tensors = [torch.tensor(x) for x in inputs]
        return program.influence(tensors, self.state_for(program), nodes, dropout_seed)

    def epoch(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, optimizer: str,
              lr: float, momentum: float, weight_decay: float, loss: str, seed: int
              ) -> dict[str, Any]:
        """One epoch of the train program over (x, y), shuffled, in full batches."""
        program = self.programs["train"]
        if self.optimizer is None:
            self.optimizer = _optimizer(self.params, optimizer, lr, momentum, weight_decay)
        criterion = _criterion(loss, program)
        torch.manual_seed(int(seed))  # dropout's masks
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))
        xs, ys = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y)).long()
        total, count = 0.0, 0
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            (scores, *_) = program.run([xs[batch]], self.state_for(program))
            if scores.ndim != 2 or scores.shape[0] != batch_size:
                raise GraphError(f"the model returned {tuple(scores.shape)} for a batch of "
                                 f"{batch_size}; expected scores of shape ({batch_size}, classes)")
            value = criterion(scores, ys[batch])
            if self.optimizer is not None and value.requires_grad:
                self.optimizer.zero_grad(set_to_none=True)
                value.backward()
                self.optimizer.step()
                self.steps += 1
            total += float(value.detach()) * batch_size
            count += batch_size
        self.examples += count
        mean = total / max(count, 1)
        return {"loss": mean if math.isfinite(mean) else None, "steps": self.steps,
                "examples": self.examples}

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """argmax class of every row of x, in eval batches of ``batch`` (the last padded)."""
        program = self.programs["eval"]
        labels = []
        with torch.no_grad():
            for start in range(0, len(x), batch):
                chunk = x[start:start + batch]
                padded = np.zeros((batch, *x.shape[1:]), dtype=x.dtype)
                padded[:len(chunk)] = chunk
                (scores, *_) = program.run([torch.from_numpy(padded)], self.state_for(program))
                if scores.ndim != 2 or scores.shape[0] != batch:
                    raise GraphError(f"the model returned {tuple(scores.shape)} for a batch "
                                     f"of {batch}; expected scores of shape ({batch}, classes)")
                labels.append(scores[:len(chunk)].argmax(dim=1).numpy())
        return np.concatenate(labels).astype(np.int64)


def _criterion(loss: str, program: Program) -> Any:
    """``cross_entropy`` on scores, ``nll`` on log-probabilities; ``auto``: categorical cross
    entropy of what the model returns, -log p(label) when it ends with a softmax (as a
    student's nn.Softmax output layer is trained) and cross entropy on scores otherwise."""
    if loss == "auto":
        loss = "probabilities" if ends_with_softmax(program) else "cross_entropy"
    if loss == "probabilities":
        return lambda p, y: F.nll_loss(torch.log(p.clamp_min(1e-12)), y)
    if loss in ("cross_entropy", "nll"):
        return F.cross_entropy if loss == "cross_entropy" else F.nll_loss
    raise ValueError(f"unknown loss {loss!r}")


def ends_with_softmax(program: Program) -> bool:
    """Whether the first output is a softmax's result (seen through reshaping)."""
    producers = {t: node for node in program.graph.nodes for t in node.out_tids()}
    tid = program.graph.outputs[0]
    while tid in producers:
        node = producers[tid]
        family = ops.family(node.op)
        if family == "softmax":
            return True
        if family != "structural" or not node.in_tids():
            return False
        tid = node.in_tids()[0]
    return False


def _draw(role: Role, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if role.kind == "ones":
        return torch.ones(shape)
    if role.kind == "zeros":
        return torch.zeros(shape)
    if role.kind == "normal":
        return torch.randn(shape, generator=generator)
    if role.kind == "uniform":
        bound = 1.0 / math.sqrt(max(role.fan_in, 1))
        return (torch.rand(shape, generator=generator) * 2 - 1) * bound
    return torch.randn(shape, generator=generator) * 0.02


def _fresh_buffer(program: Program, tid: int, value: np.ndarray) -> torch.Tensor:
    """Batch-norm statistics restart (mean 0, variance 1, count 0); other buffers keep the
    values the student's model holds (they are counted as stored numbers)."""
    for node in program.graph.nodes:
        for position, fill in zip(_stat_positions(node.packet), (0.0, 1.0), strict=False):
            if position < len(node.args) and _tid(node.args[position]) == tid:
                return torch.full(value.shape, fill, dtype=torch.float32)
    if value.dtype.kind in "iu" and value.ndim == 0:
        return torch.zeros((), dtype=torch.int64)
    return torch.tensor(value)


def _optimizer(params: dict[str, torch.Tensor], name: str, lr: float, momentum: float,
               weight_decay: float) -> torch.optim.Optimizer | None:
    trainable = [p for p in params.values() if p.requires_grad]
    if not trainable:
        return None
    if name == "adam":
        return torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def stored_elements(program: Program, weights: list[int]) -> int:
    """Numbers the model computes its layers' weights from that are neither parameters nor
    batch-norm statistics: constants and other buffers feeding the weight operands
    ``weights`` (tensor ids) of matrix products, convolutions, embeddings and recurrent
    layers. Trained weights smuggled in a buffer or a tensor kept outside the model show
    here; a position-encoding table added to the input or a mask does not."""
    stored = {c.tid: c.numel for c in program.graph.constants}
    for b in program.graph.buffers:
        counter = b.value is not None and b.value.dtype.kind in "iu" and b.value.ndim == 0
        if not counter and not _is_stat(program, b.tid):
            stored[b.tid] = b.numel
    sources: dict[int, set[int]] = {t: {t} for t in stored}
    for node in program.graph.nodes:
        found = set().union(*(sources.get(t, set()) for t in node.in_tids()))
        if found:
            for tid in node.out_tids():
                sources.setdefault(tid, set()).update(found)
    used = set().union(*(sources.get(t, set()) for t in weights)) if weights else set()
    return sum(stored[t] for t in used)


def _stat_positions(packet: str) -> tuple[int, ...]:
    return STAT_POSITIONS.get(packet, ())


def _is_stat(program: Program, tid: int) -> bool:
    return any(p < len(node.args) and _tid(node.args[p]) == tid
               for node in program.graph.nodes for p in _stat_positions(node.packet))
