"""The runner's session handling (grader/grade.py ``Sessions``): between tests, a
sandbox's leftover processes are cleared, or the sandbox is replaced; tests a student
sees later run later, in sandboxes of their own; a subset can be graded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader import grade as grade_module
from grader.grade import Sessions, grade_directory
from grader.outcomes import Outcome
from grader.spec import AssignmentSpec
from sandbox.backend import LocalBackend, SandboxConfig
from sandbox.session import Session, SessionDied, SessionLimits, StudentException
from tests.conftest import MYTORCH_SOLUTION


@dataclass
class FakeSession:
    fails_with: Exception | None = None
    resets: int = 0
    closed: bool = False
    dead: SessionDied | None = None
    deadline: float | None = None

    def reset_processes(self) -> int:
        self.resets += 1
        if self.fails_with is not None:
            raise self.fails_with
        return 3

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeBackend:
    name: str
    sessions: list[FakeSession] = field(default_factory=list)
    fails_with: Exception | None = None

    def start(self, config: SandboxConfig, limits: SessionLimits) -> FakeSession:
        self.sessions.append(FakeSession(self.fails_with))
        return self.sessions[-1]


def sessions_on(backend: FakeBackend, tmp_path: Path) -> Sessions:
    return Sessions(backend, SandboxConfig(submission_dir=tmp_path), SessionLimits())  # type: ignore[arg-type]


def test_between_tests_resets_the_live_sandbox(tmp_path: Path) -> None:
    backend = FakeBackend("process")
    sessions = sessions_on(backend, tmp_path)
    sessions.between_tests()  # nothing started yet: nothing to do
    assert backend.sessions == []
    first = sessions.get()
    sessions.between_tests()
    sessions.between_tests()
    assert first.resets == 2 and sessions.get() is first and sessions.started == 1


@pytest.mark.parametrize("failure", [SessionDied("timeout", "too slow"),
                                     StudentException("KeyError", "'reset'", "")])
def test_a_sandbox_that_does_not_reset_is_replaced(tmp_path: Path, failure: Exception) -> None:
    backend = FakeBackend("docker", fails_with=failure)
    sessions = sessions_on(backend, tmp_path)
    first = sessions.get()
    sessions.between_tests()
    assert first.closed and sessions.current is None
    assert sessions.get() is not first and sessions.started == 2


def test_the_unisolated_backend_is_never_reset(tmp_path: Path) -> None:
    backend = FakeBackend("none")
    sessions = sessions_on(backend, tmp_path)
    first = sessions.get()
    sessions.between_tests()
    assert first.resets == 0 and not first.closed


class BrokenHost:
    """A backend whose sandboxes never start (an engine down, a full disk ...)."""

    name = "broken"

    def start(self, config: SandboxConfig, limits: SessionLimits) -> FakeSession:
        raise SessionDied("start", "the sandbox could not start: engine unreachable")


def test_a_host_that_cannot_start_sandboxes_is_not_a_verdict_on_the_handin(
        mytorch_spec: AssignmentSpec) -> None:
    result = grade_directory(mytorch_spec, MYTORCH_SOLUTION, BrokenHost())  # type: ignore[arg-type]
    assert result.infrastructure_error is not None
    assert "engine unreachable" in result.infrastructure_error
    assert "Conv1D forward: " in result.infrastructure_error
    assert all(t.outcome is Outcome.ERROR for t in result.tests)


def test_a_working_host_reports_no_infrastructure_error(mytorch_spec: AssignmentSpec) -> None:
    result = grade_directory(mytorch_spec, MYTORCH_SOLUTION, LocalBackend())
    assert result.infrastructure_error is None and result.score == result.max_score


class CountingBackend:
    """The unisolated backend, counting the sandboxes it starts."""

    name = "none"

    def __init__(self) -> None:
        self.inner, self.started = LocalBackend(), 0

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        self.started += 1
        return self.inner.start(config, limits)


def test_tests_shown_later_run_later_each_in_sandboxes_of_their_own(
        mytorch_spec: AssignmentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = {"Multiple choice": "hidden", "Conv1D backward: dW": "after_due_date"}
    tests = tuple(t.model_copy(update={"visibility": shown.get(t.name, "visible")})
                  for t in mytorch_spec.tests[:5])
    spec = mytorch_spec.model_copy(update={"tests": tests})
    ran: list[str] = []
    real = grade_module._run_test

    def recording(spec: AssignmentSpec, test: Any, *args: Any) -> Any:
        ran.append(test.name)
        return real(spec, test, *args)

    monkeypatch.setattr(grade_module, "_run_test", recording)
    backend = CountingBackend()
    result = grade_directory(spec, MYTORCH_SOLUTION, backend)  # type: ignore[arg-type]
    assert [t.name for t in result.tests] == [t.name for t in tests]  # the spec's order
    assert result.score == result.max_score
    assert ran == ["Conv1D forward", "Conv1D backward: dx", "Conv1D backward: db",
                   "Conv1D backward: dW", "Multiple choice"]
    # One sandbox for the three visible tests, one each for the two others.
    assert backend.started == 3 and "sessions=3" in result.staff_log[0]


def test_only_grades_the_tests_named(mytorch_spec: AssignmentSpec) -> None:
    result = grade_directory(mytorch_spec, MYTORCH_SOLUTION, LocalBackend(),
                             only={"Conv1D backward: db", "Multiple choice"})
    assert [(t.number, t.name) for t in result.tests] == [
        ("1", "Multiple choice"), ("5", "Conv1D backward: db")]
    assert result.score == result.max_score == 10  # spring-2021 points: db is 5


class RuntimeRecordingBackend:
    """The unisolated backend, recording which runtime each sandbox was asked for."""

    name = "none"

    def __init__(self) -> None:
        self.inner, self.runtimes = LocalBackend(), []  # type: list[str]

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        self.runtimes.append(config.runtime_request().key)
        return self.inner.start(config, limits)


def test_tests_of_numpy_only_files_run_without_torch_where_another_file_may_import_it(
        mytorch_spec: AssignmentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    # mytorch-cnn lets hw2/hw2.py import torch ([policy] allow_in), so its runtime has it;
    # the tests of the layers and the scanning CNNs must not be able to reach it (12.5).
    assert mytorch_spec.runtime is not None and mytorch_spec.runtime.torch is not None
    runtimes: dict[str, str] = {}
    real = grade_module._run_test

    def recording(spec: AssignmentSpec, test: Any, index: int, seed: int,
                  sessions: Sessions, *args: Any) -> Any:
        runtimes[test.name] = sessions.config.runtime_request().key
        return real(spec, test, index, seed, sessions, *args)

    monkeypatch.setattr(grade_module, "_run_test", recording)
    backend = RuntimeRecordingBackend()
    result = grade_directory(mytorch_spec, MYTORCH_SOLUTION, backend)  # type: ignore[arg-type]
    assert result.score == result.max_score
    with_torch = {name for name, key in runtimes.items() if "-torch-" in key}
    assert with_torch == {"CNN model"}, runtimes
    assert sorted(backend.runtimes) == sorted({*runtimes.values()})  # one sandbox each
