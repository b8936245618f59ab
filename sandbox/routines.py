"""Grader routines that run INSIDE the sandbox, next to the student's model.

They exist because some work must happen where the model lives (a forward/backward
pass with tensors, a module summary, recording the model's computation). Student code
shares the process and can replace any of them, so the trusted side never believes what
they report: it computes verdicts from the arrays they return, times things itself,
and trains models itself from the computation they record (``torch_capture``), which it
verifies first (``grader.checks.torch_graph``).

Arrays arrive as NumPy arrays: floating ones become float32 tensors, integer and
bool ones keep their kind. Answers go back as NumPy arrays and plain data.

Copied into the sandbox with the agent; imports only the standard library and
NumPy at import time (PyTorch lazily, inside the routines that need it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import dropout_replay

SUMMARY_FIELDS = (
    "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride",
    "padding", "p", "num_features", "normalized_shape", "embed_dim", "num_heads",
    "input_size", "hidden_size", "num_layers", "num_embeddings", "embedding_dim",
)


def numpy_info() -> dict[str, Any]:
    """What the sandbox's NumPy is (a smoke routine for tests)."""
    return {"version": np.__version__}


def _torch() -> Any:
    import torch

    return torch


def _tensor(value: Any, *, requires_grad: bool = False, device: str = "cpu") -> Any:
    """A NumPy array (or number) as a tensor: floats become float32."""
    torch = _torch()
    array = np.asarray(value)
    if array.dtype.kind == "f":
        tensor = torch.tensor(array, dtype=torch.float32, device=device)
        return tensor.requires_grad_(requires_grad)
    return torch.tensor(array, device=device)


def _array(tensor: Any) -> Any:
    """A tensor as a NumPy array (float32 for floating tensors); None stays None."""
    if tensor is None:
        return None
    data = tensor.detach().cpu()
    if data.is_floating_point():
        data = data.float()
    return data.numpy().copy(order="C")  # np.ascontiguousarray would make 0-d arrays 1-d


def _flatten(value: Any) -> list[Any]:
    """A tensor or a nested tuple/list of tensors as a flat list (None dropped)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _flatten(item)]
    if value is None:
        return []
    raise TypeError(f"expected a tensor (or a tuple of tensors), got {type(value).__name__}")


# -------------------------------------------------------------------------- parameters


def torch_parameters(module: Any, values: bool = False) -> list[dict[str, Any]]:
    """[{name, shape, requires_grad, numel[, value]}] for every registered parameter."""
    rows = []
    for name, param in module.named_parameters():
        row: dict[str, Any] = {
            "name": name, "shape": [int(d) for d in param.shape],
            "requires_grad": bool(param.requires_grad), "numel": int(param.numel()),
        }
        if values:
            row["value"] = _array(param)
        rows.append(row)
    return rows


def torch_load_parameters(module: Any, values: dict[str, Any]) -> int:
    """Copy ``values`` ({name: array}) into the named parameters; shapes must match."""
    torch = _torch()
    params = dict(module.named_parameters())
    missing = sorted(set(values) - set(params))
    if missing:
        raise KeyError(f"no parameter called {missing[0]}")
    with torch.no_grad():
        for name, value in values.items():
            param = params[name]
            if tuple(param.shape) != tuple(np.shape(value)):
                raise ValueError(f"{name} has shape {tuple(param.shape)}, "
                                 f"cannot load an array of shape {np.shape(value)}")
            param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype))
    return len(values)


# -------------------------------------------------------------------------- forward


def torch_forward(
    module: Any, inputs: list[Any], *, train: bool, grad_output: list[Any] | None = None,
    method: str = "forward", input_grads: bool = True, dropout_seed: int | None = None,
) -> dict[str, Any]:
    """One forward (and, with ``grad_output``, backward) pass.

    inputs: arrays, one per forward argument. grad_output: one array per output tensor
    (the outputs flattened in order); the backward pass is sum(output * grad_output).
    dropout_seed: replay dropout masks from this seed (``sandbox.dropout_replay``).
    Returns {output: [arrays], input_grads: [array | None], param_grads: {name: array |
    None}, backward: "done" | "skipped: <why>", dropout_calls: [{shape, p, function}]}.
    """
    torch = _torch()
    module.train(bool(train))
    module.zero_grad(set_to_none=True)
    tensors = [_tensor(x, requires_grad=input_grads) for x in inputs]
    function = module if method == "forward" else getattr(module, method)
    calls: list[dict[str, Any]] = []
    with torch.set_grad_enabled(grad_output is not None or input_grads):
        if dropout_seed is None:
            outputs = _flatten(function(*tensors))
        else:
            with dropout_replay.replaying(int(dropout_seed)) as replay:
                outputs = _flatten(function(*tensors))
            calls = replay.calls
    result: dict[str, Any] = {"output": [_array(o) for o in outputs], "backward": "skipped",
                              "dropout_calls": calls}
    if grad_output is not None:
        result["backward"] = _backward(outputs, grad_output)
        result["input_grads"] = [_array(t.grad) if t.is_floating_point() else None
                                 for t in tensors]
        result["param_grads"] = {n: _array(p.grad) for n, p in module.named_parameters()}
    return result


def _backward(outputs: list[Any], grad_output: list[Any]) -> str:
    if len(outputs) != len(grad_output):
        return f"skipped: {len(outputs)} outputs, expected {len(grad_output)}"
    pairs = []
    for output, grad in zip(outputs, grad_output, strict=True):
        if tuple(output.shape) != tuple(np.shape(grad)):
            return f"skipped: output shape {tuple(output.shape)} != {np.shape(grad)}"
        if output.requires_grad:
            pairs.append((output, _tensor(grad).to(output.dtype)))
    if not pairs:
        return "skipped: the output does not depend on anything that requires a gradient"
    _torch().autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
    return "done"


def torch_call(function: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call a student function with arrays (also inside lists, as lists of batches) turned
    into tensors; tensors (also inside a returned tuple or list) come back as arrays."""
    result = function(*[_tensors_in(a) for a in args],
                      **{k: _tensors_in(v) for k, v in kwargs.items()})
    return _arrays_in(result)


