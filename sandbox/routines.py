"""Grader routines that run INSIDE the sandbox, next to the student's model.

They exist because some work must happen where the model lives (a training step,
a forward/backward pass with tensors, a module summary). Student code shares the
process and can replace any of them, so the trusted side never believes what
they report about correctness: it computes verdicts from the arrays they return,
times things itself, and drives epochs one request at a time.

Arrays arrive as NumPy arrays: floating ones become float32 tensors, integer and
bool ones keep their kind. Answers go back as NumPy arrays and plain data.

Copied into the sandbox with the agent; imports only the standard library and
NumPy at import time (PyTorch lazily, inside the routines that need it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import dropout_replay

SUMMARY_FIELDS = (
    "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride",
    "padding", "p", "num_features", "normalized_shape", "embed_dim", "num_heads",
    "input_size", "hidden_size", "num_layers", "num_embeddings", "embedding_dim",
)
OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "nll")


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


def torch_reset_parameters(model: Any, seed: int = 0) -> dict[str, int]:
    """Re-initialise every parameter: ``reset_parameters()`` where a module has one, and a
    fresh small random draw for parameters that it did not change (raw nn.Parameters)."""
    torch = _torch()
    torch.manual_seed(seed)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    reset = 0
    for module in model.modules():
        method = getattr(module, "reset_parameters", None)
        if callable(method):
            method()
            reset += 1
    redrawn = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if torch.equal(param, before[name]):
                param.normal_(0.0, 0.02)
                redrawn += 1
    return {"modules": reset, "redrawn": redrawn}


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
    """Call a student function with arrays turned into tensors; tensors come back as arrays."""
    torch = _torch()
    converted = [_tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    named = {k: _tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    result = function(*converted, **named)
    if isinstance(result, torch.Tensor):
        return _array(result)
    if isinstance(result, tuple | list):
        return [_array(r) if isinstance(r, torch.Tensor) else r for r in result]
    return result


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


# -------------------------------------------------------------------------- training


def torch_device(prefer_cuda: bool) -> dict[str, Any]:
    """The device to train on: "cuda" when asked for and available, else "cpu"."""
    torch = _torch()
    if prefer_cuda and torch.cuda.is_available():
        return {"device": "cuda", "name": str(torch.cuda.get_device_name(0))}
    return {"device": "cpu", "name": "cpu", "threads": int(torch.get_num_threads())}


class Trainer:
    """The grader's own training loop over data that lives here; one call = one epoch."""

    def __init__(self, model: Any, x: Any, y: Any, *, batch_size: int, lr: float,
                 optimizer: str, loss: str, seed: int, device: str, momentum: float,
                 weight_decay: float) -> None:
        torch = _torch()
        if optimizer not in OPTIMIZERS or loss not in LOSSES:
            raise ValueError(f"unknown optimizer {optimizer!r} or loss {loss!r}")
        torch.manual_seed(seed)
        self.model = model.to(device)
        self.x, self.y = _tensor(x, device=device), _tensor(y, device=device).long()
        self.batch_size, self.device, self.loss = int(batch_size), device, loss
        self.generator = torch.Generator().manual_seed(seed)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer: Any = None
        if trainable and optimizer == "adam":
            self.optimizer = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
        elif trainable:
            self.optimizer = torch.optim.SGD(trainable, lr=lr, momentum=momentum,
                                             weight_decay=weight_decay)

    def epoch(self) -> dict[str, Any]:
        torch = _torch()
        functional = torch.nn.functional
        criterion = (functional.cross_entropy if self.loss == "cross_entropy"
                     else functional.nll_loss)
        self.model.train(True)
        order = torch.randperm(len(self.x), generator=self.generator).to(self.device)
        total, count, steps = 0.0, 0, 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            output = _logits(self.model(self.x[batch]), len(batch))
            loss = criterion(output, self.y[batch])
            if self.optimizer is not None and loss.requires_grad:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                steps += 1
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        mean = total / max(count, 1)
        return {"loss": mean if math.isfinite(mean) else None, "steps": steps,
                "examples": count}


def _logits(output: Any, batch: int) -> Any:
    torch = _torch()
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != batch:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"the model returned {shape} for a batch of {batch}; "
                         f"expected scores of shape ({batch}, classes)")
    return output


def torch_trainer(
    model: Any, x: Any, y: Any, *, batch_size: int, lr: float, optimizer: str = "adam",
    loss: str = "cross_entropy", seed: int = 0, device: str = "cpu", momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> Trainer:
    """A Trainer (a handle on the trusted side) over x (N, ...) float and y (N,) int labels."""
    return Trainer(model, x, y, batch_size=batch_size, lr=lr, optimizer=optimizer, loss=loss,
                   seed=seed, device=device, momentum=momentum, weight_decay=weight_decay)


def torch_train_epoch(trainer: Trainer) -> dict[str, Any]:
    """One epoch of the trainer: {loss (mean over examples, None if not finite), steps,
    examples}. Reported by the sandbox, so shown to the student but never trusted."""
    return trainer.epoch()


def torch_predict(model: Any, x: Any, *, batch_size: int = 256, device: str = "cpu") -> Any:
    """argmax class of every row of x (N, ...) in eval mode: int64 (N,)."""
    torch = _torch()
    model.to(device)
    model.train(False)
    labels = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = _tensor(x[start:start + batch_size], device=device)
            labels.append(_logits(model(chunk), len(chunk)).argmax(dim=1).cpu())
    return np.concatenate([t.numpy() for t in labels]).astype(np.int64)


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
    "torch_reset_parameters": torch_reset_parameters,
    "torch_forward": torch_forward,
    "torch_call": torch_call,
    "torch_summary": torch_summary,
    "torch_device": torch_device,
    "torch_trainer": torch_trainer,
    "torch_train_epoch": torch_train_epoch,
    "torch_predict": torch_predict,
    "torch_conv2d_loops": torch_conv2d_loops,
    "torch_conv2d_four_loops": torch_conv2d_four_loops,
    "torch_last_step": torch_last_step,
}
