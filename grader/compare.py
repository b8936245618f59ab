"""Layered comparison of a student's array with the reference.

present -> type -> shape -> dtype -> finite -> allclose, stopping at the first
failure and saying got vs expected, the largest error and where it is. Shapes are
checked before values because ``np.allclose`` broadcasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """Tolerances for one kind of quantity (values and gradients differ)."""

    rtol: float = 1e-5
    atol: float = 1e-8


VALUES = Tolerance(rtol=1e-5, atol=1e-8)
GRADIENTS = Tolerance(rtol=1e-4, atol=1e-6)


@dataclass(frozen=True)
class Mismatch:
    """Why an answer is wrong; ``layer`` is which comparison failed."""

    layer: str
    message: str


def describe(value: Any) -> str:
    """A short description of any value, for 'got ...' messages."""
    if type(value) is np.ndarray:  # a subclass is named, not passed off as an ndarray
        return f"numpy.ndarray {value.dtype} of shape {value.shape}"
    type_name = getattr(value, "type_name", None)
    if isinstance(type_name, str):
        return type_name.rsplit(".", 1)[-1]
    if value is None:
        return "None"
    return type(value).__name__


def compare_array(
    name: str,
    got: Any,
    expected: np.ndarray,
    tolerance: Tolerance = VALUES,
    *,
    detailed: bool = True,
) -> Mismatch | None:
    """None when ``got`` matches ``expected``; otherwise the first layer that fails.

    ``detailed=False`` (hidden tests) leaves out values, so the reference output
    cannot be rebuilt from the messages.
    """
    wanted = f"numpy.ndarray {expected.dtype} of shape {expected.shape}"
    if got is None:
        message = f"{name} is None: expected {wanted}. Did you forget to return it?"
        return Mismatch("present", message)
    if type(got) is not np.ndarray:
        return Mismatch("type", f"{name}: expected {wanted}, got {describe(got)}")
    if got.shape != expected.shape:
        return Mismatch("shape", f"{name}: shape {got.shape} != expected {expected.shape}")
    dtype_problem = _dtype_problem(got.dtype, expected.dtype)
    if dtype_problem:
        return Mismatch("dtype", f"{name}: {dtype_problem}")
    finite_problem = _finite_problem(got, expected)
    if finite_problem:
        return Mismatch("finite", f"{name}: {finite_problem}")
    return _value_problem(name, got, expected, tolerance, detailed)


def _dtype_problem(got: np.dtype[Any], expected: np.dtype[Any]) -> str | None:
    if expected.kind == "f" and got.kind not in "fiu":
        return f"dtype {got} cannot hold real numbers (expected {expected})"
    if expected.kind in "iu" and got.kind not in "iu":
        return f"dtype {got} is not an integer type (expected {expected})"
    if expected.kind == "b" and got.kind != "b":
        return f"dtype {got} is not bool"
    return None


def _finite_problem(got: np.ndarray, expected: np.ndarray) -> str | None:
    if got.dtype.kind != "f":
        return None
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    what = "NaN" if np.isnan(got[index]) else "inf"
    return f"output contains {what} at {list(index)} ({int(bad.sum())} non-finite values in all)"


def _value_problem(
    name: str, got: np.ndarray, expected: np.ndarray, tolerance: Tolerance, detailed: bool
) -> Mismatch | None:
    got_f = got.astype(np.float64)
    expected_f = expected.astype(np.float64)
    close = np.isclose(got_f, expected_f, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
    if close.all():
        return None
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf (and close)
        error = np.where(close, 0.0, np.abs(got_f - expected_f))
    index = np.unravel_index(int(np.argmax(error)), error.shape)
    where = [int(i) for i in index]
    count = f"{int((~close).sum())} of {close.size} elements differ"
    limits = f"(rtol={tolerance.rtol:g}, atol={tolerance.atol:g})"
    if not detailed:
        return Mismatch("values", f"{name}: values differ from the reference: {count} {limits}")
    message = (
        f"{name}: values differ from the reference: {count} {limits}; "
        f"largest error {error[index]:.4g} at {where}: got {got_f[index]:.6g}, "
        f"expected {expected_f[index]:.6g}"
    )
    return Mismatch("values", message)
