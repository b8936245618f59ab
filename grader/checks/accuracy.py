"""Accuracy on held-out data after training by the grader, on the trusted side.

The student's model is built in the sandbox only to be recorded: its train-mode and
eval-mode computations are captured there, validated, rebuilt and bound to the model on
inputs it cannot predict (``grader.checks.torch_graph``). Training then happens in the
grader's trusted child (``grader.graph.train``): the grader initialises the parameters
(``init = "trusted"``, PyTorch's own layer defaults) or takes the student's initial
values (``init = "student"``, for handouts that let students choose), runs the optimiser
and counts every step and every example itself; no student code runs during training, so
weights loaded at the first step, extra epochs inside an epoch call or a training loop of
the student's own cannot happen. Held-out inputs (perturbed per attempt) never enter the
sandbox and held-out labels never leave the grader.

Controls: the model before training must score near chance (with ``init = "student"``
this catches initial weights trained elsewhere), and with ``init = "student"`` a second
run from the grader's own initialisation, trained the same way, must reach within
``init_margin`` of the student's run: the knowledge must come from training on the
grader's data, not from the initial values.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader import data, datasets
from grader.checks.constraints import output_layer
from grader.checks.torch_common import Construction, ModuleInfo, structure_changes, summary
from grader.checks.torch_graph import Verified, check_rules, verified
from grader.checks.torch_params import BuildsModel, Verification
from grader.context import CheckContext, CheckFailed
from grader.params import CheckParams
from grader.plot import epoch_table
from grader.registry import check

TRAINING_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay")
NOT_LEARNING = ("Your model's accuracy did not rise above chance: is it learning? Check that "
                "its parameters require gradients, that forward() uses them (no .detach()), "
                "and that every layer is created in __init__.")
MEMORISED_LOSS = 0.01
MEMORISED = ("Your model fits the training images perfectly (training loss near 0) but scores "
             "at chance on held-out images, which the grader perturbs slightly on every run: "
             "answers looked up from memorised images do not generalise.")


@dataclass
class Curve:
    losses: list[float | None] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def table(self) -> str:
        return epoch_table(self.losses, self.accuracies, self.seconds)

    def as_data(self) -> dict[str, list[float | None]]:
        """The curves as the result keeps them (``extra_data["curves"]``), all measured by
        the grader's own training."""
        return {"train_loss": list(self.losses), "held_out_accuracy": list(self.accuracies)}


class Perturb(CheckParams):
    """``grader.data.perturb_images``' arguments for held-out images."""

    noise: float = Field(default=0.02, ge=0, description="std of the Gaussian noise")
    shift: int = Field(default=1, ge=0, description="the most pixels an image moves along "
                       "each axis")
    contrast: float = Field(default=0.0, ge=0, le=1, description="images are scaled by a "
                            "factor in [1 - contrast, 1]")


