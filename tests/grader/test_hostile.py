"""Hostile handins for mytorch-cnn, graded end to end in the process sandbox.

Each folder of ``tests/handins/hostile/`` holds only the files that differ from
the reference solution plus an ``expect.toml``::

    description = "..."
    max_score = 45                  # the score may not exceed this
    fails = ["Conv1D forward", ...] # these score 0; every other test must pass in full
    slow = true                     # optional: grade with call_timeout_s = 2
    grader_errors_allowed = [...]   # optional: tests that may end as an internal error

    [tests."Conv1D forward"]        # optional, per test
    outcome = "timeout"
    message_contains = ["did not finish within"]
    message_excludes = ["..."]

Besides the verdicts, every case checks the host: the handin folder is unchanged,
no process of any sandbox it used is left, grading took bounded time, and the
correct solution still gets full marks afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from grader.grade import grade_directory
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.backend import SandboxConfig
from sandbox.process_backend import UID_BASE, UID_SPAN, ProcessBackend
from sandbox.session import Session, SessionLimits

pytestmark = pytest.mark.sandbox

HOSTILE = Path(__file__).resolve().parent.parent / "handins" / "hostile"
CASES = sorted(p for p in HOSTILE.iterdir() if (p / "expect.toml").is_file())
SEED = 20200208
SLOW_CALL_TIMEOUT_S = 2.0
MAX_SECONDS = 30.0
OTHER_STUDENT_SECRET = "OTHER-STUDENT-SECRET-7f3a"
HOST_RESULTS = Path("/tmp/results.json")


class RecordingBackend:
    """The process backend, remembering each session and the uid it runs under.

    The uid is asked for right after start-up, before any student code has run,
    so the answer can be trusted.
    """

    name = "process"

    def __init__(self) -> None:
        self.inner = ProcessBackend()
        self.sessions: list[Session] = []
        self.uids: list[int] = []

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        session = self.inner.start(config, limits)
        self.sessions.append(session)
        uid = session.ping()["uid"]
        assert isinstance(uid, int) and UID_BASE <= uid < UID_BASE + UID_SPAN
        self.uids.append(uid)
        return session


@pytest.fixture
def spec(process_backend: ProcessBackend) -> AssignmentSpec:
    """The assignment; conftest's ``process_backend`` fails in CI, skips elsewhere, when the
    process sandbox cannot be built here."""
    return resolve_assignment("mytorch-cnn")


def fast(spec: AssignmentSpec) -> AssignmentSpec:
    box = spec.sandbox.model_copy(update={"call_timeout_s": SLOW_CALL_TIMEOUT_S})
    return spec.model_copy(update={"sandbox": box})


def build_handin(spec: AssignmentSpec, overlay: Path | None, parent: Path) -> Path:
    """The reference solution with the case's files laid over it, readable by the sandbox."""
    parent.mkdir(parents=True, exist_ok=True)
    parent.chmod(0o755)
    handin = parent / "handin"
    shutil.copytree(spec.folder / "solution", handin)
    if overlay is not None:
        for source in overlay.rglob("*"):
            if source.is_file() and source.name != "expect.toml":
                target = handin / source.relative_to(overlay)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    for path in (handin, *handin.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return handin


def snapshot(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
        for path in sorted(folder.rglob("*"))
    }


def processes_of(uids: set[int]) -> list[tuple[int, int]]:
    """Live processes of the given uids. Zombies are dead: a killed sandbox's agent is
    reparented to the host's init, which may take a moment to reap it."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "-1").split()[0])
        if uid in uids and "Z" not in fields.get("State", "Z").split()[0]:
            found.append((int(entry), uid))
    return found


def assert_sandboxes_gone(backend: RecordingBackend) -> None:
    for session in backend.sessions:
        assert session.sandbox.process.returncode is not None, "a sandbox was never reaped"
    deadline = time.monotonic() + 5
    while processes_of(set(backend.uids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(set(backend.uids)) == [], "sandbox processes outlived grading"
    for session in backend.sessions:  # the unshare process itself was waited for
        assert not Path(f"/proc/{session.sandbox.process.pid}").exists()


def load_expect(case: Path) -> dict[str, Any]:
    expect = tomllib.loads((case / "expect.toml").read_text())
    known = {"description", "max_score", "fails", "slow", "tests", "grader_errors_allowed"}
    unknown = set(expect) - known
    assert not unknown, f"{case.name}/expect.toml: unknown keys {sorted(unknown)}"
    return expect


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_handin(
    case: Path, spec: AssignmentSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLGRADE_SECRET_KEY", "s3cret")  # a worker secret that must not leak
    expect = load_expect(case)
    graded_spec = fast(spec) if expect.get("slow") else spec
    handin = build_handin(spec, case, tmp_path / "course")
    other = tmp_path / "course" / "other-student"  # a neighbour the handin must not see
    other.mkdir()
    (other / "secret.py").write_text(f"KEY = {OTHER_STUDENT_SECRET!r}\n")
    before = snapshot(handin)
    host_results_before = HOST_RESULTS.read_bytes() if HOST_RESULTS.exists() else None
    backend = RecordingBackend()

    began = time.monotonic()
    result = grade_directory(graded_spec, handin, backend, seed=SEED)  # type: ignore[arg-type]
    elapsed = time.monotonic() - began

    report = "\n".join(
        f"[{t.outcome}] {t.name}: {t.score}/{t.max_score}\n{t.output[:1500]}" for t in result.tests
    )
    by_name = {test.name: test for test in result.tests}
    assert [t.name for t in spec.tests] == list(by_name)
    assert result.score <= expect["max_score"], report
    for name in expect["fails"]:
        assert name in by_name, f"{case.name}: no test called {name!r}"
        assert by_name[name].score == 0 and not by_name[name].passed, report
    for test in result.tests:
        if test.name not in expect["fails"]:
            assert test.passed and test.score == test.max_score, f"{test.name} not graded\n{report}"
    for name, wanted in expect.get("tests", {}).items():
        test = by_name[name]
        if "outcome" in wanted:
            assert test.outcome == wanted["outcome"], report
        for text in wanted.get("message_contains", []):
            assert text in test.output, f"{name}: {text!r} missing\n{report}"
        for text in wanted.get("message_excludes", []):
            assert text not in test.output, f"{name}: {text!r} leaked\n{report}"
    for test in result.tests:
        assert OTHER_STUDENT_SECRET not in test.output and "s3cret" not in test.output
        assert len(test.output) < 200_000, "captured output was not capped"
        if test.outcome == "error":  # the grader's own fault; only where a case documents it
            assert test.name in expect.get("grader_errors_allowed", []), report

    # Host invariants: bounded time, nothing written, nothing left running.
    assert elapsed < MAX_SECONDS, f"grading took {elapsed:.1f} s"
    assert snapshot(handin) == before, "the handin folder changed during grading"
    assert not (tmp_path / "course" / "results.json").exists()
    if HOST_RESULTS.exists():
        assert b"HOSTILE-RESULTS-MARKER" not in HOST_RESULTS.read_bytes()
    else:
        assert host_results_before is None
    assert_sandboxes_gone(backend)

    # The machine is still healthy: the correct solution gets full marks.
    healthy = RecordingBackend()
    solution = build_handin(spec, None, tmp_path / "after")
    again = grade_directory(spec, solution, healthy, seed=SEED + 1)  # type: ignore[arg-type]
    assert again.score == again.max_score == 100, [t.output[:300] for t in again.tests]
    assert len(healthy.sessions) == 1
    assert_sandboxes_gone(healthy)


def test_cases_cover_the_corpus() -> None:
    """At least a dozen cases, each with a description and sane expectations."""
    assert len(CASES) >= 12
    names = {t.name for t in resolve_assignment("mytorch-cnn").tests}
    for case in CASES:
        expect = load_expect(case)
        assert expect["description"].strip()
        assert set(expect["fails"]) <= names
        assert set(expect.get("tests", {})) <= names
        overlay = [p for p in case.rglob("*") if p.is_file() and p.name != "expect.toml"]
        assert overlay, f"{case.name} changes nothing"
