"""Assignment specs: one folder per assignment, described by ``spec.toml``.

A folder holds ``spec.toml`` (points, visibility, limits, checks), and optionally
``checks.py`` (trusted check code of a course's own), ``solution/``,
``handout/``, ``bugs/`` and ``public_data/``. Loading validates everything
and reports problems as sentences a TA can act on.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
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
# The built-in course folders (``assignments/<slug>/``), next to dlgrade's packages in a
# checkout and in a non-editable install alike (pyproject.toml ships them as data).
BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "assignments"


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
    # The keys of ``params`` laid under from [defaults.params] (set by with_defaults): a
    # check that does not take one of them is not given it (grader.params).
    defaulted_params: tuple[str, ...] = ()

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
    # Handin files (patterns) that the handout lets import those packages, e.g. given code
    # the course wrote with ``import torch``; everywhere else the rule holds, also at run
    # time for imports made while such a file's code runs.
    allow_in: tuple[str, ...] = ()

    _allow_relative = field_validator("allow_in")(_relative)


class SubmissionSpec(Strict):
    top_level: tuple[str, ...] = ()
    required_files: tuple[str, ...] = ()
    max_bytes: int = Field(default=16 << 20, ge=1)
    # Handin folders put first on the sandbox's sys.path, in order ("" = the handin root,
    # which is also the working directory), as the course's own runner has them.
    python_path: tuple[str, ...] = ("",)

    _files_relative = field_validator("required_files")(_relative)

    @field_validator("python_path")
    @classmethod
    def folders_of_the_handin(cls, folders: tuple[str, ...]) -> tuple[str, ...]:
        for folder in folders:
            parts = folder.split("/")
            if folder.startswith("/") or "\\" in folder or any(
                    part in ("..", ".") for part in parts) or (folder and "" in parts):
                raise ValueError(f"{folder!r}: python_path entries are folders relative to "
                                 "the handin root, like \"mytorch\" (\"\" is the root), "
                                 "without '..'")
        if len(set(folders)) != len(folders):
            raise ValueError("python_path names a folder twice")
        return folders


RELEASE = r"^\d+\.\d+(\.\d+)?$"


class RuntimeSpec(Strict):
    """``[runtime]``: the sandbox's NumPy and (optional) PyTorch releases. Without a torch
    key torch is not installed in the sandbox at all (sandbox.runtimes)."""

    numpy: str = Field(pattern=RELEASE)
    torch: str | None = Field(default=None, pattern=RELEASE)


class GivenSpec(Strict):
    """Code the course hands out and students are told not to change (``[[given]]``): a
    whole file, or some of its classes, functions and methods (``CNN.step``). Checks never
    grade it; they call it only where the course's own grader does (``exercised``)."""

    file: str = Field(min_length=1)
    symbols: tuple[str, ...] = ()
    exercised: bool = False
    note: str = ""

    _file_relative = field_validator("file")(lambda v: _relative((v,))[0])


class RecogniseRule(Strict):
    """One fact about a handin's source: ``file`` exists and, optionally, defines (or lacks)
    a top-level class, function or name; or, with ``absent``, the handin has no such file."""

    file: str = Field(min_length=1)
    defines: str | None = None
    lacks: str | None = None
    absent: bool = False

    @model_validator(mode="after")
    def absent_alone(self) -> RecogniseRule:
        if self.absent and (self.defines is not None or self.lacks is not None):
            raise ValueError("a rule with absent = true cannot also say defines or lacks")
        return self

    _file_relative = field_validator("file")(lambda v: _relative((v,))[0])


class TestOverride(Strict):
    """What a variant changes in one test."""

    points: float | None = Field(default=None, ge=0)
    params: dict[str, Any] | None = None
    visibility: Visibility | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=3600)