class AccuracyParams(BuildsModel, Verification):
    """``torch.accuracy``: see its docstring."""

    dataset: str | dict[str, Any] = Field("mnist5k", description="a registered data set's "
                                          "name, or {name = ..., ...its options}")
    train_size: int | None = Field(None, ge=1, description="a stratified subset of the "
                                   "training examples")
    test_size: int | None = Field(None, ge=1, description="a stratified subset of the "
                                  "held-out examples")
    input_shape: list[int] | None = Field(None, description="one example's shape as the "
                                          "model gets it (default: the data set's)")
    epochs: int = Field(1, ge=1, description="training epochs")
    batch_size: int = Field(32, ge=1, description="training batch size")
    lr: float = Field(1e-3, gt=0, description="learning rate")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="the optimiser")
    momentum: float = Field(0.0, ge=0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, description="weight decay")
    loss: Literal["auto", "cross_entropy", "nll"] = Field("auto", description="auto: cross "
                                                          "entropy of what the model returns")
    config: dict[str, Any] | None = Field(None, description="the student's bounded choice of "
                                          "training settings: {module, name, bounds, "
                                          "optional}")
    thresholds: list[tuple[float, float]] = Field(description="[min accuracy, fraction of "
                                                  "the points] pairs, best first")
    perturb: Perturb | Literal[False] = Field(default_factory=lambda: Perturb(),
                                              description="how held-out images are perturbed "
                                              "per attempt {noise, shift, contrast}, or false")
    chance_margin: float = Field(0.15, ge=0, description="the before-training control fails "
                                 "above 1/classes + this")
    controls: bool = Field(True, description="run the before-training control")
    init: Literal["trusted", "student"] = Field("trusted", description="who initialises the "
                                                "parameters")
    keep: list[str] = Field(default_factory=list, description="globs of parameters that keep "
                            "the student's values under init = \"trusted\"")
    max_kept: int = Field(0, ge=0, description="the most elements keep may keep (0: any)")
    init_margin: float = Field(0.05, ge=0, description="how much better than the grader's "
                               "own initialisation the student's may train")
    max_params: int | None = Field(None, ge=0, description="the handout's parameter limit")
    max_hidden_units: int | None = Field(None, ge=0, description="the handout's hidden-unit "
                                         "limit")
    eval_batch: int = Field(250, ge=1, description="evaluation batch size")
    budget_s: float = Field(float("inf"), ge=0, description="no new epoch starts after this "
                            "much training time")
    epoch_timeout_s: float | None = Field(None, gt=0, description="seconds per epoch "
                                          "(default: the test's timeout_s)")


@check("torch.accuracy", params=AccuracyParams)
def accuracy(ctx: CheckContext) -> float | None:
    """Train the student's verified model with the grader's loop, score held-out accuracy.

    params: ``model``, ``init_args``, ``init_kwargs``; ``dataset`` ("mnist5k", "digits",
    "fashion_mnist", or ``{name = "mnist_idx" | "cifar10", path = "data/mnist"}`` with the
    path relative to the assignment folder); ``train_size`` / ``test_size`` (stratified
    subsets); ``input_shape`` (one example's shape as the model gets it, e.g. [784]);
    training: ``epochs``, ``batch_size``, ``lr``, ``optimizer`` ("adam" | "sgd"),
    ``momentum``, ``weight_decay``, ``loss`` ("auto", the default: categorical cross
    entropy of what the model returns, -log p when its output is a softmax, cross entropy
    on scores otherwise | "cross_entropy" on scores | "nll" on log-probabilities);
    ``config = {module = "config", name = "MLP", bounds = {lr = [1e-4, 0.1], epochs =
    [1, 5], optimizer = ["adam", "sgd"]}}`` lets the student choose
    the bounded keys (a dict in their file; ``optional = true``: the spec's values when the
    file does not define it); ``thresholds = [[0.95, 1.0], [0.90, 0.5]]``
    ([min accuracy, fraction of the points], best first); ``perturb = {noise = 0.02,
    shift = 1}`` (or false); ``chance_margin`` (0.15: the before-training control fails
    above 1/classes + margin); ``init`` ("trusted" | "student"), ``keep`` (globs of
    parameters that keep the student's values under "trusted", e.g. hand-made frozen
    filters) with ``max_kept`` (elements, default 0 = any), ``init_margin`` (0.05);
    ``max_params`` and ``max_hidden_units`` (the handout's limits: the accuracy counts
    only for a model within them); ``eval_batch`` (250); ``budget_s`` (no new epoch
    starts after this much training time); ``epoch_timeout_s``; and the verification
    parameters of ``grader.checks.torch_graph`` (``allowed``, ``builtin_functions``,
    ``banned_ops``, ``frozen_ops``, ``max_stored``).
    """
    return AccuracyRun(ctx).grade()


