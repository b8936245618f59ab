"""The hostile-submission corpus: loading cases, building their uploads, host checks.

A case is a folder ``tests/malicious/<category>/<case>/`` holding an ``expect.toml``
(schema in README.md) and either changes to the reference solution of the assignment
it targets (files laid over it and ``[[edit]]`` tables, as for known bugs: see
``grader.known_bugs``), or a ``make.py`` whose ``make(solution, out)`` writes the upload
itself (archive attacks: links, devices and bombs are never committed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.known_bugs import (
    Edit,
    KnownBug,
    apply_edits,
    build_handin,
    lay_over,
    overlay_files,
    read_edits,
)
from grader.spec import AssignmentSpec, load_spec, resolve_assignment
from sandbox.backend import Backend, SandboxConfig
from sandbox.session import Session, SessionLimits
from tests.services import live_processes

HERE = Path(__file__).resolve().parent
CATEGORIES = ("archive", "forgery", "disclosure", "exhaustion", "escape", "dl-tricks")
KNOWN_KEYS = {"description", "assignment", "only", "max_score", "fails", "may_fail", "status",
              "slow", "grader_errors_allowed", "params", "upload", "tests", "process", "docker",
              "bug", "edit", "visibility", "sandbox", "variant", "spec"}
BACKEND_KEYS = {"max_score", "fails", "may_fail", "tests", "note"}
TEST_KEYS = {"outcome", "outcomes", "message_contains", "message_excludes"}
SLOW_CALL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    folder: Path
    expect: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def assignment(self) -> str:
        return str(self.expect.get("assignment", "mytorch-cnn"))

    @property
    def rejected(self) -> bool:
        return bool(self.expect.get("upload", {}).get("rejected", False))

    def spec(self) -> AssignmentSpec:
        """The assignment as this case grades it: only some tests, faster limits, tiny data
        (``spec = "spec-course.toml"``: another spec file of the assignment's folder)."""
        spec = resolve_assignment(self.assignment)
        if "spec" in self.expect:
            spec = load_spec(spec.folder, str(self.expect["spec"]))
        if spec.variants:  # one handout version: its tests and points (default the fallback)
            spec = spec.with_variant(self.expect.get("variant", spec.variants[-1].name))
        only = self.expect.get("only")
        tests = tuple(t for t in spec.tests if only is None or t.name in only)
        params = self.expect.get("params", {})
        tests = tuple(
            t.model_copy(update={"params": {**t.params, **params[t.name]}})
            if t.name in params else t for t in tests)
        shown = self.expect.get("visibility", {})  # test name -> visibility, for this case
        tests = tuple(t.model_copy(update={"visibility": shown[t.name]}) if t.name in shown
                      else t for t in tests)
        update: dict[str, Any] = {"tests": tests}
        box = dict(self.expect.get("sandbox", {}))  # e.g. memory_mb, for this case
        if self.expect.get("slow"):
            box["call_timeout_s"] = SLOW_CALL_TIMEOUT_S
        if box:
            update["sandbox"] = spec.sandbox.model_copy(update=box)
        return spec.model_copy(update=update)

    def value(self, key: str, backend: str, default: Any = None) -> Any:
        """``key`` from the backend's own section, else from the top level."""
        return self.expect.get(backend, {}).get(key, self.expect.get(key, default))

    def tests_for(self, backend: str) -> dict[str, dict[str, Any]]:
        """Per-test expectations, with the backend's own entries replacing shared ones."""
        merged = dict(self.expect.get("tests", {}))
        merged.update(self.expect.get(backend, {}).get("tests", {}))
        return merged

    def upload(self, workdir: Path) -> bytes:
        """The bytes the student uploads."""
        folder = resolve_assignment(self.assignment).folder
        solution = folder / "solution"
        maker = self.folder / "make.py"
        if maker.is_file():
            out = workdir / "upload.bin"
            load_module(maker).make(solution, out)
            return out.read_bytes()
        handin = build_handin(solution, self.known_bug(), workdir / "handin")
        lay_over(handin, self.folder)
        apply_edits(handin, self.edits())
        return tar_gz(handin)

    def known_bug(self) -> KnownBug | None:
        """The assignment's ``bugs/<name>/`` variant the case builds on (``bug = ...``),
        applied before the case's own changes, so a case need not copy it."""
        name = self.expect.get("bug")
        if name is None:
            return None
        return KnownBug.load(resolve_assignment(self.assignment).folder / "bugs" / str(name))

    def edits(self) -> list[Edit]:
        return read_edits(self.expect, f"{self.id}/expect.toml")

    def changes(self) -> list[str]:
        """Every handin path the case changes, its known bug's included."""
        bug = self.known_bug()
        own = [p.as_posix() for p in overlay_files(self.folder)]
        return sorted({*own, *(e.file for e in self.edits()), *(bug.touched() if bug else [])})


def load_module(path: Path) -> Any:
    loaded = importlib.util.spec_from_file_location(f"corpus_make_{path.parent.name}", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def load_cases() -> list[Case]:
    cases = []
    for category in CATEGORIES:
        for folder in sorted((HERE / category).iterdir()):
            if (folder / "expect.toml").is_file():
                expect = tomllib.loads((folder / "expect.toml").read_text())
                cases.append(Case(category, folder.name, folder, expect))
    return cases


def tar_gz(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name)
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
        for path in sorted(folder.rglob("*"))
    }


# -- host checks ---------------------------------------------------------------------


def processes_of(uids: set[int]) -> list[tuple[int, int]]:
    """Live (non-zombie) processes whose real uid is one of ``uids``: (pid, uid)."""
    return [(p.pid, p.uids[0]) for p in live_processes() if p.uids and p.uids[0] in uids]


@dataclass
class RecordingBackend:
    """A real backend that remembers its sessions and checks the handin it was given is
    unchanged when each session closes (the sandbox must not be able to write it)."""

    inner: Backend
    identify: Callable[[Session], Any] = lambda session: None
    name: str = ""
    sessions: list[Session] = field(default_factory=list)
    identities: list[Any] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        before = snapshot(config.submission_dir)
        session = self.inner.start(config, limits)
        self.sessions.append(session)
        self.identities.append(self.identify(session))  # before any student code runs

        def verify() -> None:
            if snapshot(config.submission_dir) != before:
                self.changed.append(str(config.submission_dir))

        session.sandbox.cleanup.insert(0, verify)
        return session
