"""torch.accuracy (grader/checks/accuracy.py) on scikit-learn's 8x8 digits: tiny and fast.

The grader records the student's model, verifies the recording and trains it itself, on
the trusted side (grader.graph); these tests show what that leaves a hostile model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.data import available, digits
from grader.outcomes import Outcome
from grader.results import TestResult as OneTest  # "Test*" names would be collected
from sandbox.inline_backend import InlineBackend, InlineSession
from tests.conftest import require
from tests.grader.torch_handins import assignment, one

MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, frozen=False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        if frozen:
            self.requires_grad_(False)

    def forward(self, x):
        return self.net(x)


class Centroids(nn.Module):
    '''Smuggled answers: class centroids computed elsewhere, no learning at all.'''
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.register_buffer("centres", torch.tensor(CENTRES))

    def forward(self, x):
        distances = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)
        return -distances + 0.0 * self.fc(x)


class Counted(Net):
    '''G6: logs every forward call to a file, and from the fifth call on (when the grader's
    training would be running) takes 50 extra steps of its own whenever it is run in train
    mode with gradients on.'''
    def forward(self, x):
        with open(LOG, "a") as log:
            print("forward", file=log)
        with open(LOG) as log:
            calls = log.read().count("forward")
        if self.training and torch.is_grad_enabled() and calls >= 5:
            optimiser = torch.optim.SGD(self.parameters(), lr=0.1)
            for _ in range(50):
                optimiser.zero_grad()
                self.net(x).pow(2).mean().backward()
                optimiser.step()
        return self.net(x)


class FirstStepLoad(Net):
    '''Weights trained elsewhere, loaded into the parameters at the first training step.'''
    def forward(self, x):
        if self.training and not getattr(self, "loaded", False):
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.full_like(p, 0.01))
            self.loaded = True
        return self.net(x)


class Spy(torch.autograd.Function):
    '''Reads each training label from the loss gradient (softmax - one_hot is smallest at
    the label) and remembers the input: a nearest-neighbour table learned outside the
    parameters.'''
    @staticmethod
    def forward(ctx, scores, x, memory):
        ctx.x, ctx.memory = x.detach().clone(), memory
        return scores.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.memory.append((ctx.x, grad.argmin(dim=1)))
        return grad, None, None


class Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.memory = []

    def forward(self, x):
        scores = self.fc(x)
        if self.training:
            return Spy.apply(scores, x, self.memory)
        if not self.memory:
            return scores
        seen = torch.cat([m[0] for m in self.memory])
        labels = torch.cat([m[1] for m in self.memory])
        nearest = torch.cdist(x, seen).argmin(dim=1)
        return nn.functional.one_hot(labels[nearest], 10).float() * 10 + 0.0 * scores


class Growing(Net):
    def forward(self, x):
        if self.training and not hasattr(self, "extra"):
            self.extra = nn.Linear(10, 10)
        return self.net(x)
"""

CONFIG = 'NET = {"optimizer": "adam", "lr": 0.01, "epochs": 2}\n'


@pytest.fixture(autouse=True)
def need_digits() -> None:
    require(available()["digits"], "scikit-learn's digits (scripts/setup.sh installs it)")


def accuracy(tmp_path: Path, extra: str = "", model: str = "models.Net",
             config: str = CONFIG, thresholds: str = "[[0.85, 1.0], [0.5, 0.5]]"
             ) -> tuple[Outcome, float, str]:
    result = accuracy_result(tmp_path, extra, model, config, thresholds)
    return result.outcome, result.score, result.output


def accuracy_result(tmp_path: Path, extra: str = "", model: str = "models.Net",
                    config: str = CONFIG, thresholds: str = "[[0.85, 1.0], [0.5, 0.5]]"
                    ) -> OneTest:
    centres = np.stack([digits().x_train[digits().y_train == c].reshape(-1, 64).mean(0)
                        for c in range(10)])
    tests = f"""
    [[tests]]
    name = "t"
    check = "torch.accuracy"
    points = 10
    [tests.params]
    model = "{model}"
    dataset = "digits"
    input_shape = [64]
    epochs = 3
    batch_size = 32
    lr = 0.01
    perturb = {{ noise = 0.02, shift = 0, contrast = 0.1 }}
    thresholds = {thresholds}
    {extra}
    """
    files = {"models.py": MODELS.replace("CENTRES", repr(centres.round(4).tolist()))
             .replace("LOG", repr(str(tmp_path / "forward.log"))), "config.py": config}
    spec, handin = assignment(tmp_path, tests, files)
    return one(spec, handin)


def test_a_learning_model_passes_with_its_curve_and_controls(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path)
    assert outcome is Outcome.PASSED and score == 10, output
    assert ("The grader trained models.Net's verified computation itself, from the grader's "
            "initialisation, with Adam (lr 0.01), batch 32: 3 epochs, 132 optimizer steps, "
            "4,224 examples seen (1,408 of the 1,438 digits training examples per epoch)") \
        in output
    assert "train loss  held-out acc" in output and "loss " in output
    assert "Control: before training your model scores" in output