class AccuracyRun:
    """One attempt: data, recording, controls, trusted training, evaluation, score."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.params: AccuracyParams = ctx.params
        self.made = Construction.from_params(ctx)
        self.data = _dataset(ctx)
        given = self.params.input_shape
        shape = [int(d) for d in (given if given is not None else self.data.x_train.shape[1:])]
        self.shape = shape
        self.x_train = np.ascontiguousarray(self.data.x_train.reshape(-1, *shape))
        held_out = self.data.x_test
        perturb = self.params.perturb
        if perturb is not False and held_out.ndim == 4:
            held_out = data.perturb_images(held_out, ctx.rng, **perturb.model_dump())
        held_out = held_out.reshape(-1, *shape)
        if held_out.dtype.kind == "f":  # token ids stay integers
            held_out = held_out.astype(np.float32)
        self.x_test = np.ascontiguousarray(held_out)
        self.chance_max = 1.0 / self.data.classes + self.params.chance_margin
        timeout = self.params.epoch_timeout_s
        self.timeout = float(timeout if timeout is not None else ctx.test.timeout_s)
        self.eval_batch = min(self.params.eval_batch, len(self.x_test))
        self.curve = Curve()
        self.final: float | None = None
        self.steps = self.examples = 0
        self.remarks: list[str] = []
        self.controls: list[float] = []

    def grade(self) -> float | None:
        try:
            return self._grade()
        finally:  # kept whether the test passes or fails, for the plot on the results page
            if self.curve.losses:
                self.ctx.extra["curves"] = self.curve.as_data()

    def _grade(self) -> float | None:
        settings = self._settings()
        model = self.made.build(self.ctx)
        before = summary(self.ctx, model)
        with verified(self.ctx, model) as v:
            self._record(v, settings, before)
            policy = self.params.init
            final = self.final = self._run(v, settings, policy, self.curve)
            self.ctx.metrics["accuracy"] = final
            fraction = self._fraction(final)
            report = self._report(settings, final, policy)
            if policy == "student" and fraction > 0:
                report += self._reinit_control(v, settings, final)
        if fraction >= 1.0:
            self.ctx.notes.append(report)
            return None
        hint = f"\n{self._not_learning()}" if final <= self.chance_max else ""
        raise CheckFailed(report + hint, fraction)

    # -- configuration -----------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        settings = {k: getattr(self.params, k) for k in TRAINING_KEYS}
        config = self.params.config
        if config:
            settings.update(_student_config(self.ctx, dict(config)))
        settings["loss"] = self.params.loss
        return settings

    # -- recording -------------------------------------------------------------------

    def _record(self, v: Verified, settings: dict[str, Any], before: list[ModuleInfo]) -> None:
        """Eval pass on evaluation batches and train pass on training batches, each bound
        to the sandbox's model on noisy training images it cannot predict."""
        label = self.made.class_name
        found = v.record("eval", [self._noisy(self.eval_batch)], train=False)
        v.bind("eval", [self._noisy(self.eval_batch)])
        check_rules(self.ctx, found, label)
        batch = int(settings["batch_size"])
        if batch > len(self.x_train):
            raise CheckFailed(f"batch size {batch} is larger than the training set.")
        def unchanged() -> None:
            changed = structure_changes(before, summary(self.ctx, v.model))
            if changed:
                raise CheckFailed(changed)

        train = v.record("train", [self._noisy(batch)], train=True, then=unchanged)
        v.bind("train", [self._noisy(batch)])
        check_rules(self.ctx, train, f"{label} in train mode")
        self._limits(found)

    def _noisy(self, count: int) -> np.ndarray:
        rows = self.ctx.rng.choice(len(self.x_train), count, replace=False)
        x = self.x_train[rows]
        if x.dtype.kind != "f":
            return np.ascontiguousarray(x)
        noise = self.ctx.rng.normal(0.0, 0.02, x.shape)
        return np.ascontiguousarray(x + noise, dtype=np.float32)

    def _limits(self, found: Any) -> None:
        label = self.made.class_name
        limit = self.params.max_params
        count = int(found.facts["param_elements"])
        if limit is not None and count > int(limit):
            raise CheckFailed(f"{label} has {count:,} parameters; the limit is {int(limit):,}, "
                              f"and the accuracy counts only for a model within it.")
        units = self.params.max_hidden_units
        widths = [int(layer["width"]) for layer in found.layers]
        outputs = math.prod(found.facts["output_shapes"][0][1:])
        hidden = sum(widths) - widths[output_layer(widths, outputs)] if widths else 0
        if units is not None and hidden > int(units):
            raise CheckFailed(f"{label} has {hidden} hidden units; the limit is "
                              f"{int(units)}, and the accuracy counts only for a model within "
                              f"it.")

    # -- training and evaluation -----------------------------------------------------

    def _run(self, v: Verified, settings: dict[str, Any], policy: str, curve: Curve) -> float:
        """Initialise, control, train epoch by epoch, evaluate; returns the final
        accuracy. Everything here runs in the trusted child."""
        keep = list(self.params.keep)
        init = v.request("init", policy=policy, seed=int(self.ctx.rng.integers(2**31)),
                         keep=keep)
        cap = self.params.max_kept
        if policy == "trusted" and cap and int(init["kept_elements"]) > cap:
            raise CheckFailed(f"The parameters that keep your values ({', '.join(init['kept'])}) "
                              f"hold {init['kept_elements']:,} numbers; at most {cap:,} may.")
        if curve is self.curve:
            self._control(v, "Before any training")
        v.request("data", x=self.x_train, y=np.ascontiguousarray(self.data.y_train),
                  timeout=self.timeout)
        budget = self.params.budget_s
        spent, report = 0.0, {}
        for epoch in range(int(settings["epochs"])):
            if spent > budget:
                self.remarks.append(f"Training stopped after {epoch} epochs: the training "
                                    f"budget is {budget:g} s.")
                break
            started = time.monotonic()
            report = v.request("epoch", timeout=self.timeout,
                               batch_size=int(settings["batch_size"]),
                               optimizer=str(settings["optimizer"]), lr=float(settings["lr"]),
                               momentum=float(settings["momentum"]),
                               weight_decay=float(settings["weight_decay"]),
                               loss=settings["loss"], seed=int(self.ctx.rng.integers(2**31)))
            curve.seconds.append(time.monotonic() - started)
            spent += curve.seconds[-1]
            loss = report.get("loss")
            curve.losses.append(float(loss) if isinstance(loss, int | float) else None)
            curve.accuracies.append(self._accuracy(v))
            if curve is self.curve:  # live on the results page
                self.ctx.report(epoch=epoch + 1, epochs=int(settings["epochs"]),
                                curves=curve.as_data())
        if not curve.losses:
            raise CheckFailed("No epoch of training fitted in the time budget.")
        self.steps, self.examples = int(report["steps"]), int(report["examples"])
        return curve.accuracies[-1]

    def _accuracy(self, v: Verified) -> float:
        predicted = v.request("predict", x=self.x_test, batch=self.eval_batch,
                              timeout=self.timeout)
        if (type(predicted) is not np.ndarray or predicted.shape != (len(self.x_test),)
                or predicted.dtype.kind not in "iu"):
            raise RuntimeError("the trusted child returned malformed predictions")
        return float(np.mean(predicted == self.data.y_test))

    def _control(self, v: Verified, when: str) -> None:
        if not self.params.controls:
            return
        score = self._accuracy(v)
        self.controls.append(score)
        if score > self.chance_max:
            raise CheckFailed(
                f"{when}, your model classifies {score:.1%} of the held-out inputs correctly "
                f"(chance is {1 / self.data.classes:.0%}, the control allows up to "
                f"{self.chance_max:.0%}): its accuracy does not depend on model parameters "
                f"learned in training. Predictions must come from the trained parameters, "
                f"not from stored answers or weights loaded from elsewhere.")

    def _reinit_control(self, v: Verified, settings: dict[str, Any], final: float) -> str:
        """The same training from the grader's own initialisation must get within
        ``init_margin`` of the student's run."""
        margin = self.params.init_margin
        again = self._run(v, settings, "trusted", Curve())
        line = (f"\nControl: trained the same way from the grader's own initialisation, "
                f"your model reaches {again:.1%}.")
        if final > again + margin:
            raise CheckFailed(
                self._report(settings, final, "student") + line + f" Your initial values "
                f"reach {final - again:.1%} more, beyond the {margin:.0%} that chance allows: "
                f"they already hold what training should learn. Initialise with random values.")
        return line

    def _not_learning(self) -> str:
        losses = [loss for loss in self.curve.losses if loss is not None]
        if losses and min(losses) < MEMORISED_LOSS:
            return MEMORISED
        return NOT_LEARNING

    # -- scoring ------------------------------------------------------------------------

    def _fraction(self, final: float) -> float:
        tiers = sorted(self.params.thresholds, reverse=True)
        return max((f for a, f in tiers if final >= a), default=0.0)

    def _report(self, settings: dict[str, Any], final: float, policy: str) -> str:
        tiers = ", ".join(f"≥{float(a):.0%} → {float(f):.0%}"
                          for a, f in self.params.thresholds)
        optimizer = {"adam": "Adam", "sgd": "SGD"}[str(settings["optimizer"])]
        epochs = len(self.curve.losses)
        start = ("your model's own initial values" if policy == "student"
                 else "the grader's initialisation")
        control = (f"\nControl: before training your model scores {self.controls[0]:.1%} "
                   f"(chance {1 / self.data.classes:.0%})." if self.controls else "")
        return (
            f"The grader trained {self.made.target}'s verified computation itself, from "
            f"{start}, with {optimizer} (lr {float(settings['lr']):g}), batch "
            f"{int(settings['batch_size'])}: {epochs} epochs, {self.steps:,} optimizer steps, "
            f"{self.examples:,} examples seen ({self.examples // max(epochs, 1):,} of the "
            f"{len(self.x_train):,} {self.data.name} training examples per epoch); held-out: "
            f"{len(self.x_test):,} examples.\n"
            f"{self.curve.table()}\nHeld-out accuracy {final:.1%} (credit: {tiers})."
        ) + control + "".join(f"\n{remark}" for remark in self.remarks)