class VariantSpec(Strict):
    """One version of the handout (``[[variants]]``, see grader/variants.py)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str = ""
    recognise: tuple[RecogniseRule, ...] = ()
    drop: tuple[str, ...] = ()
    tests: dict[str, TestOverride] = Field(default_factory=dict)
    required_files: tuple[str, ...] | None = None

    _files_relative = field_validator("required_files")(
        lambda v: v if v is None else _relative(v))


class OtherHandout(Strict):
    """A version of the homework this assignment does not grade (``[[other_handouts]]``): a
    handin recognised as it is not graded, and the student reads ``message``, not a list of
    files missing for a homework they did not do (see grader/variants.py)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    recognise: tuple[RecogniseRule, ...] = Field(min_length=1)
    message: str = Field(min_length=1, max_length=2000)


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
    # None: the worker's own NumPy, and its PyTorch unless the policy forbids torch.
    runtime: RuntimeSpec | None = None
    leaderboard: tuple[LeaderboardSpec, ...] = ()
    given: tuple[GivenSpec, ...] = ()
    # The handout version that grades every handin, or "auto": recognise it per handin.
    variant: str = "auto"
    variants: tuple[VariantSpec, ...] = ()
    other_handouts: tuple[OtherHandout, ...] = ()
    variant_title: str = ""  # set on a spec that has one variant applied
    folder: Path = Path(".")
    default_params: tuple[str, ...] = ()  # the keys of [defaults.params] (with_defaults)

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

    @model_validator(mode="after")
    def variants_name_tests(self) -> AssignmentSpec:
        names = [variant.name for variant in self.variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(repeated)}")
        if self.variant != "auto" and self.variant not in names and (
                self.variants or not self.variant_title):
            known = ", ".join(names) or "none"
            raise ValueError(f"variant: {self.variant!r} is neither \"auto\" nor the name of "
                             f"one of the [[variants]] (known: {known})")
        tests = {t.name for t in self.tests}
        for index, variant in enumerate(self.variants):
            unknown = sorted((set(variant.drop) | set(variant.tests)) - tests)
            if unknown:
                raise ValueError(f"variants.{index} ({variant.name}) names {', '.join(unknown)}, "
                                 "which is not a test of this assignment")
            if tests <= set(variant.drop):
                raise ValueError(f"variants.{index} ({variant.name}) drops every test")
        return self

    def with_variant(self, name: str) -> AssignmentSpec:
        """This spec as the handout version ``name`` grades: its tests, points and params."""
        from grader import variants

        for variant in self.variants:
            if variant.name == name:
                return AssignmentSpec.model_validate(variants.apply(self, variant))
        raise SpecError(f"{self.slug} has no handout variant {name!r} "
                        f"(known: {', '.join(v.name for v in self.variants) or 'none'})")

    def pinned(self, name: str) -> AssignmentSpec:
        """A deployment's choice: every handin is graded as handout version ``name``
        (or recognised per handin with "auto")."""
        if name != "auto":
            self.with_variant(name)  # raises for an unknown name
        return self.model_copy(update={"variant": name})

    @property
    def max_score(self) -> float:
        """The points a handin can get (with variants: the most of any handout version)."""
        if self.variants:
            return max(self.with_variant(v.name).max_score for v in self.variants)
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


class DefaultsSpec(Strict):
    """``[defaults]``: what every test of the assignment has unless it says otherwise."""

    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    files: tuple[str, ...] | None = None
    visibility: Visibility | None = None


def with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a parsed spec.toml) with its ``[defaults]`` laid under every test: a
    test's own params win key by key, its own timeout_s, files and visibility win whole."""
    defaults = DefaultsSpec.model_validate(raw.get("defaults", {}))
    tests = []
    for test in raw.get("tests", []):
        if not isinstance(test, dict):
            tests.append(test)
            continue
        merged = dict(test)
        own = test.get("params", {})
        if isinstance(own, dict):
            merged["params"] = {**defaults.params, **own}
            merged["defaulted_params"] = tuple(k for k in defaults.params if k not in own)
        for key in ("timeout_s", "files", "visibility"):
            value = getattr(defaults, key)
            if value is not None and key not in test:
                merged[key] = value
        tests.append(merged)
    rest = {key: value for key, value in raw.items() if key != "defaults"}
    rest["default_params"] = tuple(defaults.params)
    return {**rest, "tests": tests} if "tests" in raw else rest


def load_spec(folder: Path, filename: str = "spec.toml") -> AssignmentSpec:
    """Read and validate ``folder/spec.toml`` (or another spec file of the folder, e.g. a
    variant that grades the same solution another way); SpecError explains any problem."""
    path = folder / filename
    if not path.is_file():
        raise SpecError(f"{folder}: no {filename} found (every assignment folder needs one)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    try:
        return AssignmentSpec.model_validate({**with_defaults(raw), "folder": folder.resolve()})
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


def resolve_assignment(name_or_path: str, filename: str = "spec.toml") -> AssignmentSpec:
    """A built-in slug or a path to an assignment folder (``filename``: which spec file of
    it, e.g. ``spec-course.toml``)."""
    builtins = builtin_assignments()
    if name_or_path in builtins:
        return load_spec(builtins[name_or_path], filename)
    folder = Path(name_or_path)
    if folder.is_dir():
        return load_spec(folder, filename)
    known = ", ".join(builtins) or "none"
    raise SpecError(f"no assignment called {name_or_path!r} (built-in: {known})")


def spec_for(slug: str, folder: str | None) -> AssignmentSpec:
    """The spec of a service's assignment: its stored ``folder`` (an uploaded version), else
    the built-in ``slug``. Cached per process: a submission's worker and web requests all
    read the same object. A folder's spec.toml changing in place (a built-in being edited)
    reads afresh."""
    path = Path(folder) if folder else builtin_assignments().get(slug)
    try:
        stamp = (path / "spec.toml").stat() if path is not None else None
    except OSError:
        stamp = None
    key = (stamp.st_mtime_ns, stamp.st_size) if stamp is not None else None
    return _cached_spec(slug, folder, key)


@lru_cache(maxsize=128)
def _cached_spec(slug: str, folder: str | None, _stamp: tuple[int, int] | None) -> AssignmentSpec:
    return load_spec(Path(folder)) if folder else resolve_assignment(slug)
