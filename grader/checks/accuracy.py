"""Accuracy on held-out data after the grader's own training loop.

The trusted side loads the data (``grader.data``), sends the training inputs and labels
and the held-out INPUTS into the sandbox (perturbed per attempt, so public images cannot
be looked up), drives training one epoch per request, gets predicted labels back and
computes accuracy here. Two controls catch models whose answers do not come from
training: the freshly built model and the model re-initialised after training must both
score near chance (G1, G2). The module tree must not change during grading (G4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import data as datasets
from grader.checks.torch_common import (
    Construction,
    ModuleInfo,
    counted_parameters,
    device,
    structure_changes,
    summary,
)
from grader.context import CheckContext, CheckFailed
from grader.plot import epoch_table
from grader.registry import check
from sandbox.session import Remote

TRAINING_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay")
DEFAULTS: dict[str, Any] = {"epochs": 1, "batch_size": 32, "lr": 1e-3, "optimizer": "adam",
                            "momentum": 0.0, "weight_decay": 0.0}
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
        """The curves as the result keeps them (``extra_data["curves"]``). The loss is
        what the student's process reported; the accuracies were computed here."""
        return {"train_loss": list(self.losses), "held_out_accuracy": list(self.accuracies)}


@check("torch.accuracy")
def accuracy(ctx: CheckContext) -> float | None:
    """Train the student's model with the grader's loop, then score held-out accuracy.

    params: ``model``, ``init_args``, ``init_kwargs``; ``dataset`` ("mnist5k", "digits",
    "fashion_mnist", or ``{name = "mnist_idx" | "cifar10", path = "data/mnist"}`` with the
    path relative to the assignment folder); ``train_size`` / ``test_size`` (stratified
    subsets); ``input_shape`` (one example's shape as the model gets it, e.g. [784]);
    training: ``epochs``, ``batch_size``, ``lr``, ``optimizer`` ("adam" | "sgd"),
    ``momentum``, ``weight_decay``, ``loss`` ("cross_entropy" on scores | "nll" on
    log-probabilities); ``config = {module = "config", name = "MLP", bounds = {lr =
    [1e-4, 0.1], epochs = [1, 5], optimizer = ["adam", "sgd"]}}`` lets the student choose
    the bounded keys (a dict in their file); ``thresholds = [[0.95, 1.0], [0.90, 0.5]]``
    ([min accuracy, fraction of the points], best first); ``perturb = {noise = 0.02,
    shift = 1}`` (or false); ``chance_margin`` (0.15: the controls fail above 1/classes +
    margin); ``max_params`` (optional limit checked on the trained model); ``budget_s``
    (no new epoch starts after this much training time); ``epoch_timeout_s``.
    """
    return AccuracyRun(ctx).grade()