def _dataset(ctx: CheckContext) -> data.Dataset:
    params: AccuracyParams = ctx.params
    spec = params.dataset
    options = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = str(options.pop("name"))
    try:
        found = datasets.load(name, ctx.spec.folder, **options)
    except data.DataError as exc:
        raise RuntimeError(f"the {name} data is not available: {exc}") from None
    return found.subset(params.train_size, params.test_size)


def _student_config(ctx: CheckContext, config: dict[str, Any]) -> dict[str, Any]:
    """The student's bounded choices, e.g. ``MLP = {"lr": 1e-3, "epochs": 3}``."""
    module, name = str(config.get("module", "config")), str(config["name"])
    imported = ctx.session.import_module(module)
    if config.get("optional") and ctx.session.import_module("builtins").attr(
            "hasattr").call(imported, name) is not True:
        return {}
    chosen = imported.attr(name)
    label = f"{module}.{name}"
    if not isinstance(chosen, dict):
        raise CheckFailed(f"{label} should be a dict of training settings, got {chosen!r:.60}.")
    bounds = dict(config.get("bounds", {}))
    unknown = sorted(set(chosen) - set(bounds))
    if unknown:
        raise CheckFailed(f"{label} sets {', '.join(unknown)}; you may choose only "
                          f"{', '.join(sorted(bounds))}.")
    for key, value in chosen.items():
        allowed = bounds[key]
        if all(isinstance(a, str) for a in allowed):
            if value not in allowed:
                raise CheckFailed(f"{label}[{key!r}] = {value!r} is not one of {allowed}.")
        elif not (isinstance(value, int | float) and not isinstance(value, bool)
                  and float(allowed[0]) <= value <= float(allowed[1])):
            raise CheckFailed(f"{label}[{key!r}] = {value!r} is outside the allowed range "
                              f"[{allowed[0]}, {allowed[1]}].")
    return chosen
