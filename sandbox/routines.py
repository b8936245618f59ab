"""Grader routines that run INSIDE the sandbox, next to the student's model.

They exist because some work must happen where the model lives (a training step,
a forward/backward pass with tensors, a module summary). Student code shares the
process and can replace any of them, so the trusted side never believes what
they report about correctness: it computes verdicts from the arrays they return,
times things itself, and drives epochs one request at a time.

Copied into the sandbox with the agent; imports only the standard library and
NumPy at import time (PyTorch lazily, inside the routines that need it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def numpy_info() -> dict[str, Any]:
    """What the sandbox's NumPy is (a smoke routine for tests)."""
    return {"version": np.__version__}


ROUTINES: dict[str, Callable[..., Any]] = {
    "numpy_info": numpy_info,
}
