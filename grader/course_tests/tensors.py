"""Tensors across the boundary, for course tests written against PyTorch.

- A trusted tensor sent into the sandbox arrives there as a new tensor with the same
  values, dtype and ``requires_grad``. A trusted leaf that requires grad is remembered:
  after a ``.backward()`` that ran in the sandbox, its remote ``.grad`` is copied into
  the trusted tensor's ``.grad`` (so ``x.grad`` reads as in-process).
- A tensor the student's code returns stays in the sandbox as a :class:`RemoteTensor`.
  Any operation on it (``out - ref``, ``out.sum()``, ``F.mse_loss(out, y)``, through
  ``__torch_function__``) records a :class:`LazyTensor` and runs nothing.
- When a value is needed (``torch.allclose``, ``np.allclose``, ``bool``, ``float``,
  ``.item()``, ``.numpy()``, ``repr``), the expression is evaluated HERE, on the trusted
  side, from the fetched values of its remote leaves: comparisons are never computed by
  the student's process.
- ``.backward()`` replays the expression in the sandbox (so the graph runs through the
  student's module) and runs backward there; only the gradients come back, as data.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from grader.course_tests import proxies
from sandbox.protocol import Handle

# Evaluated at once (their results are not tensors, or the test wants the value now).
EAGER = frozenset({
    "allclose", "equal", "item", "tolist", "numpy", "size", "dim", "numel", "__bool__",
    "__float__", "__int__", "__index__", "__len__", "__iter__", "__repr__", "__format__",
    "__array__", "__contains__", "__hash__", "data_ptr", "is_contiguous", "nelement",
})
# Read from the sandbox (they differ between the remote tensor and its value).
REMOTE_ATTRIBUTES = frozenset({"grad", "data", "requires_grad", "is_leaf", "grad_fn"})
NAMESPACES = ("torch", "torch.nn.functional", "torch.linalg", "torch.special", "torch.fft")

_remote_torch: Any = None
_leaves: dict[int, tuple[weakref.ref[torch.Tensor], Handle, int]] = {}


def remote_torch() -> Any:
    global _remote_torch
    if _remote_torch is None:
        _remote_torch = proxies.from_wire(proxies.request({"op": "import", "module": "torch"}),
                                          "torch")
    return _remote_torch


def _remote_module(name: str) -> Handle:
    value = proxies.request({"op": "import", "module": name})
    if not isinstance(value, Handle):
        raise TypeError(f"the sandbox answered the import of {name} with data")
    return value


def is_lazy(value: Any) -> bool:
    return isinstance(value, RemoteTensor | LazyTensor)


def to_wire(value: Any) -> Any:
    """A trusted torch value as a handle to its sandbox copy."""
    if isinstance(value, RemoteTensor):
        return value._dl_handle
    if isinstance(value, LazyTensor):
        return value.remote()
    if isinstance(value, torch.dtype):
        return proxies.request({"op": "getattr", "obj": _remote_module("torch"),
                                "name": str(value).removeprefix("torch.")})
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.Tensor):
        return _send(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent into the sandbox")


def _send(tensor: torch.Tensor) -> Handle:
    known = _leaves.get(id(tensor))
    if known is not None and known[0]() is tensor and known[2] == tensor._version:
        return known[1]
    array = tensor.detach().cpu().numpy()
    dtype = proxies.request({"op": "getattr", "obj": _remote_module("torch"),
                             "name": str(tensor.dtype).removeprefix("torch.")})
    handle = proxies.request({
        "op": "call", "obj": _remote_module("torch"), "name": "tensor",
        "args": [np.ascontiguousarray(array)],
        "kwargs": {"dtype": dtype, "requires_grad": bool(tensor.requires_grad)},
    })
    if not isinstance(handle, Handle):
        raise TypeError("the sandbox did not make a tensor of a trusted tensor")
    if tensor.requires_grad and tensor.is_leaf:
        _leaves[id(tensor)] = (weakref.ref(tensor), handle, tensor._version)
    return handle


def _set_remote_grad(enabled: bool) -> None:
    proxies.request({"op": "call", "obj": _remote_module("torch"), "name": "set_grad_enabled",
                     "args": [enabled], "kwargs": {}})


def _sync_leaf_grads() -> None:
    """After a backward in the sandbox: each trusted leaf sent there gets its gradient."""
    for key, (ref, handle, _version) in list(_leaves.items()):
        tensor = ref()
        if tensor is None:
            del _leaves[key]
            continue
        grad = proxies.from_wire(proxies.request({"op": "getattr", "obj": handle,
                                                  "name": "grad"}), "grad")
        tensor.grad = None if grad is None else evaluate(grad).to(tensor.dtype)


def evaluate(value: Any) -> Any:
    """``value`` with every remote or lazy tensor replaced by its value, computed here."""
    if isinstance(value, RemoteTensor):
        return value.value()
    if isinstance(value, LazyTensor):
        return value.value()
    if type(value) in (list, tuple):
        return type(value)(evaluate(item) for item in value)
    if type(value) is dict:
        return {key: evaluate(item) for key, item in value.items()}
    return value


def _target(func: Callable[..., Any]) -> tuple[str, str]:
    """Where ``func`` lives in torch, to call it in the sandbox: (module or "", name)."""
    name = getattr(func, "__name__", "")
    if getattr(torch.Tensor, name, None) is func:
        return "", name
    for module_name in NAMESPACES:
        if getattr(importlib.import_module(module_name), name, None) is func:
            return module_name, name
    raise NotImplementedError(f"{name or func!r} cannot be replayed in the sandbox for "
                              "backward; use a torch or torch.nn.functional function")


class _TensorLike:
    """Operators and torch dispatch shared by remote and lazy tensors."""

    @classmethod
    def __torch_function__(cls, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in EAGER:
            return func(*evaluate(tuple(args)), **evaluate(kwargs))
        return LazyTensor(func, tuple(args), dict(kwargs))

    def value(self) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_dl_") or name.startswith("__"):
            raise AttributeError(name)
        member = getattr(torch.Tensor, name, None)
        if name in EAGER or not callable(member):
            return getattr(self.value(), name)
        if name.endswith("_") and not name.endswith("__"):
            return self._in_place(name)
        return lambda *args, **kwargs: LazyTensor(member, (self, *args), kwargs)

    def _in_place(self, name: str) -> Callable[..., Any]:
        raise TypeError(f"{name}() on a value computed from the student's tensors is not "
                        "supported; apply it to the student's tensor itself")

    def backward(self, gradient: Any = None, **kwargs: Any) -> None:
        args = () if gradient is None else (gradient,)
        proxies.call_remote(self.remote(), "backward", args, kwargs, "backward")
        _sync_leaf_grads()

    def remote(self) -> Handle:
        raise NotImplementedError

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = np.asarray(evaluate(self).detach().cpu().numpy())
        return array if dtype is None else array.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self.value())

    def __float__(self) -> float:
        return float(self.value())

    def __int__(self) -> int:
        return int(self.value())

    def __len__(self) -> int:
        return len(self.value())

    def __iter__(self) -> Any:
        return iter(self.value())

    def __format__(self, spec: str) -> str:
        return format(self.value(), spec)

    def __hash__(self) -> int:
        return id(self)


def _operator(name: str) -> Callable[..., LazyTensor]:
    member = getattr(torch.Tensor, name)

    def apply(self: _TensorLike, *args: Any) -> LazyTensor:
        return LazyTensor(member, (self, *args), {})

    apply.__name__ = name
    return apply


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__matmul__", "__rmatmul__", "__pow__",
              "__rpow__", "__neg__", "__abs__", "__getitem__", "__lt__", "__le__", "__gt__",
              "__ge__", "__eq__", "__ne__"):
    setattr(_TensorLike, _name, _operator(_name))


class RemoteTensor(_TensorLike):
    """A tensor in the sandbox (the student's output, a parameter, a ``.grad``)."""

    def __init__(self, handle: Handle, label: str) -> None:
        self._dl_handle = handle
        self._dl_label = label

    def value(self) -> torch.Tensor:
        """Its values, fetched as data (the handle may be a Parameter or a subclass)."""
        try:
            array = proxies.call_remote(self._dl_handle, "numpy", (), {"force": True},
                                        self._dl_label)
        except TypeError:
            detached = proxies.call_remote(self._dl_handle, "detach", (), {}, self._dl_label)
            array = proxies.call_remote(to_wire(detached), "numpy", (), {}, self._dl_label)
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{self._dl_label} did not give its values as an array")
        return torch.from_numpy(np.array(array))

    def remote(self) -> Handle:
        return self._dl_handle

    def __getattr__(self, name: str) -> Any:
        if name in REMOTE_ATTRIBUTES:
            return proxies.getattr_remote(self._dl_handle, name, self._dl_label)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_dl_"):
            object.__setattr__(self, name, value)
            return
        proxies.request({"op": "setattr", "obj": self._dl_handle, "name": name,
                         "value": proxies.to_wire(value)})

    def _in_place(self, name: str) -> Callable[..., Any]:
        def apply(*args: Any, **kwargs: Any) -> RemoteTensor:
            # ``with torch.no_grad(): p.copy_(w)`` in the test: the same mode in the sandbox
            switch = not torch.is_grad_enabled()
            if switch:
                _set_remote_grad(False)
            try:
                proxies.call_remote(self._dl_handle, name, args, kwargs, self._dl_label)
            finally:
                if switch:
                    _set_remote_grad(True)
            return self

        return apply

    def __repr__(self) -> str:
        return f"RemoteTensor({self.value()!r})"


class LazyTensor(_TensorLike):
    """An operation on remote tensors, not yet run anywhere."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self._dl_func, self._dl_args, self._dl_kwargs = func, args, kwargs

    def value(self) -> Any:
        return self._dl_func(*evaluate(self._dl_args), **evaluate(self._dl_kwargs))

    def remote(self) -> Handle:
        """Run the expression in the sandbox and return the handle of its result."""
        module, name = _target(self._dl_func)
        args = [proxies.to_wire(a) for a in self._dl_args]
        kwargs = {k: proxies.to_wire(v) for k, v in self._dl_kwargs.items()}
        if module:
            message = {"op": "call", "obj": _remote_module(module), "name": name,
                       "args": args, "kwargs": kwargs}
        else:
            message = {"op": "call", "obj": args[0], "name": name, "args": args[1:],
                       "kwargs": kwargs}
        handle = proxies.request(message)
        if not isinstance(handle, Handle):
            raise TypeError(f"{name} in the sandbox did not give a tensor")
        return handle

    def __repr__(self) -> str:
        return repr(self.value())


SUPPORT = proxies.TensorSupport(to_wire=to_wire, wrap=RemoteTensor, is_proxy=is_lazy)
