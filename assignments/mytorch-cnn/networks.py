"""Checks of HW2P1's networks: the scanning-MLP CNNs (mlp_scan.py) and the CNN (hw2.py).

They do what the course's runner does and nothing more with the student's objects:
construct, ``init_weights`` (scanning), call through ``__call__`` (given code), ``backward``
(the CNN); they never call the given ``step`` or ``zero_grads``. The CNN is built with the
course's arguments and activations, on one example as the course tests it: the handout
leaves the loss's batch convention to HW1, and with one example every convention agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.api import CheckContext, CheckFailed, Mismatch, Remote, Tolerances, check

from .bug_variants import (
    CNN_DX_VARIANTS,
    DISTRIBUTED_SCAN_VARIANTS,
    SIMPLE_SCAN_VARIANTS,
    Variant,
    matching_variant,
)
from .handin import Renamed, student_class
from .models import (
    GRADED_CNN_CONFIG,
    MLP_WEIGHT_SHAPES,
    ReferenceCNN,
    distributed_mlp_weights,
    distributed_scanning_forward,
    distributed_scanning_weights,
    random_cnn_params,
    simple_scanning_forward,
    simple_scanning_weights,
)

SCAN_INPUT_SHAPE = (1, 24, 128)
FIRST_CONV_HINT = "If Conv1D fails too, fix that first."


def _simple_weights(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(shape) for shape in MLP_WEIGHT_SHAPES]


def _distributed_weights(rng: np.random.Generator) -> list[np.ndarray]:
    return list(distributed_mlp_weights(rng))


SCANNING: dict[str, tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any],
                          Sequence[Variant]]] = {
    "simple": ("CNN_SimpleScanningMLP", _simple_weights, simple_scanning_weights,
               simple_scanning_forward, SIMPLE_SCAN_VARIANTS),
    "distributed": ("CNN_DistributedScanningMLP", _distributed_weights,
                    distributed_scanning_weights, distributed_scanning_forward,
                    DISTRIBUTED_SCAN_VARIANTS),
}


class ScanningParams(Tolerances, Renamed):
    network: Literal["simple", "distributed"] = Field(description="which scanning MLP")


class CnnModelParams(Tolerances, Renamed):
    bias: Literal["random", "zero"] = Field("random", description="the layers' biases (the "
                                            "course's runner: zero)")


@check("mytorch_cnn.scanning_mlp", params=ScanningParams)
def scanning_mlp_check(ctx: CheckContext) -> float | None:
    """init_weights([w1, w2, w3]) then network(x (1, 24, 128)) against the reference. The
    distributed MLP's weights have the handout's sharing pattern (zeros elsewhere), as the
    course's have, so any copy of a shared block is right."""
    params: ScanningParams = ctx.params
    class_name, draw, to_conv, forward, variants = SCANNING[params.network]
    weights = draw(ctx.rng)
    x = ctx.rng.standard_normal(SCAN_INPUT_SHAPE)
    network = student_class(ctx, "mlp_scan", class_name).new()
    network.method("init_weights", weights)
    y = network.call(x)
    expected = forward(x, to_conv(*weights))

    def hint(mismatch: Mismatch) -> str | None:
        variant = matching_variant(variants, y, (x, *weights))
        return variant.hint if variant else FIRST_CONV_HINT

    ctx.expect_array(f"{class_name}(x)", y, expected, hint=hint, context=f"x of shape {x.shape}")
    return None


@check("mytorch_cnn.cnn_model", params=CnnModelParams)
def cnn_model_check(ctx: CheckContext) -> float | None:
    """hw2.CNN as the course builds it: CNN(x) and backward(labels) on one example; the
    output, dx and the first convolution's dW and db are compared, as the course does."""
    config = GRADED_CNN_CONFIG
    conv_params, linear_params = random_cnn_params(config, ctx.rng)
    params: CnnModelParams = ctx.params
    if params.bias == "zero":  # the course's runner: zero biases
        conv_params = [(w, np.zeros_like(b)) for w, b in conv_params]
        linear_params = (linear_params[0], np.zeros_like(linear_params[1]))
    reference = ReferenceCNN.from_config(config, conv_params, linear_params)
    student = _student_cnn(ctx)
    _load_cnn_params(student, conv_params, linear_params)
    x = ctx.rng.standard_normal((1, config.num_input_channels, config.input_width))
    labels = np.eye(config.num_linear_neurons)[ctx.rng.integers(0, config.num_linear_neurons, 1)]
    ctx.expect_array("CNN(x)", student.call(x), reference.forward(x),
                     hint=lambda _: FIRST_CONV_HINT)
    dx = student.method("backward", labels)
    dx_args = (conv_params, config.strides, linear_params, config.activations, x, labels)
    ctx.expect_array("CNN.backward(labels)", dx, reference.backward(labels), kind="gradients",
                     hint=lambda _: _variant_hint(CNN_DX_VARIANTS, dx, dx_args))
    first = _layers(student)[0][1]
    for attribute, expected in (("dW", reference.conv_dW[0]), ("db", reference.conv_db[0])):
        got = first.attr(attribute)
        if isinstance(got, np.ndarray) and got.size == expected.size:
            expected = expected.reshape(got.shape)
        ctx.expect_array(f"CNN.convolutional_layers[0].{attribute} after backward(labels)",
                         got, expected, kind="gradients")
    return None


def _variant_hint(variants: Sequence[Variant], got: Any, args: Sequence[object]) -> str | None:
    variant = matching_variant(variants, got, args)
    return variant.hint if variant else None


def _student_cnn(ctx: CheckContext) -> Remote:
    """CNN(128, 24, [56, 28, 14], [5, 6, 2], [1, 2, 2], 10, [Tanh(), ReLU(), Sigmoid()],
    randn, zeros, randn, SoftmaxCrossEntropy(), 1e-3), the course's call."""
    config = GRADED_CNN_CONFIG
    activation = ctx.session.import_module("activation")
    names = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}
    activations = [activation.get_object(names[a]).new() for a in config.activations]
    criterion = ctx.session.import_module("loss").get_object("SoftmaxCrossEntropy").new()
    numpy = ctx.session.import_module("numpy")
    randn, zeros = numpy.get_object("random").get_object("randn"), numpy.get_object("zeros")
    return student_class(ctx, "hw2", "CNN").new(
        config.input_width, config.num_input_channels, list(config.num_channels),
        list(config.kernel_sizes), list(config.strides), config.num_linear_neurons,
        activations, randn, zeros, randn, criterion, config.lr,
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
    """Copy the reference weights in, keeping the student's own shape for b (HW1's Linear
    may keep b as (1, out))."""
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