def _tensors_in(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _tensor(value)
    if type(value) is list:
        return [_tensors_in(v) for v in value]
    return value


def _arrays_in(value: Any) -> Any:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return _array(value)
    if isinstance(value, tuple | list):
        return [_arrays_in(v) for v in value]
    return value


# -------------------------------------------------------------------------- summary


def torch_summary(module: Any) -> list[dict[str, Any]]:
    """One row per submodule, the root first (name ""): type (module.Class), params
    (recursive count), trainable (recursive count with requires_grad), own ({name: shape}
    of the parameters it holds directly), leaf (no children) and config (plain
    attributes such as in_features, out_features, p)."""
    rows = []
    for name, sub in module.named_modules():
        kind = type(sub)
        params = list(sub.parameters())
        rows.append({
            "name": name,
            "type": f"{kind.__module__}.{kind.__qualname__}",
            "params": sum(_numel(p) for p in params),
            "trainable": sum(_numel(p) for p in params if p.requires_grad),
            "own": {n: [int(d) for d in p.shape] for n, p in sub.named_parameters(recurse=False)},
            "leaf": next(iter(sub.children()), None) is None,
            "config": _config(sub),
        })
    return rows


def _numel(param: Any) -> int:
    try:
        return int(param.numel())
    except (RuntimeError, ValueError):  # an uninitialised lazy parameter
        return -1


def _config(module: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for field in SUMMARY_FIELDS:
        value = getattr(module, field, None)
        if isinstance(value, bool | int | float | str) and not isinstance(value, np.generic):
            found[field] = value
        elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            found[field] = list(value)
    return found


# -------------------------------------------------------------------------- prediction


def torch_predict(model: Any, x: Any, *, batch_size: int = 256, device: str = "cpu") -> Any:
    """argmax class of every row of x (N, ...) in eval mode: int64 (N,). For checks of a
    student's own training code; the grader's own accuracy is computed on the trusted side
    from the verified computation."""
    torch = _torch()
    model.to(device)
    model.train(False)
    labels = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = _tensor(x[start:start + batch_size], device=device)
            output = model(chunk)
            if not isinstance(output, torch.Tensor) or output.ndim != 2 or \
                    output.shape[0] != len(chunk):
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else \
                    type(output).__name__
                raise ValueError(f"the model returned {shape} for a batch of {len(chunk)}; "
                                 f"expected scores of shape ({len(chunk)}, classes)")
            labels.append(output.argmax(dim=1).cpu())
    return np.concatenate([t.numpy() for t in labels]).astype(np.int64)


# -------------------------------------------------------------------------- given code


def torch_loader(x: Any, y: Any, batch_size: int = 100) -> Any:
    """A ``torch.utils.data.DataLoader`` over (x, y) in order (no shuffling): what a
    handout's given data-loading code hands the student's functions. x: (N, ...) floats,
    y: (N,) int labels."""
    torch = _torch()
    dataset = torch.utils.data.TensorDataset(_tensor(x), _tensor(y).long())
    return torch.utils.data.DataLoader(dataset, batch_size=int(batch_size), shuffle=False)


def torch_linear(weight: Any, bias: Any) -> Any:
    """An ``nn.Linear`` holding ``weight`` (out, in) and ``bias`` (out,): a model whose
    answers the grader knows, for checking a student's evaluation code."""
    torch = _torch()
    layer = torch.nn.Linear(int(np.shape(weight)[1]), int(np.shape(weight)[0]))
    torch_load_parameters(layer, {"weight": weight, "bias": bias})
    return layer.eval()


# -------------------------------------------------------------------------- capture


class _Recorder:
    """Tensor ids and the ops of one forward pass, recorded at PyTorch's dispatch level
    (below autograd: ``nn.Linear`` shows as ``aten.t`` + ``aten.addmm``)."""

    def __init__(self, max_nodes: int) -> None:
        self.custom = 0  # depth inside torch.autograd.Function.apply
        self.ids: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps every recorded tensor alive, so ids stay unique
        self.constants: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []
        self.max_nodes = max_nodes

    def define(self, tensor: Any) -> int:
        self.ids[id(tensor)] = len(self.alive)
        self.alive.append(tensor)
        return len(self.alive) - 1

    def ref(self, tensor: Any) -> int:
        """The id of a tensor an op reads; one never seen before is a constant."""
        known = self.ids.get(id(tensor))
        if known is not None:
            return known
        tid = self.define(tensor)
        self.constants.append({"tid": tid, "value": _array(tensor)})
        return tid

    def encode(self, value: Any) -> Any:
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return {"t": self.ref(value)}
        if isinstance(value, tuple | list):
            return [self.encode(v) for v in value]
        if isinstance(value, torch.dtype | torch.layout | torch.memory_format):
            return {type(value).__name__: str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"device": str(value.type)}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        return {"opaque": type(value).__name__[:40]}  # refused by the trusted side

    def outputs(self, value: Any) -> Any:
        torch = _torch()
        if isinstance(value, torch.Tensor):
            known = self.ids.get(id(value))
            return known if known is not None else self.define(value)
        if isinstance(value, tuple | list):
            return [self.outputs(v) for v in value]
        return None

    def record(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        if len(self.nodes) >= self.max_nodes:
            raise RuntimeError(f"forward() ran more than {self.max_nodes} tensor operations")
        node = {"op": str(func), "args": self.encode(list(args)),
                "kwargs": {str(k): self.encode(v) for k, v in kwargs.items()},
                "out": self.outputs(out)}
        if not _torch().is_grad_enabled() and not self.custom:  # inside torch.no_grad()
            node["grad"] = False
        self.nodes.append(node)


@contextmanager
def _custom_functions(recorder: _Recorder) -> Iterator[None]:
    """Note when ops run inside a custom ``torch.autograd.Function`` (its forward runs with
    gradients off, yet its result takes part in autograd): they are not a no_grad region."""
    function = _torch().autograd.function.Function
    saved = vars(function)["apply"]

    def apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.custom += 1
        try:
            return saved.__func__(cls, *args, **kwargs)
        finally:
            recorder.custom -= 1

    function.apply = classmethod(apply)
    try:
        yield
    finally:
        function.apply = saved


def torch_capture(model: Any, inputs: list[Any], *, train: bool, method: str = "forward",
                  max_nodes: int = 200_000) -> dict[str, Any]:
    """The computation of one forward pass as plain data (see ``grader.graph.wire``):
    {inputs: [tid], params: [{name, tid, requires_grad, value}], buffers: [{name, tid,
    value}], constants: [{tid, value}], nodes: [{op, args, kwargs, out}], outputs: [tid],
    output_values: [arrays], registered: [{name, shape, requires_grad}]}; a node run under
    ``torch.no_grad()`` carries ``grad: False``. Values are taken before the pass (a
    train-mode pass moves batch-norm statistics). What this returns is a claim: the
    trusted side validates it, rebuilds it and runs it itself."""
    torch = _torch()
    from torch.utils._python_dispatch import TorchDispatchMode

    recorder = _Recorder(int(max_nodes))
    tensors = [_tensor(x) for x in inputs]
    model.train(bool(train))
    graph: dict[str, Any] = {"inputs": [recorder.define(t) for t in tensors]}
    graph["params"] = [{"name": n, "tid": recorder.define(p), "value": _array(p),
                        "requires_grad": bool(p.requires_grad)}
                       for n, p in model.named_parameters()]
    graph["buffers"] = [{"name": n, "tid": recorder.define(b), "value": _array(b)}
                        for n, b in model.named_buffers()]
    graph["registered"] = [{"name": r["name"], "shape": r["shape"],
                            "requires_grad": r["requires_grad"]} for r in torch_parameters(model)]
    function = model if method == "forward" else getattr(model, method)

    class Recording(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            recorder.record(func, args, kwargs or {}, out)
            return out

    with torch.enable_grad(), _custom_functions(recorder), Recording():  # type: ignore[no-untyped-call]
        outputs = _flatten(function(*tensors))
    graph["nodes"] = recorder.nodes
    graph["constants"] = recorder.constants
    graph["outputs"] = [recorder.ref(o) for o in outputs]
    graph["output_values"] = [_array(o) for o in outputs]
    return graph


# -------------------------------------------------------------------------- speed baseline


def torch_conv2d_loops(x: Any, weight: Any, bias: Any, stride: int = 1, padding: int = 0
                       ) -> Any:
    """The grader's own naive Conv2d, one small product per output position: the trusted
    baseline of speed checks, timed from outside in a fresh sandbox before any student
    code is imported (so a student cannot slow it down)."""
    torch = _torch()
    inputs = torch.nn.functional.pad(_tensor(x), [int(padding)] * 4)
    kernel, step = _tensor(weight), int(stride)
    k = kernel.shape[-1]
    rows = (inputs.shape[2] - k) // step + 1
    columns = (inputs.shape[3] - k) // step + 1
    with torch.no_grad():
        out = inputs.new_zeros(inputs.shape[0], kernel.shape[0], rows, columns)
        for i in range(rows):
            for j in range(columns):
                patch = inputs[:, :, i * step:i * step + k, j * step:j * step + k]
                out[:, :, i, j] = torch.einsum("nckl,ockl->no", patch, kernel)
        out += _tensor(bias)[None, :, None, None]
    return _array(out)


def torch_conv2d_four_loops(x: Any, weight: Any, bias: Any, stride: int = 1, padding: int = 0
                            ) -> Any:
    """A naive Conv2d as the EE 150 handout hints it ("you'll have 4 nested for loops"):
    over output channels, input channels, output rows and columns, the batch at once. A
    speed baseline like ``torch_conv2d_loops``, timed the same way."""
    torch = _torch()
    inputs = torch.nn.functional.pad(_tensor(x), [int(padding)] * 4)
    kernel, step = _tensor(weight), int(stride)
    k = kernel.shape[-1]
    rows = (inputs.shape[2] - k) // step + 1
    columns = (inputs.shape[3] - k) // step + 1
    with torch.no_grad():
        out = inputs.new_zeros(inputs.shape[0], kernel.shape[0], rows, columns)
        for o in range(kernel.shape[0]):
            for c in range(kernel.shape[1]):
                for i in range(rows):
                    for j in range(columns):
                        window = inputs[:, c, i * step:i * step + k, j * step:j * step + k]
                        out[:, o, i, j] += (window * kernel[o, c]).sum(dim=(1, 2))
        out += _tensor(bias)[None, :, None, None]
    return _array(out)


# -------------------------------------------------------------------------- sequence models


def torch_last_step(model: Any) -> Any:
    """``model`` wrapped so that it returns its last time step: a sequence model's output
    (N, T, C) becomes (N, C), as a course's training loop takes ``outputs[:, -1]``."""
    torch = _torch()

    class LastStep(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, x: Any) -> Any:
            output = self.model(x)
            return output[:, -1] if isinstance(output, torch.Tensor) and output.ndim == 3 \
                else output

    return LastStep(model)


ROUTINES: dict[str, Callable[..., Any]] = {
    "numpy_info": numpy_info,
    "torch_parameters": torch_parameters,
    "torch_load_parameters": torch_load_parameters,
    "torch_forward": torch_forward,
    "torch_call": torch_call,
    "torch_summary": torch_summary,
    "torch_conv2d_loops": torch_conv2d_loops,
    "torch_conv2d_four_loops": torch_conv2d_four_loops,
    "torch_last_step": torch_last_step,
    "torch_capture": torch_capture,
    "torch_predict": torch_predict,
    "torch_loader": torch_loader,
    "torch_linear": torch_linear,
}
