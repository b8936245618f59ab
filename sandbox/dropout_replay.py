"""Replayed dropout: the same masks on the trusted side and in the sandbox.

Train-mode comparison of a module with active dropout needs both sides to drop the same
elements. PyTorch's own draws depend on the dtype, the device and the order of every
other random call, so instead, while :func:`replaying` is active, every call of
``torch.nn.functional.dropout`` (which ``nn.Dropout`` calls too), of ``torch.dropout``
and of ``dropout1d/2d/3d`` takes its mask from NumPy, seeded by (seed, call number): the
reference (float64, here) and the student's module (float32, in the sandbox) get equal
masks as long as they apply dropout in the same order to tensors of the same shapes.
Each call is logged (shape, p, function) so a mismatch can be explained.

Outside :func:`replaying` the wrappers call PyTorch's functions unchanged; the state is
thread-local, so a worker that grades in several threads replays only where asked.
Copied into the sandbox with the agent; imports only the standard library and NumPy at
import time (PyTorch inside :func:`install`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# function name -> how many trailing axes share one mask entry (whole channels dropped)
FUNCTIONS = {"dropout": 0, "dropout1d": 1, "dropout2d": 2, "dropout3d": 3}

_state = threading.local()
_installed: dict[str, Callable[..., Any]] = {}
_install_lock = threading.Lock()


@dataclass
class Replay:
    """One forward pass's masks: the seed and the calls made so far."""

    seed: int
    calls: list[dict[str, Any]] = field(default_factory=list)


def mask(seed: int, index: int, shape: tuple[int, ...], p: float, shared_axes: int = 0
         ) -> np.ndarray:
    """The keep-mask (bool) of call ``index``: elements drawn with P(keep) = 1 - p, the
    last ``shared_axes`` axes of ``shape`` sharing one draw."""
    drawn = shape[:len(shape) - shared_axes] + (1,) * shared_axes if shared_axes else shape
    keep: np.ndarray = np.random.default_rng([seed, index]).random(drawn) >= p
    return keep


def install() -> None:
    """Wrap torch.nn.functional's dropout functions and ``torch.dropout`` once
    (idempotent)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own convention

    with _install_lock:
        for name, shared in FUNCTIONS.items():
            if name in _installed:
                continue
            original = getattr(F, name)
            _installed[name] = original
            setattr(F, name, _wrapper(name, shared, original))
        if "torch.dropout" not in _installed:
            plain = torch.dropout
            _installed["torch.dropout"] = plain
            replayed = _wrapper("dropout", 0, lambda x, p, training, inplace: plain(x, p, training))

            def dropout(input: Any, p: float, train: bool) -> Any:
                return replayed(input, p, train)

            torch.dropout = dropout


def _wrapper(name: str, shared: int, original: Callable[..., Any]) -> Callable[..., Any]:
    def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False
                ) -> Any:
        replay: Replay | None = getattr(_state, "replay", None)
        if replay is None:
            return original(input, p, training, inplace)
        if not training or p == 0:
            return input
        shape = tuple(int(d) for d in input.shape)
        replay.calls.append({"shape": list(shape), "p": float(p), "function": name})
        keep = mask(replay.seed, len(replay.calls) - 1, shape, float(p), shared)
        import torch

        scale = torch.as_tensor(keep, dtype=input.dtype, device=input.device)
        scale = scale / (1.0 - p) if p < 1 else scale * 0
        return input.mul_(scale) if inplace else input * scale

    dropout.__name__ = name
    dropout.__doc__ = original.__doc__
    return dropout


@contextmanager
def replaying(seed: int) -> Iterator[Replay]:
    """Within the block, this thread's dropout calls take replayed masks."""
    install()
    replay = Replay(int(seed))
    previous = getattr(_state, "replay", None)
    _state.replay = replay
    try:
        yield replay
    finally:
        _state.replay = previous


def describe(calls: list[dict[str, Any]]) -> str:
    """'2 times: on (2, 5, 5) with p=0.1, on (2, 5, 8) with p=0.1' (or 'no dropout')."""
    if not calls:
        return "no dropout"
    shown = ", ".join(f"{c['function']} on {tuple(c['shape'])} with p={c['p']:g}"
                      for c in calls[:6])
    more = f" and {len(calls) - 6} more" if len(calls) > 6 else ""
    return f"{len(calls)} time{'s' if len(calls) != 1 else ''}: {shown}{more}"
