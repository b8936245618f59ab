"""Running a reported computation with trusted PyTorch, and what running it shows.

:class:`Program` turns a decoded :class:`~grader.graph.wire.Graph` into calls of
``torch.ops.aten`` (allow-listed, resolved here, never from a name the sandbox could
choose freely), with placeholders bound to tensors the trusted side owns. Before it runs
on data it runs on PyTorch's meta device, which computes every shape without allocating
anything, so sizes are bounded before a byte is spent (:meth:`Program.validate`). The
first real run on the capture input records which tensors share storage and refuses
in-place changes of parameters, inputs and constants; batch-norm statistics may move, as
nn.BatchNorm moves them.

Only trusted code runs here, but the graph is hostile data: in the grader these runs
happen in a resource-limited child process (``grader.graph.child``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grader.graph import ops
from grader.graph.wire import Graph, GraphError, GraphLimits, Node, Placeholder
from sandbox import dropout_replay

ENUMS: dict[str, type] = {"dtype": torch.dtype, "layout": torch.layout,
                          "memory_format": torch.memory_format}
NORM_STAT_ARGS = {"native_batch_norm": (3, 4), "_native_batch_norm_legit": (3, 4),
                  "_native_batch_norm_legit_functional": (3, 4)}


def resolve(op: str) -> Any:
    """``torch.ops.aten.addmm.default`` for "aten.addmm.default" (allow-listed names only)."""
    _, packet, overload = op.split(".")
    if not ops.is_allowed(packet, overload):
        raise GraphError(f"{op} is not an operation the grader runs")
    try:
        return getattr(getattr(torch.ops.aten, packet), overload)
    except (AttributeError, RuntimeError):
        raise GraphError(f"{op} is not an operation of this PyTorch") from None


def writes(function: Any) -> list[int]:
    """Positions of the arguments an op changes in place (its schema's ``Tensor(a!)``)."""
    return [i for i, a in enumerate(function._schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write]


@dataclass
class Checked:
    """What the validating run established: tensor shapes, aliasing, live operations."""

    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    alias: dict[int, int] = field(default_factory=dict)
    live: set[int] = field(default_factory=set)
    input_dependent: set[int] = field(default_factory=set)


class Program:
    """A graph bound to trusted ATen functions."""

    def __init__(self, graph: Graph, limits: GraphLimits) -> None:
        self.graph = graph
        self.limits = limits
        self.functions = [resolve(node.op) for node in graph.nodes]
        self.written = [writes(f) for f in self.functions]
        self.checked = Checked()

    # -- state -------------------------------------------------------------------------

    def initial_state(self, device: str = "cpu") -> dict[int, torch.Tensor]:
        """The reported values of parameters, buffers and constants, as fresh tensors."""
        state = {}
        for p in (*self.graph.params, *self.graph.buffers, *self.graph.constants):
            assert p.value is not None
            tensor = torch.tensor(p.value, device=device)
            state[p.tid] = tensor.requires_grad_(p.requires_grad)
        return state

    # -- running -----------------------------------------------------------------------

    def run(self, inputs: list[torch.Tensor], state: dict[int, torch.Tensor], *,
            dropout_seed: int | None = None, perturb: int | None = None,
            generator: torch.Generator | None = None,
            watch: dict[int, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """The outputs for ``inputs``; dropout masks replayed from ``dropout_seed`` (as
        ``sandbox.dropout_replay`` makes them), node ``perturb``'s output jittered, and the
        first output of each node in ``watch`` made a leaf of autograd (stored there)."""
        env = self._bind(inputs, state)
        dropped = 0
        for node, function in zip(self.graph.nodes, self.functions, strict=True):
            args, kwargs = self._args(node.args, env), self._kwargs(node.kwargs, env)
            if dropout_seed is not None and node.packet in ("bernoulli_", "native_dropout"):
                out = _replayed(node, args, dropout_seed, dropped)
                dropped += 1
            elif watch is not None and node.packet == "detach":
                out = torch.ops.aten.alias.default(args[0])  # influence sees through it
            elif node.grad or watch is not None:
                out = function(*args, **kwargs)
            else:
                with torch.no_grad():
                    out = function(*args, **kwargs)
            self._store(node, out, env)
            if perturb == node.index:
                _jitter(node, env, generator)
            if watch is not None and node.index in watch:
                _watch(node, env, watch)
        return [env[t] for t in self.graph.outputs]

    def influence(self, inputs: list[torch.Tensor], state: dict[int, torch.Tensor],
                  nodes: list[int], dropout_seed: int | None = None) -> list[bool]:
        """For each node, whether the model's output depends on its result: one forward
        and one backward pass, the gradient of a random projection of the output with
        respect to each node's result (zero for a result thrown away or multiplied by 0)."""
        watch: dict[int, torch.Tensor] = dict.fromkeys(nodes, torch.empty(0))
        inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        params = {p.tid for p in self.graph.params}
        state = {t: v.detach().clone().requires_grad_(t in params) for t, v in state.items()}
        with torch.enable_grad():
            outputs = self.run(inputs, state, dropout_seed=dropout_seed, watch=watch)
            generator = torch.Generator().manual_seed(0)
            total = sum((o * torch.randn(o.shape, generator=generator, dtype=o.dtype)).sum()
                        for o in outputs if o.is_floating_point())
            leaves = [watch[n] for n in nodes]
            usable = [t for t in leaves if t.requires_grad]
            grads = dict(zip(map(id, usable), torch.autograd.grad(
                total, usable, allow_unused=True), strict=True)) if usable and isinstance(
                total, torch.Tensor) and total.requires_grad else {}
        found = []
        for leaf in leaves:
            grad = grads.get(id(leaf))
            found.append(grad is not None and bool(grad.abs().sum() > 0))
        return found

    def _bind(self, inputs: list[torch.Tensor], state: dict[int, torch.Tensor]
              ) -> dict[int, Any]:
        if len(inputs) != len(self.graph.inputs):
            raise GraphError(f"expected {len(self.graph.inputs)} inputs, got {len(inputs)}")
        env: dict[int, Any] = dict(state)
        for placeholder, tensor in zip(self.graph.inputs, inputs, strict=True):
            env[placeholder.tid] = tensor
        return env

    def _args(self, value: Any, env: dict[int, Any]) -> Any:
        if isinstance(value, list):
            return [self._args(v, env) for v in value]
        if isinstance(value, dict):
            (key, item), = value.items()
            if key == "t":
                return env[item]
            if key == "device":
                return torch.device("cpu")
            found = getattr(torch, str(item), None)
            if not isinstance(found, ENUMS[key]):
                raise GraphError(f"unknown {key} {str(item)[:40]!r}")
            return found
        return value

    def _kwargs(self, value: dict[str, Any], env: dict[int, Any]) -> dict[str, Any]:
        return {k: self._args(v, env) for k, v in value.items()}

    @staticmethod
    def _store(node: Node, out: Any, env: dict[int, Any]) -> None:
        for tid, tensor in zip(node.out_tids(), _tensors(out), strict=False):
            env[tid] = tensor

    # -- validation --------------------------------------------------------------------

    def validate(self, inputs: list[np.ndarray]) -> Checked:
        """Shapes on the meta device (bounded before anything is allocated), then one
        real run on ``inputs``: no placeholder but batch-norm statistics changes; the
        outputs match the reported ones; aliasing and live operations recorded."""
        self._meta(inputs)
        state = self.initial_state()
        tensors = [torch.tensor(x) for x in inputs]
        by_tid = self.graph.by_tid()
        owned = [(by_tid[t], v) for t, v in state.items()]
        owned += list(zip(self.graph.inputs, tensors, strict=True))
        versions = [t._version for _, t in owned]
        with torch.no_grad():
            env = self._bind(tensors, state)
            for node, function, written in zip(self.graph.nodes, self.functions, self.written,
                                               strict=True):
                args, kwargs = self._args(node.args, env), self._kwargs(node.kwargs, env)
                out = function(*args, **kwargs)
                self._store(node, out, env)
                if written:
                    _check_mutation(node, args, owned, versions)
        self._record(env)
        return self.checked

    def _meta(self, inputs: list[np.ndarray]) -> None:
        meta: dict[int, Any] = {}
        for p in (*self.graph.params, *self.graph.buffers, *self.graph.constants):
            assert p.value is not None
            meta[p.tid] = torch.empty(p.value.shape, dtype=_dtype(p.value), device="meta")
        metas = [torch.empty(x.shape, dtype=_dtype(x), device="meta") for x in inputs]
        env = self._bind(metas, meta)
        total = 0
        for node, function in zip(self.graph.nodes, self.functions, strict=True):
            args, kwargs = self._args(node.args, env), self._kwargs(node.kwargs, env)
            args, kwargs = _on_meta(args), _on_meta(kwargs)
            if any(a.name == "device" for a in function._schema.arguments):
                kwargs["device"] = torch.device("meta")
            if not any("Tensor" in str(r.type) for r in function._schema.returns):
                out: Any = 0  # a Python number or bool (item(), allclose): no data on meta
            else:
                try:
                    out = function(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - any refusal of the op by PyTorch
                    raise GraphError(f"operation {node.index} ({node.op}) cannot run on its "
                                     f"recorded arguments: {str(exc)[:200]}") from None
            for tensor in _tensors(out):
                if tensor.numel() > self.limits.max_tensor_elements:
                    raise GraphError(f"{node.op} makes a tensor of shape "
                                     f"{tuple(tensor.shape)}, larger than allowed")
                total += tensor.numel() * tensor.element_size()
            if total > self.limits.max_activation_bytes:
                raise GraphError("forward() allocates more memory than allowed")
            self._store(node, out, env)
        for tid in self.graph.outputs:
            if not isinstance(env.get(tid), torch.Tensor):
                raise GraphError("the recorded outputs are not tensors")

    def _record(self, env: dict[int, Any]) -> None:
        checked = self.checked
        storages: dict[int, int] = {}
        for tid, value in env.items():
            if isinstance(value, torch.Tensor):
                checked.shapes[tid] = tuple(value.shape)
                pointer = value.untyped_storage().data_ptr() if value.numel() else 0
                checked.alias[tid] = storages.setdefault(pointer, tid) if pointer else tid
        outputs = [env[t] for t in self.graph.outputs]
        random = any(ops.family(n.op) in ("dropout", "random") for n in self.graph.nodes)
        pairs = [] if random else zip(outputs, self.graph.output_values, strict=True)
        for got, want in pairs:
            if tuple(got.shape) != want.shape or not np.allclose(
                    got.detach().float().numpy(), want, rtol=1e-3, atol=1e-4):
                raise GraphError("the recorded computation does not give the outputs that "
                                 "were recorded with it")
        checked.live = self._live()
        checked.input_dependent = self._input_dependent()

    def _live(self) -> set[int]:
        """Operations whose results reach an output (directly, or by writing into a tensor
        that does); tensors sharing storage count as one."""
        alias = self.checked.alias
        needed = {alias.get(t, t) for t in self.graph.outputs}
        live = set()
        for node, written in zip(reversed(self.graph.nodes), reversed(self.written),
                                 strict=True):
            touched = {alias.get(t, t) for t in node.out_tids()}
            args = [node.args[i] for i in written if i < len(node.args)]
            touched |= {alias.get(t, t) for a in args for t in _ids(a)}
            if touched & needed:
                live.add(node.index)
                needed |= {alias.get(t, t) for t in node.in_tids()}
        return live

    def _input_dependent(self) -> set[int]:
        """Tensor ids whose values depend on the model's inputs."""
        alias = self.checked.alias
        dependent = {p.tid for p in self.graph.inputs}
        classes = {alias.get(t, t) for t in dependent}
        for node in self.graph.nodes:
            if any(t in dependent or alias.get(t, t) in classes for t in node.in_tids()):
                for tid in node.out_tids():
                    dependent.add(tid)
                    classes.add(alias.get(tid, tid))
        return dependent


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    return []


def _ids(value: Any) -> list[int]:
    if isinstance(value, dict) and set(value) == {"t"}:
        return [value["t"]]
    if isinstance(value, list):
        return [t for v in value for t in _ids(v)]
    return []


def _check_mutation(node: Node, args: list[Any], owned: list[tuple[Placeholder, torch.Tensor]],
                    versions: list[int]) -> None:
    """Refuse an in-place change of a parameter, an input or a constant (seen through any
    view: views share their base's version counter). Batch norm may update its running
    statistics, and nn.BatchNorm its integer count of batches."""
    stats = {id(args[i]) for i in NORM_STAT_ARGS.get(node.packet, ()) if i < len(args)}
    for k, (placeholder, tensor) in enumerate(owned):
        if tensor._version == versions[k]:
            continue
        versions[k] = tensor._version
        counter = node.packet == "add_" and bool(args) and args[0] is tensor and \
            not tensor.is_floating_point()
        if placeholder.kind == "buffer" and (id(tensor) in stats or counter):
            continue
        raise GraphError(f"forward() changes {_label(placeholder)} in place ({node.op}): "
                         f"parameters, inputs and stored tensors may change only through the "
                         f"optimizer")


def _dtype(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=array.dtype)).dtype


def _on_meta(value: Any) -> Any:
    if isinstance(value, torch.device):
        return torch.device("meta")
    if isinstance(value, list):
        return [_on_meta(v) for v in value]
    if isinstance(value, dict):
        return {k: _on_meta(v) for k, v in value.items()}
    return value


def _label(placeholder: Placeholder) -> str:
    return {"param": f"parameter {placeholder.name}", "buffer": f"buffer {placeholder.name}",
            "input": "its input", "constant": "a stored tensor"}[placeholder.kind]


def _replayed(node: Node, args: list[Any], seed: int, index: int) -> Any:
    """Dropout with the mask ``sandbox.dropout_replay`` draws for call ``index``."""
    if node.packet == "bernoulli_":
        target = args[0]
        keep_p = float(args[1]) if len(args) > 1 else float(node.kwargs.get("p", 0.5))
        keep = dropout_replay.mask(seed, index, tuple(target.shape), 1.0 - keep_p)
        with torch.no_grad():
            target.copy_(torch.as_tensor(keep, dtype=target.dtype))
        return target
    x, p, train = args[0], float(args[1]), bool(args[2])
    if not train or p == 0:
        return x.clone(), torch.ones_like(x, dtype=torch.bool)
    keep_mask = torch.as_tensor(dropout_replay.mask(seed, index, tuple(x.shape), p))
    return x * keep_mask.to(x.dtype) / (1.0 - p), keep_mask


def _watch(node: Node, env: dict[int, Any], watch: dict[int, torch.Tensor]) -> None:
    """Keep the node's first floating result and let the rest of the pass use a clone of it
    (so that in-place operations later, nn.ReLU(inplace=True), leave it as it was)."""
    for tid in node.out_tids():
        tensor = env.get(tid)
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            watch[node.index] = tensor
            env[tid] = tensor.clone()
            return


def _jitter(node: Node, env: dict[int, Any], generator: torch.Generator | None) -> None:
    for tid in node.out_tids():
        tensor = env.get(tid)
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.numel():
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            scale = float(tensor.detach().abs().mean()) + 1e-2
            with torch.no_grad():
                tensor.add_(noise * scale)
            return
