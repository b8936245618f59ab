"""Shared fixtures.

In CI (CI=true) a test whose infrastructure is missing fails; elsewhere it skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.backend import LocalBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent
MYTORCH_SOLUTION = ROOT / "assignments/mytorch-cnn/solution"


def require(available: bool, what: str) -> None:
    """Fail in CI, skip elsewhere, when ``what`` is not available."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available on this machine")


@pytest.fixture
def process_backend() -> ProcessBackend:
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    return ProcessBackend()


@pytest.fixture(params=["process", "none"])
def any_backend(request: pytest.FixtureRequest) -> ProcessBackend | LocalBackend:
    if request.param == "none":
        return LocalBackend()
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    return ProcessBackend()


@pytest.fixture(scope="session")
def mytorch_spec() -> AssignmentSpec:
    return resolve_assignment("mytorch-cnn")