class AccuracyRun:
    """One attempt: data, controls, training, evaluation, score."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.made = Construction.from_params(ctx)
        self.data = _dataset(ctx)
        shape = [int(d) for d in ctx.params.get("input_shape", self.data.x_train.shape[1:])]
        self.x_train = self.data.x_train.reshape(-1, *shape)
        held_out = self.data.x_test
        perturb = ctx.params.get("perturb", {})
        if perturb is not False and held_out.ndim == 4:
            held_out = datasets.perturb_images(held_out, ctx.rng, **dict(perturb or {}))
        held_out = held_out.reshape(-1, *shape)
        if held_out.dtype.kind == "f":  # token ids stay integers
            held_out = held_out.astype(np.float32)
        self.x_test = np.ascontiguousarray(held_out)
        self.chance_max = 1.0 / self.data.classes + float(ctx.params.get("chance_margin", 0.15))
        self.timeout = float(ctx.params.get("epoch_timeout_s", ctx.test.timeout_s))
        self.curve = Curve()
        self.final: float | None = None
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
        where = device(self.ctx)
        model = self.made.build(self.ctx)
        before = summary(self.ctx, model)
        self._control(model, "Before any training", where)
        self._train(model, settings, where, before)
        after = summary(self.ctx, model)
        final = self.final = self._accuracy(model, where)
        self.ctx.metrics["accuracy"] = final
        self.curve.accuracies[-1] = final
        self._same_structure(before, after, summary(self.ctx, model))
        self._limit(after)
        fraction = self._fraction(final)
        report = self._report(settings, where, final)
        if fraction > 0:
            self._control(model, "After re-initialising its parameters", where, reinit=True)
            if self.controls:
                untrained, reinitialised = self.controls
                report += (f"\nControls: the untrained model scores {untrained:.1%} and the "
                           f"re-initialised one {reinitialised:.1%} (chance "
                           f"{1 / self.data.classes:.0%}).")
        if fraction >= 1.0:
            self.ctx.notes.append(report)
            return None
        hint = f"\n{self._not_learning()}" if final <= self.chance_max else ""
        raise CheckFailed(report + hint, fraction)

    # -- configuration -----------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        settings = {k: self.ctx.params.get(k, DEFAULTS[k]) for k in TRAINING_KEYS}
        config = self.ctx.params.get("config")
        if config:
            settings.update(_student_config(self.ctx, dict(config)))
        settings["loss"] = str(self.ctx.params.get("loss", "cross_entropy"))
        return settings

    # -- training and evaluation -----------------------------------------------------

    def _train(self, model: Remote, settings: dict[str, Any], where: str,
               before: list[ModuleInfo]) -> None:
        trainer = self.ctx.session.routine(
            "torch_trainer", model, self.x_train, self.data.y_train,
            batch_size=int(settings["batch_size"]), lr=float(settings["lr"]),
            optimizer=str(settings["optimizer"]), loss=settings["loss"],
            momentum=float(settings["momentum"]), weight_decay=float(settings["weight_decay"]),
            seed=int(self.ctx.rng.integers(2**31)), device=where, timeout=self.timeout)
        if before[0].trainable == 0:
            self.remarks.append("None of your model's parameters require gradients.")
        budget = float(self.ctx.params.get("budget_s", float("inf")))
        spent = 0.0
        for epoch in range(int(settings["epochs"])):
            if spent > budget:
                self.remarks.append(f"Training stopped after {epoch} epochs: the training "
                                    f"budget is {budget:g} s.")
                break
            started = time.monotonic()
            report = self.ctx.session.routine("torch_train_epoch", trainer, timeout=self.timeout)
            self.curve.seconds.append(time.monotonic() - started)
            spent += self.curve.seconds[-1]
            loss = report.get("loss") if isinstance(report, dict) else None
            self.curve.losses.append(float(loss) if isinstance(loss, int | float) else None)
            last = epoch == int(settings["epochs"]) - 1
            self.curve.accuracies.append(0.0 if last else self._accuracy(model, where))
            self._report_epoch(epoch + 1, int(settings["epochs"]), last)
        if not self.curve.losses:
            raise CheckFailed("No epoch of training fitted in the time budget.")

    def _report_epoch(self, epoch: int, epochs: int, last: bool) -> None:
        """The curves so far, live on the results page (the last epoch's accuracy is
        measured after training, so it is not known yet)."""
        curves = self.curve.as_data()
        if last:
            curves["held_out_accuracy"][-1] = None
        self.ctx.report(epoch=epoch, epochs=epochs, curves=curves)

    def _accuracy(self, model: Remote, where: str) -> float:
        predicted = self.ctx.session.routine("torch_predict", model, self.x_test,
                                             device=where, timeout=self.timeout)
        if (type(predicted) is not np.ndarray or predicted.shape != (len(self.x_test),)
                or predicted.dtype.kind not in "iu"):
            raise CheckFailed("The sandbox returned malformed predictions for the held-out "
                              "inputs. This test gets no points.")
        return float(np.mean(predicted == self.data.y_test))

    def _control(self, model: Remote, when: str, where: str, reinit: bool = False) -> None:
        if self.ctx.params.get("controls", True) is False:
            return
        if reinit:
            self.ctx.session.routine("torch_reset_parameters", model,
                                     int(self.ctx.rng.integers(2**31)))
        score = self._accuracy(model, where)
        self.controls.append(score)
        if score > self.chance_max:
            raise CheckFailed(
                f"{when}, your model classifies {score:.1%} of the held-out inputs correctly "
                f"(chance is {1 / self.data.classes:.0%}, the control allows up to "
                f"{self.chance_max:.0%}): its accuracy does not depend on model parameters "
                f"learned in training. Predictions must come from the trained parameters, "
                f"not from stored answers or weights loaded from elsewhere.")

    def _same_structure(self, *summaries: list[ModuleInfo]) -> None:
        for later in summaries[1:]:
            changed = structure_changes(summaries[0], later)
            if changed:
                raise CheckFailed(changed)

    def _limit(self, rows: list[ModuleInfo]) -> None:
        limit = self.ctx.params.get("max_params")
        count = counted_parameters(rows)
        if limit is not None and count > int(limit):
            raise CheckFailed(f"After training your model has {count:,} parameters; the "
                              f"limit is {int(limit):,}.")

    def _not_learning(self) -> str:
        losses = [loss for loss in self.curve.losses if loss is not None]
        if losses and min(losses) < MEMORISED_LOSS:
            return MEMORISED
        return NOT_LEARNING

    # -- scoring ------------------------------------------------------------------------

    def _fraction(self, final: float) -> float:
        tiers = sorted(((float(a), float(f)) for a, f in self.ctx.params["thresholds"]),
                       reverse=True)
        return max((f for a, f in tiers if final >= a), default=0.0)

    def _report(self, settings: dict[str, Any], where: str, final: float) -> str:
        tiers = ", ".join(f"≥{float(a):.0%} → {float(f):.0%}"
                          for a, f in self.ctx.params["thresholds"])
        optimizer = {"adam": "Adam", "sgd": "SGD"}[str(settings["optimizer"])]
        return (
            f"Trained {self.made.target} with {optimizer} (lr {float(settings['lr']):g}), "
            f"batch {int(settings['batch_size'])}, {len(self.curve.losses)} epochs on "
            f"{len(self.x_train):,} {self.data.name} examples ({where}); held-out: "
            f"{len(self.x_test):,} examples.\n{self.curve.table()}\n"
            f"Held-out accuracy {final:.1%} (credit: {tiers})."
        ) + "".join(f"\n{remark}" for remark in self.remarks)


def _dataset(ctx: CheckContext) -> datasets.Dataset:
    spec = ctx.params.get("dataset", "mnist5k")
    options = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = str(options.pop("name"))
    try:
        found = datasets.load(name, ctx.spec.folder, **options)
    except datasets.DataError as exc:
        raise RuntimeError(f"the {name} data is not available: {exc}") from None
    train, test = ctx.params.get("train_size"), ctx.params.get("test_size")
    return found.subset(None if train is None else int(train), None if test is None else int(test))


def _student_config(ctx: CheckContext, config: dict[str, Any]) -> dict[str, Any]:
    """The student's bounded choices, e.g. ``MLP = {"lr": 1e-3, "epochs": 3}``."""
    module, name = str(config.get("module", "config")), str(config["name"])
    chosen = ctx.session.import_module(module).attr(name)
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
