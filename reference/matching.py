"""Known-bug variants: a named wrong implementation and how to recognise one.

A course's list of variants (e.g. ``assignments/mytorch-cnn/bug_variants.py``,
``reference.torch_bugs.FUNCTION_VARIANTS``) holds :class:`Variant` objects whose
``compute`` takes the same arguments, in the same order, as the reference for that
quantity; :func:`matching_variant` returns the first one that reproduces a wrong answer,
so that a check can show its hint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reference.numpy_layers import FloatArray

__all__ = ["Variant", "matching_variant"]


@dataclass(frozen=True)
class Variant:
    """A named wrong implementation and the hint shown when a submission matches it."""

    name: str
    hint: str
    compute: Callable[..., FloatArray]


def matching_variant(
    variants: Sequence[Variant],
    got: object,
    args: Sequence[object],
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> Variant | None:
    """The first variant whose ``compute(*args)`` has got's shape and is allclose to ``got``.

    Variants whose compute raises, and answers that are not numeric arrays, match nothing.
    """
    try:
        answer = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    for variant in variants:
        try:
            expected = np.asarray(variant.compute(*args), dtype=np.float64)
        except Exception:  # a variant that cannot run on these arguments does not match
            continue
        if expected.shape == answer.shape and np.allclose(answer, expected, rtol=rtol, atol=atol):
            return variant
    return None
