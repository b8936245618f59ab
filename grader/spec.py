"""Assignment specs: one folder per assignment, described by ``spec.toml``.

A folder holds ``spec.toml`` (points, visibility, limits, checks), and optionally
``checks.py`` (trusted check code of a course's own), ``solution/``,
``handout/``, ``bugs/`` and ``public_data/``. Loading validates everything
and reports problems as sentences a TA can act on.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "reference" / "assignments"


class SpecError(Exception):
    """An assignment folder that cannot be used, with the reasons."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Validated per field, so the error names where the bad path is (tests.1.files)."""
    for path in paths:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"{path!r}: file patterns must be relative to the handin")
    return paths


class TestSpec(Strict):
    name: str = Field(min_length=1, max_length=200)
    check: str = Field(min_length=1)
    points: float = Field(ge=0)
    visibility: Visibility = "visible"
    files: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    tags: tuple[str, ...] = ()

    _files_relative = field_validator("files")(_relative)


class SandboxSpec(Strict):
    memory_mb: int = Field(default=4096, ge=256, le=262144)
    cpu_seconds: int = Field(default=900, ge=1)
    call_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    max_processes: int = Field(default=64, ge=4)
    tmp_mb: int = Field(default=256, ge=1)
    threads: int = Field(default=1, ge=1, le=64)
    gpu: bool = False
    # The whole submission's time, all tests together (None: the sum of their timeouts):
    # a handin whose every call runs just under its limit cannot hold a grader longer.
    total_timeout_s: float | None = Field(default=None, gt=0, le=86400)


class PolicySpec(Strict):
    forbidden_imports: tuple[str, ...] = ()
    reason: str = "this assignment does not allow that package"


class SubmissionSpec(Strict):
    top_level: tuple[str, ...] = ()
    required_files: tuple[str, ...] = ()
    max_bytes: int = Field(default=16 << 20, ge=1)

    _files_relative = field_validator("required_files")(_relative)


class LeaderboardSpec(Strict):
    """One leaderboard column: a metric that a test's check reports (e.g. ``accuracy``)."""

    name: str = Field(min_length=1, max_length=100)
    test: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    order: Literal["asc", "desc"] = "desc"


class AssignmentSpec(Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str
    description: str = ""
    # Not min_length: that also fires, misleadingly, when the only test is invalid.
    tests: tuple[TestSpec, ...]
    sandbox: SandboxSpec = SandboxSpec()
    policy: PolicySpec = PolicySpec()
    submission: SubmissionSpec = SubmissionSpec()
    leaderboard: tuple[LeaderboardSpec, ...] = ()
    folder: Path = Path(".")

    @field_validator("tests")
    @classmethod
    def unique_names(cls, tests: tuple[TestSpec, ...]) -> tuple[TestSpec, ...]:
        if not tests:
            raise ValueError("an assignment needs at least one [[tests]] table")
        names = [t.name for t in tests]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"test names must be unique; repeated: {', '.join(duplicates)}")
        return tests

    @model_validator(mode="after")
    def leaderboard_names_tests(self) -> AssignmentSpec:
        tests = {t.name for t in self.tests}
        names = [entry.name for entry in self.leaderboard]
        for index, entry in enumerate(self.leaderboard):
            if entry.test not in tests:
                raise ValueError(f"leaderboard.{index}.test: {entry.test!r} is not the name of "
                                 "a test in this assignment")
            if names.count(entry.name) > 1:
                raise ValueError(f"leaderboard names must be unique; repeated: {entry.name}")
        return self

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def tests_timeout_s(self) -> float:
        """The test timeouts added up: the longest an honest grading may need."""
        return sum(t.timeout_s for t in self.tests)

    @property
    def time_budget_s(self) -> float:
        """How long one submission's grading may take in all (``[sandbox]
        total_timeout_s``, at most the test timeouts added up)."""
        total = self.sandbox.total_timeout_s
        return self.tests_timeout_s if total is None else min(total, self.tests_timeout_s)

    @property
    def public_data(self) -> Path | None:
        folder = self.folder / "public_data"
        return folder if folder.is_dir() else None


def load_spec(folder: Path) -> AssignmentSpec:
    """Read and validate ``folder/spec.toml``; SpecError explains any problem."""
    path = folder / "spec.toml"
    if not path.is_file():
        raise SpecError(f"{folder}: no spec.toml found (every assignment folder needs one)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    try:
        return AssignmentSpec.model_validate({**raw, "folder": folder.resolve()})
    except ValidationError as exc:
        raise SpecError(f"{path}:\n" + _explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)


def builtin_assignments() -> dict[str, Path]:
    """Slug -> folder of every built-in assignment."""
    return {
        folder.name: folder
        for folder in sorted(BUILTIN_ROOT.iterdir())
        if (folder / "spec.toml").is_file()
    }


def resolve_assignment(name_or_path: str) -> AssignmentSpec:
    """A built-in slug or a path to an assignment folder."""
    builtins = builtin_assignments()
    if name_or_path in builtins:
        return load_spec(builtins[name_or_path])
    folder = Path(name_or_path)
    if folder.is_dir():
        return load_spec(folder)
    known = ", ".join(builtins) or "none"
    raise SpecError(f"no assignment called {name_or_path!r} (built-in: {known})")