def test_the_curves_and_the_final_accuracy_are_kept_for_the_results_page(
        tmp_path: Path) -> None:
    result = accuracy_result(tmp_path, thresholds="[[0.9999, 1.0], [0.5, 0.5]]")
    assert result.outcome is Outcome.FAILED  # kept on a failure too
    curves = result.extra_data["curves"]
    assert sorted(curves) == ["held_out_accuracy", "train_loss"]
    assert len(curves["train_loss"]) == len(curves["held_out_accuracy"]) == 3
    final = result.metrics["accuracy"]
    assert curves["held_out_accuracy"][-1] == final and 0.5 <= final < 0.9999
    assert result.to_gradescope()["extra_data"] == result.extra_data
@pytest.mark.parametrize("thresholds", ["[[0.85, 1.0]]", "[[0.9999, 1.0], [0.5, 0.5]]"])
def test_held_out_accuracy_is_reported_as_a_metric(tmp_path: Path, thresholds: str) -> None:
    """Passed or partly failed, the leaderboard gets the accuracy the report states."""
    result = accuracy_result(tmp_path, thresholds=thresholds)
    reported = re.search(r"Held-out accuracy ([0-9.]+)%", result.output)
    assert reported is not None, result.output
    assert set(result.metrics) == {"accuracy"}
    assert result.metrics["accuracy"] == pytest.approx(float(reported.group(1)) / 100, abs=6e-4)


def test_partial_credit_by_tier(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, thresholds="[[0.9999, 1.0], [0.5, 0.5]]")
    assert outcome is Outcome.FAILED and score == 5, output
    assert "(credit: ≥100% → 100%, ≥50% → 50%)" in output


def test_a_model_that_does_not_learn_gets_nothing_and_a_hint(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, "init_kwargs = { frozen = true }")
    assert score == 0 and outcome is Outcome.FAILED
    assert "did not rise above chance" in output


def test_smuggled_answers_fail_the_untrained_control(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, model="models.Centroids")
    assert score == 0
    assert "Before any training, your model classifies" in output
    assert "does not depend on model parameters" in output


def test_answers_learned_outside_the_parameters_gain_nothing(tmp_path: Path) -> None:
    """The spy's memory fills only while the student's code trains, and it never does: what
    the grader trains is the recorded computation (a Linear layer)."""
    outcome, score, output = accuracy(tmp_path, model="models.Leaky")
    assert outcome is Outcome.PASSED, output
    assert "The grader trained models.Leaky's verified computation itself" in output


def test_the_grader_counts_steps_and_no_student_code_runs_during_training(
        tmp_path: Path) -> None:
    """G6: however many steps the student's forward takes on its own, the grader trains; the
    student's forward runs only to be recorded and bound (4 calls), not once per step."""
    outcome, score, output = accuracy(tmp_path, model="models.Counted")
    assert outcome is Outcome.PASSED, output
    assert "132 optimizer steps, 4,224 examples seen" in output
    assert (tmp_path / "forward.log").read_text().count("forward") == 4


def test_weights_loaded_in_forward_are_refused(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, model="models.FirstStepLoad")
    assert score == 0
    assert "forward() changes parameter net.0.weight in place (aten.copy_.default)" in output


def test_a_model_that_changes_during_grading_fails(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, model="models.Growing")
    assert score == 0 and "layers changed while it was being graded" in output


def test_parameter_limit(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, "max_params = 1000")
    assert score == 0 and "2,410 parameters; the limit is 1,000, and the accuracy counts" in output


@pytest.mark.parametrize(("config", "text"), [
    (CONFIG, "Adam (lr 0.01), batch 32: 2 epochs"),
    ('NET = {"lr": 5.0}\n', "config.NET['lr'] = 5.0 is outside the allowed range [0.0001, 1]"),
    ('NET = {"epochs": 2, "seed": 1}\n', "config.NET sets seed; you may choose only"),
    ('NET = {"optimizer": "rmsprop"}\n', "'rmsprop' is not one of ['adam', 'sgd']"),
])
def test_student_config_is_bounded(tmp_path: Path, config: str, text: str) -> None:
    bounds = ('config = { name = "NET", bounds = { lr = [1e-4, 1], epochs = [1, 2], '
              'optimizer = ["adam", "sgd"] } }')
    outcome, score, output = accuracy(tmp_path, bounds, config=config)
    assert text in output


def test_budget_stops_training_between_epochs(tmp_path: Path) -> None:
    outcome, score, output = accuracy(tmp_path, "budget_s = 0")
    assert "Training stopped after 1 epochs: the training budget is 0 s." in output


def test_held_out_data_never_enters_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    original = InlineSession.request

    def recording(self: InlineSession, message: dict[str, Any], *args: Any) -> Any:
        sent.append(message)
        return original(self, message, *args)

    monkeypatch.setattr(InlineSession, "request", recording)
    outcome, _, output = accuracy(tmp_path)
    assert outcome is Outcome.PASSED, output
    arrays = [a for m in sent for a in _arrays(m)]
    held_out = digits().x_test.reshape(-1, 64)
    assert not any(a.shape == digits().y_test.shape and np.array_equal(a, digits().y_test)
                   for a in arrays)
    assert not any(a.shape == held_out.shape for a in arrays)  # not even perturbed
    assert max(len(a) for a in arrays if a.ndim == 2) < len(held_out)
    assert InlineBackend.name == "inline"


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays(v)]
    if isinstance(value, list):
        return [a for v in value for a in _arrays(v)]
    return []
