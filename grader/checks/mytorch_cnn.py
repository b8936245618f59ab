"""Checks of the NumPy CNN homework (11-785 HW2P1, spring 2020).

Everything expected is computed here, on the trusted side, with ``reference``;
the sandbox only receives inputs and weights and returns the student's answers.
Inputs come from the per-attempt secret seed in ``ctx.rng``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.compare import Mismatch
from grader.context import CheckContext, CheckFailed
from grader.registry import check
from reference.mytorch_models import (
    GRADED_CNN_CONFIG,
    ReferenceCNN,
    distributed_scanning_forward,
    distributed_scanning_weights,
    random_cnn_params,
    simple_scanning_forward,
    simple_scanning_weights,
)
from reference.numpy_bugs import (
    CNN_DX_VARIANTS,
    CONV1D_DB_VARIANTS,
    CONV1D_DW_VARIANTS,
    CONV1D_DX_VARIANTS,
    CONV1D_FORWARD_VARIANTS,
    DB_SHAPE_HINT,
    DISTRIBUTED_SCAN_VARIANTS,
    SIMPLE_SCAN_VARIANTS,
    Variant,
    conv1d_width_hint,
    matching_variant,
)
from reference.numpy_layers import conv1d_backward, conv1d_forward
from sandbox.session import Remote

SCAN_INPUT_SHAPE = (1, 24, 128)
MLP_SHAPES = ((192, 8), (8, 16), (16, 4))


@check("mytorch_cnn.multiple_choice")
def multiple_choice(ctx: CheckContext) -> float | None:
    """question_1() ... question_N() must return the letters of the answer key (all or nothing)."""
    answers = [str(a).strip().lower() for a in ctx.params["answers"]]
    module = ctx.session.import_module("hw2.mc")
    wrong = []
    for number, expected in enumerate(answers, start=1):
        got = module.method(f"question_{number}")
        if not isinstance(got, str) or got.strip().lower() != expected:
            wrong.append(f"question_{number}() returned {_short(got)}")
    if wrong:
        raise CheckFailed(
            f"{len(wrong)} of {len(answers)} answers are wrong: " + "; ".join(wrong) + "."
        )
    return None


@dataclass(frozen=True)
class ConvCase:
    """One random Conv1D configuration and its inputs."""

    in_channel: int
    out_channel: int
    kernel_size: int
    stride: int
    x: np.ndarray  # (batch, in_channel, width)
    W: np.ndarray  # (out_channel, in_channel, kernel_size)
    b: np.ndarray  # (out_channel,)

    def describe(self) -> str:
        return (
            f"Conv1D(in_channel={self.in_channel}, out_channel={self.out_channel}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}) on x of shape {self.x.shape}"
        )


def conv_cases(rng: np.random.Generator, trials: int) -> list[ConvCase]:
    """Random configurations; the first always has kernel > 1, stride > 1 and batch > 1
    (with one example, a db averaged over the batch would pass by luck)."""
    cases = []
    for trial in range(trials):
        in_c, out_c = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        kernel = int(rng.integers(2 if trial == 0 else 1, 7))
        stride = int(rng.integers(2 if trial == 0 else 1, 4))
        batch, width = int(rng.integers(2 if trial == 0 else 1, 5)), int(rng.integers(20, 61))
        if trial == 0 and (width - kernel) // stride + 1 == out_c:
            width += 1  # keep db's shape distinguishable from the width
        cases.append(ConvCase(
            in_c, out_c, kernel, stride,
            rng.standard_normal((batch, in_c, width)),
            rng.standard_normal((out_c, in_c, kernel)),
            rng.standard_normal(out_c),
        ))
    return cases


def _student_conv(ctx: CheckContext, case: ConvCase) -> Remote:
    conv_class = ctx.session.import_module("mytorch.conv").get_object("Conv1D")
    layer = conv_class.new(case.in_channel, case.out_channel, case.kernel_size, case.stride)
    layer.set("W", case.W)
    layer.set("b", case.b)
    return layer


def _variant_hint(variants: Sequence[Variant], got: Any, args: Sequence[object]) -> str | None:
    variant = matching_variant(variants, got, args)
    return variant.hint if variant else None


@check("mytorch_cnn.conv1d_forward")
def conv1d_forward_check(ctx: CheckContext) -> float | None:
    """Conv1D.forward(x) against the reference on random configurations."""
    for case in conv_cases(ctx.rng, int(ctx.params.get("trials", 4))):
        y = _student_conv(ctx, case).method("forward", case.x)
        expected = conv1d_forward(case.x, case.W, case.b, case.stride)

        def hint(mismatch: Mismatch, y: Any = y, case: ConvCase = case) -> str | None:
            if mismatch.layer == "shape" and isinstance(y, np.ndarray) and y.ndim == 3:
                width = case.x.shape[2]
                return conv1d_width_hint(width, case.kernel_size, case.stride, y.shape[2])
            return _variant_hint(CONV1D_FORWARD_VARIANTS, y, (case.x, case.W, case.b, case.stride))

        ctx.expect_array("forward(x)", y, expected, hint=hint, context=case.describe())
    return None


BACKWARD_VARIANTS = {"dx": CONV1D_DX_VARIANTS, "dW": CONV1D_DW_VARIANTS, "db": CONV1D_DB_VARIANTS}


@check("mytorch_cnn.conv1d_backward")
def conv1d_backward_check(ctx: CheckContext) -> float | None:
    """forward(x) then backward(delta): one of dx (returned), dW or db (attributes)."""
    quantity = str(ctx.params["quantity"])
    if quantity not in BACKWARD_VARIANTS:
        raise ValueError(f"quantity must be one of {sorted(BACKWARD_VARIANTS)}")
    for case in conv_cases(ctx.rng, int(ctx.params.get("trials", 4))):
        layer = _student_conv(ctx, case)
        layer.method("forward", case.x)
        out_width = (case.x.shape[2] - case.kernel_size) // case.stride + 1
        delta = ctx.rng.standard_normal((case.x.shape[0], case.out_channel, out_width))
        dx = layer.method("backward", delta)
        got = dx if quantity == "dx" else layer.attr(quantity)
        dx_ref, dw_ref, db_ref = conv1d_backward(case.x, case.W, delta, case.stride)
        expected = {"dx": dx_ref, "dW": dw_ref, "db": db_ref}[quantity]
        args = (delta,) if quantity == "db" else (case.x, case.W, delta, case.stride)

        def hint(mismatch: Mismatch, got: Any = got, args: tuple[Any, ...] = args) -> str | None:
            if quantity == "db" and mismatch.layer == "shape":
                return DB_SHAPE_HINT
            return _variant_hint(BACKWARD_VARIANTS[quantity], got, args)

        name = "backward(delta)" if quantity == "dx" else f"{quantity} after backward(delta)"
        ctx.expect_array(name, got, expected, kind="gradients", hint=hint,
                         context=f"{case.describe()}, delta of shape {delta.shape}")
    return None


SCANNING: dict[str, tuple[str, Callable[..., Any], Callable[..., Any], Sequence[Variant]]] = {
    "simple": ("CNN_SimpleScanningMLP", simple_scanning_weights, simple_scanning_forward,
               SIMPLE_SCAN_VARIANTS),
    "distributed": ("CNN_DistributedScanningMLP", distributed_scanning_weights,
                    distributed_scanning_forward, DISTRIBUTED_SCAN_VARIANTS),
}


@check("mytorch_cnn.scanning_mlp")
def scanning_mlp_check(ctx: CheckContext) -> float | None:
    """init_weights([w1, w2, w3]) then forward(x (1, 24, 128)) against the reference."""
    class_name, to_conv, forward, variants = SCANNING[str(ctx.params["network"])]
    weights = [ctx.rng.standard_normal(shape) for shape in MLP_SHAPES]
    x = ctx.rng.standard_normal(SCAN_INPUT_SHAPE)
    network = ctx.session.import_module("hw2.mlp_scan").get_object(class_name).new()
    network.method("init_weights", weights)
    y = network.method("forward", x)
    expected = forward(x, to_conv(*weights))

    def hint(mismatch: Mismatch) -> str | None:
        found = _variant_hint(variants, y, (x, *weights))
        return found or "If Conv1D forward fails too, fix that first."

    ctx.expect_array(f"{class_name}.forward(x)", y, expected, hint=hint,
                     context=f"x of shape {x.shape}")
    return None


@check("mytorch_cnn.cnn_model")
def cnn_model_check(ctx: CheckContext) -> float | None:
    """The hw2.py CNN: forward, backward (dx and every dW/db), then step()."""
    config = GRADED_CNN_CONFIG
    conv_params, linear_params = random_cnn_params(config, ctx.rng)
    reference = ReferenceCNN.from_config(config, conv_params, linear_params)
    student = _student_cnn(ctx)
    _load_cnn_params(student, conv_params, linear_params)
    batch = int(ctx.params.get("batch", 2))
    x = ctx.rng.standard_normal((batch, config.num_input_channels, config.input_width))
    classes = config.num_linear_neurons
    labels = np.eye(classes)[ctx.rng.integers(0, classes, batch)]
    ctx.expect_array("CNN.forward(x)", student.method("forward", x), reference.forward(x),
                     hint=lambda _: "If Conv1D forward fails too, fix that first.")
    dx = student.method("backward", labels)
    dx_args = (conv_params, config.strides, linear_params, config.activations, x, labels)
    ctx.expect_array("CNN.backward(labels)", dx, reference.backward(labels), kind="gradients",
                     hint=lambda _: _variant_hint(CNN_DX_VARIANTS, dx, dx_args))
    _compare_layers(ctx, student, reference, "dW", "db", "after backward(labels)")
    student.method("step")
    reference.step()
    _compare_layers(ctx, student, reference, "W", "b", "after step()")
    return None


def _student_cnn(ctx: CheckContext) -> Remote:
    config = GRADED_CNN_CONFIG
    activation = ctx.session.import_module("mytorch.activation")
    names = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}
    activations = [activation.get_object(names[a]).new() for a in config.activations]
    criterion = ctx.session.import_module("mytorch.loss").get_object("SoftmaxCrossEntropy").new()
    randn = ctx.session.import_module("numpy.random").get_object("randn")
    cnn_class = ctx.session.import_module("hw2.hw2").get_object("CNN")
    return cnn_class.new(
        config.input_width, config.num_input_channels, list(config.num_channels),
        list(config.kernel_sizes), list(config.strides), config.num_linear_neurons,
        activations, randn, randn, randn, criterion, config.lr,
    )


def _layers(student: Remote) -> list[tuple[str, Remote]]:
    convs = student.attr("convolutional_layers")
    if isinstance(convs, Remote):
        convs = [convs.item(i) for i in range(convs.length())]
    wanted = len(GRADED_CNN_CONFIG.num_channels)
    if not isinstance(convs, list) or len(convs) != wanted:
        got = f"{len(convs)} items" if isinstance(convs, list) else type(convs).__name__
        raise CheckFailed(f"CNN.convolutional_layers should hold {wanted} Conv1D layers, got {got}")
    if not all(isinstance(layer, Remote) for layer in convs):
        raise CheckFailed("CNN.convolutional_layers should hold Conv1D objects")
    layers = [(f"convolutional_layers[{i}]", layer) for i, layer in enumerate(convs)]
    return [*layers, ("linear_layer", student.get_object("linear_layer"))]


def _load_cnn_params(student: Remote, conv_params: Sequence[Any], linear_params: Any) -> None:
    """Copy the reference weights in, keeping the student's own shape for b."""
    for (name, layer), (weight, bias) in zip(
        _layers(student), [*conv_params, linear_params], strict=True
    ):
        for attribute, value in (("W", weight), ("b", bias)):
            current = layer.attr(attribute)
            if isinstance(current, np.ndarray) and current.size != value.size:
                raise CheckFailed(
                    f"CNN.{name}.{attribute} has shape {current.shape}; expected "
                    f"{value.shape} (check the layer sizes your CNN builds)"
                )
            shape = current.shape if isinstance(current, np.ndarray) else value.shape
            layer.set(attribute, value.reshape(shape))


def _compare_layers(
    ctx: CheckContext, student: Remote, reference: ReferenceCNN, w: str, b: str, when: str
) -> None:
    expected = [
        *zip(getattr(reference, f"conv_{w}"), getattr(reference, f"conv_{b}"), strict=True),
        (getattr(reference.linear_layer, w), getattr(reference.linear_layer, b)),
    ]
    kind = "gradients" if w == "dW" else "values"
    for (name, layer), (w_ref, b_ref) in zip(_layers(student), expected, strict=True):
        ctx.expect_array(f"CNN.{name}.{w} {when}", layer.attr(w), w_ref, kind=kind)
        got_b = layer.attr(b)
        if isinstance(got_b, np.ndarray) and got_b.size == b_ref.size:
            b_ref = b_ref.reshape(got_b.shape)
        ctx.expect_array(f"CNN.{name}.{b} {when}", got_b, b_ref, kind=kind)


def _short(value: Any) -> str:
    plain = isinstance(value, str | int | float | type(None))
    text = repr(value) if plain else type(value).__name__
    return text[:40]
