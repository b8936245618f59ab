"""The grading runner: one handin in, one :class:`GradingResult` out. Never raises.

Static checks run on the source outside the sandbox; every test then runs its
check with its own time budget. A crash, timeout or exit fails the affected test
with a plain sentence and the next test gets a fresh sandbox.

The whole grading has a budget too (the spec's ``time_budget_s``, or less when the
caller's task must end sooner): a test never runs past it, and the tests left when it
is spent are failed as timeouts without running. An exception the caller names in
``interrupts`` (a task queue's soft time limit) ends the grading the same way, with the
results so far. A fault of the grading host (its scratch space full, its memory gone,
no sandbox starting) is reported in ``infrastructure_error``, never as the handin's.
"""

from __future__ import annotations

import errno
import math
import os
import secrets
import shutil
import tarfile
import tempfile
import time
import traceback
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader import data, datasets, feedback, given, variants
from grader.context import CheckContext, CheckFailed, Progress
from grader.extract import ExtractionError, extract_archive
from grader.interface import mismatch
from grader.outcomes import Outcome
from grader.params import ParamsError
from grader.policy import Violation, forbidden_imports, large_literals, matches
from grader.registry import load_folder_checks, lookup
from grader.results import GradingResult, LeaderboardEntry, TestResult
from grader.spec import BUILTIN_ROOT, AssignmentSpec, TestSpec
from sandbox.backend import Backend, SandboxConfig
from sandbox.runtimes import RuntimeRequest, RuntimeUnavailable
from sandbox.session import Session, SessionDied, SessionLimits, StudentException

MEMORY_EXCEPTIONS = ("MemoryError", "OutOfMemoryError")
# Errors of the grading host's own resources, not of a handin.
HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE,
                         errno.EROFS, errno.EIO})
Interrupts = tuple[type[BaseException], ...]


@dataclass
class Verdict:
    outcome: Outcome
    fraction: float
    message: str
    staff_detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Set when no sandbox could be started: a fault of the grading host, not the handin.
    infrastructure: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Sessions:
    """Hands out one live session at a time; a dead one is replaced on next use."""

    def __init__(self, backend: Backend, config: SandboxConfig, limits: SessionLimits,
                 hung_imports: dict[str, str] | None = None) -> None:
        self.backend, self.config, self.limits = backend, config, limits
        self.current: Session | None = None
        self.started = 0
        self.deadline: float | None = None
        # CheckContext.grading: shared by the checks that use this sandbox lineage (a course
        # test file runs once for them all; a hidden test's own Sessions runs its own)
        self.grading: dict[str, Any] = {}
        # Imports that hung (Session.import_module), shared by all of a handin's sessions:
        # tests run in the order they are shown, so this flows only to later-shown tests.
        self.hung_imports: dict[str, str] = {} if hung_imports is None else hung_imports

    def get(self) -> Session:
        if self.current is None or self.current.dead is not None:
            self.current = self.backend.start(self.config, self.limits)
            self.current.hung_imports = self.hung_imports
            self.started += 1
        self.current.deadline = self.deadline
        return self.current

    def restart(self) -> Session:
        """Close the current sandbox and start a new one."""
        self.close()
        return self.get()

    def between_tests(self) -> None:
        """Each test starts with only the agent running: whatever an earlier test left
        (children, ``setsid`` daemons, zombies) is killed and reaped, so it cannot use up
        the next test's process limit. A sandbox that does not reset is replaced. The
        unisolated backend ("none") has no PID namespace to clear."""
        if self.current is None or self.current.dead is not None or self.backend.name == "none":
            return
        try:
            self.current.reset_processes()
        except (SessionDied, StudentException):
            self.close()

    def output(self) -> tuple[str, str]:
        if self.current is None:
            return "", ""
        return self.current.take_output()

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


def sandbox_config(spec: AssignmentSpec, handin: Path) -> SandboxConfig:
    """The sandbox of one handin: the assignment's runtime (``[runtime]``, else the
    worker's NumPy and, unless the policy forbids torch, its PyTorch) and import path.
    Every held-out dataset file on this host (and any data file a test names), the
    assignment's folder and the built-in assignments are hidden wherever a mount would
    show them (the backends add site-packages folders and dlgrade's own packages)."""
    box = spec.sandbox
    course_data = datasets.course_data_paths(spec.folder, [test.params for test in spec.tests])
    hidden = {*data.hidden_paths(course_data), os.path.realpath(spec.folder),
              os.path.realpath(BUILTIN_ROOT)}
    runtime = None if spec.runtime is None else RuntimeRequest(spec.runtime.numpy,
                                                               spec.runtime.torch)
    return SandboxConfig(
        submission_dir=handin, data_dir=spec.public_data, memory_mb=box.memory_mb,
        cpu_seconds=box.cpu_seconds, max_processes=box.max_processes, tmp_mb=box.tmp_mb,
        threads=box.threads, deny_imports=spec.policy.forbidden_imports,
        deny_reason=spec.policy.reason, hidden_paths=tuple(sorted(hidden)), runtime=runtime,
        python_path=spec.submission.python_path, allow_imports_in=spec.policy.allow_in,
    )


def grade_archive(
    spec: AssignmentSpec, archive: Path, backend: Backend, *, seed: int | None = None,
    only: Collection[str] | None = None, progress: Progress | None = None,
    budget_s: float | None = None, interrupts: Interrupts = (),
) -> GradingResult:
    """Extract ``archive`` safely into a fresh directory, grade it, clean up."""
    try:
        workdir = Path(tempfile.mkdtemp(prefix="dlgrade-handin-"))
    except OSError as exc:
        return host_fault(spec, f"no scratch space for the handin ({exc})")
    try:
        dest = workdir / "handin"
        dest.mkdir()
        try:
            extracted = extract_archive(archive, dest, expected_top=spec.submission.top_level)
        except ExtractionError as exc:
            return rejected(spec, str(exc))
        except OSError as exc:
            if exc.errno not in HOST_ERRNOS:
                raise
            return host_fault(spec, f"the handin could not be unpacked into {workdir} ({exc})")
        extracted.root.chmod(0o755)
        workdir.chmod(0o755)
        return grade_directory(spec, extracted.root, backend, seed=seed, only=only,
                               progress=progress, budget_s=budget_s, interrupts=interrupts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def grade_path(
    spec: AssignmentSpec, path: Path, backend: Backend, *, seed: int | None = None,
    only: Collection[str] | None = None,
) -> GradingResult:
    """Grade a handin given as an archive or as a directory.

    A directory is packed into a tar first and goes through the same safe extraction
    as an upload, so the sandbox always sees a private, read-only snapshot with
    normalised permissions, and links or special files are refused the same way.
    """
    if not path.is_dir():
        return grade_archive(spec, path, backend, seed=seed, only=only)
    with tempfile.TemporaryDirectory(prefix="dlgrade-pack-") as scratch:
        archive = Path(scratch) / "handin.tar"
        with tarfile.open(archive, "w") as tar:
            for child in sorted(path.iterdir()):
                tar.add(child, arcname=child.name, recursive=True)
        return grade_archive(spec, archive, backend, seed=seed, only=only)


def host_fault(spec: AssignmentSpec, reason: str) -> GradingResult:
    """The result for a handin this host could not grade at all (say nothing of it)."""
    tests = [
        _result(spec, index, test, Verdict(Outcome.ERROR, 0.0, NOT_GRADED_HERE, reason,
                                           infrastructure=reason))
        for index, test in enumerate(spec.tests)
    ]
    return GradingResult(spec.slug, tests, 0.0, output=NOT_GRADED_HERE,
                         infrastructure_error=reason)


NOT_GRADED_HERE = "The grading host had a fault; this handin will be graded again."
MISCONFIGURED = "The grader for this assignment is misconfigured."


def rejected(spec: AssignmentSpec, reason: str) -> GradingResult:
    """The result for a handin that could not be unpacked: every test scores 0 (with
    handout variants, those of the pinned one, else of the fallback)."""
    if spec.variants:
        spec = spec.with_variant(spec.variants[-1].name if spec.variant == variants.AUTO
                                 else spec.variant)
    tests = [
        _result(spec, index, test, Verdict(Outcome.ERROR, 0.0, f"Not graded: {reason}"))
        for index, test in enumerate(spec.tests)
    ]
    return GradingResult(spec.slug, tests, 0.0, output=f"Your handin was not graded: {reason}",
                         rejected=reason)


@dataclass(frozen=True)
class Handin:
    """What the runner knows of the handin's files before any test runs."""

    files: list[str]
    unparsable: dict[str, str]  # path -> the SyntaxError, with line and caret


# When a student sees a test's result (web.visibility): sooner first. Tests run in this
# order, so no test shown sooner runs after one shown later (issue 12.7).
EXPOSURE = {"visible": 0, "after_due_date": 1, "after_published": 2, "hidden": 3}


def grade_directory(
    spec: AssignmentSpec, handin: Path, backend: Backend, *, seed: int | None = None,
    only: Collection[str] | None = None, progress: Progress | None = None,
    budget_s: float | None = None, interrupts: Interrupts = (),
) -> GradingResult:
    """Grade an already extracted handin directory (read-only to the sandbox) within
    ``budget_s`` seconds (at most the spec's ``time_budget_s``).

    ``only``: grade just the tests of these names (the rest are left out of the result).
    ``progress`` (if given) is told which test starts, and whatever a check reports
    while it runs (e.g. each epoch of training); it must not raise.

    Visible tests share one sandbox (replaced when it dies). A test the student does not
    see now (``after_due_date``, ``after_published``, ``hidden``) gets sandboxes of its own,
    closed when it ends, so nothing it received or computed can reach a test the student
    sees sooner; and the tests run in the order in which they are shown (visible first),
    so not even its timing can. Results keep the spec's order.
    """
    started = time.monotonic()
    budget = spec.time_budget_s if budget_s is None else min(budget_s, spec.time_budget_s)
    seed = secrets.randbits(63) if seed is None else seed
    other = variants.other_handout(spec, handin)
    if other is not None:
        refused = rejected(spec, variants.not_graded(other))
        refused.staff_log.append(f"other_handout={other.name}: not graded here")
        return refused
    choice = variants.choose(spec, handin)
    if choice is not None:
        spec = spec.with_variant(choice.name)
    files = sorted(p.relative_to(handin).as_posix() for p in handin.rglob("*") if p.is_file())
    restricted = [f for f in files if not matches(f, spec.policy.allow_in)]
    violations = forbidden_imports(handin, restricted, spec.policy.forbidden_imports)
    flags = large_literals(handin, files)
    limits = SessionLimits(call_timeout_s=spec.sandbox.call_timeout_s)
    config = sandbox_config(spec, handin)
    strict = strict_config(spec, config)
    shared = Sessions(backend, config, limits)
    shared_strict = (Sessions(backend, strict, limits, shared.hung_imports)
                     if strict is not None else shared)
    broken = _load_checks(spec)
    known = Handin(files, feedback.syntax_errors(handin, files))
    chosen = [index for index, test in enumerate(spec.tests) if only is None or test.name in only]
    order = sorted(chosen, key=lambda index: (EXPOSURE.get(spec.tests[index].visibility, 3),
                                              index))
    verdicts: dict[int, Verdict] = {}
    sessions_started = 0
    clock = Budget(time.monotonic() + budget, budget)  # the handin's time from here
    try:
        for step, index in enumerate(order, start=1):
            test = spec.tests[index]
            if progress is not None:
                progress({"test": step, "tests": len(order), "name": test.name})
            verdict = broken or _precheck(spec, test, known, violations)
            if verdict is None and clock.spent:
                verdict = Verdict(Outcome.TIMEOUT, 0.0, clock.not_run())
            if verdict is None:
                covered = strict is not None and _policy_covers(spec, test, files)
                own = test.visibility != "visible"
                if own:
                    sessions = Sessions(backend, strict if covered and strict else config,
                                        limits, shared.hung_imports)
                else:
                    sessions = shared_strict if covered else shared
                try:
                    verdict = _run_test(spec, test, index, seed, sessions, known, progress,
                                        clock.deadline, interrupts)
                except interrupts:
                    clock.interrupted = True
                    verdict = Verdict(Outcome.TIMEOUT, 0.0, clock.cut_short())
                finally:
                    if own:
                        sessions.close()
                        sessions_started += sessions.started
                verdict = clock.explain(verdict)
            verdicts[index] = verdict
    finally:
        shared.close()
        shared_strict.close()
    sessions_started += shared.started + (shared_strict.started if strict is not None else 0)
    results = [_result(spec, index, spec.tests[index], verdicts[index]) for index in chosen]
    faults = [f"{spec.tests[index].name}: {verdicts[index].infrastructure}"
              for index in chosen if verdicts[index].infrastructure]
    result = GradingResult(spec.slug, results, time.monotonic() - started, sandbox=backend.name,
                           leaderboard=leaderboard(spec, results),
                           infrastructure_error="; ".join(faults) or None,
                           output=feedback.summary(known.unparsable) if known.unparsable else "")
    result.staff_log.append(f"seed={seed} sessions={sessions_started} backend={backend.name} "
                            f"runtime={_runtime_key(config)}")
    if clock.interrupted or clock.spent:
        result.staff_log.append(f"time budget of {budget:g} s spent"
                                + (" (the task's soft time limit)" if clock.interrupted else ""))
    if choice is not None:
        result.variant = choice.name
        note = f"Graded as the {spec.variant_title} ({choice.reason})."
        result.output = f"{note}\n\n{result.output}" if result.output else note
        result.staff_log.append(f"variant={choice.name}: {choice.reason}")
    handout = spec.folder / "handout"
    if spec.given and handout.is_dir():
        edited = given.changed(handout, handin, spec.given)
        if edited:
            result.staff_log.append("Given code changed from the handout (never graded): "
                                    + ", ".join(edited))
    if flags:
        result.staff_log.append("Big enough to hold trained weights (check that the model "
                                "learns what it answers): " + "; ".join(flags))
    return result


def strict_config(spec: AssignmentSpec, config: SandboxConfig) -> SandboxConfig | None:
    """The sandbox of the tests whose files the import policy covers, when the policy
    lets some files import PyTorch (``[policy] allow_in``) and the runtime therefore has
    it: the same runtime without PyTorch. A restricted file then cannot reach torch by
    undoing the import blocker, which is student code's to change (issue 12.5). None
    when no such split is needed."""
    if not spec.policy.allow_in or "torch" not in spec.policy.forbidden_imports:
        return None
    try:
        request = config.runtime_request()
    except RuntimeUnavailable:
        return None  # the sandbox will not start; that fault is reported per test
    if request.torch is None:
        return None
    return replace(config, runtime=RuntimeRequest(request.numpy, None))


def _policy_covers(spec: AssignmentSpec, test: TestSpec, files: list[str]) -> bool:
    """Whether every handin file ``test`` names is under the import policy (none is one
    of the files allowed the forbidden packages). A test naming no files is not."""
    named = [path for path in files if matches(path, test.files)]
    return bool(named) and not any(matches(path, spec.policy.allow_in) for path in named)


def _runtime_key(config: SandboxConfig) -> str:
    try:
        return config.runtime_request().key
    except RuntimeUnavailable as exc:
        return f"unavailable ({exc})"


def leaderboard(spec: AssignmentSpec, results: list[TestResult]) -> list[LeaderboardEntry]:
    """The spec's [[leaderboard]] entries whose test reported the metric (a crash does not)."""
    by_name = {result.name: result for result in results}
    entries = []
    for wanted in spec.leaderboard:
        if wanted.test not in by_name:  # not graded this time (dlgrade check --test)
            continue
        value = by_name[wanted.test].metrics.get(wanted.metric)
        if value is not None:
            entries.append(LeaderboardEntry(wanted.name, float(value), wanted.order))
    return entries


def _load_checks(spec: AssignmentSpec) -> Verdict | None:
    """None when the assignment's own checks.py loaded; else the verdict for every test."""
    try:
        load_folder_checks(spec.folder)
    except Exception:  # noqa: BLE001 - a course's broken checks.py must not crash grading
        return Verdict(Outcome.ERROR, 0.0, MISCONFIGURED, traceback.format_exc())
    return None


def _precheck(
    spec: AssignmentSpec, test: TestSpec, handin: Handin, violations: list[Violation]
) -> Verdict | None:
    """Failures decided from the file list and the source alone."""
    missing = [
        path for path in spec.submission.required_files
        if path not in handin.files and matches(path, test.files)
    ]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return Verdict(Outcome.FAILED, 0.0, f"{', '.join(missing)} {verb} missing from your "
                       "handin.")
    unparsable = [path for path in handin.unparsable if matches(path, test.files)]
    if unparsable:
        return Verdict(Outcome.FAILED, 0.0, _not_compiling(unparsable))
    relevant = [v for v in violations if matches(v.path, test.files)]
    if relevant:
        sentences = " ".join(v.sentence(spec.policy.reason) for v in relevant)
        return Verdict(Outcome.FAILED, 0.0, f"{sentences} This test gets no points.")
    return None


@dataclass
class Budget:
    """The whole grading's time: when it ends, and how that is said."""

    deadline: float  # time.monotonic()
    seconds: float
    interrupted: bool = False  # the caller's interrupt (a soft time limit) arrived

    @property
    def spent(self) -> bool:
        return self.interrupted or time.monotonic() >= self.deadline

    def not_run(self) -> str:
        return (f"Not run: this submission used up its total grading time of "
                f"{self.seconds:g} s in the tests before this one.")

    def cut_short(self) -> str:
        return (f"Time limit: the grading of this submission ran out of time "
                f"(its total of {self.seconds:g} s) during this test.")

    def explain(self, verdict: Verdict) -> Verdict:
        """A timeout caused by the total budget says so."""
        if verdict.outcome is Outcome.TIMEOUT and self.spent and not self.interrupted:
            verdict.message += (f"\nThis submission used up its total grading time of "
                                f"{self.seconds:g} s; tests after this one are not run.")
        return verdict


def _not_compiling(paths: list[str]) -> str:
    listed = ", ".join(paths)
    verb = "does" if len(paths) == 1 else "do"
    return (f"Not run: {listed} {verb} not compile (the error, with its line, is shown once "
            "above the tests).")


def _run_test(
    spec: AssignmentSpec, test: TestSpec, index: int, seed: int, sessions: Sessions,
    handin: Handin | None = None, progress: Progress | None = None,
    total_deadline: float | None = None, interrupts: Interrupts = (),
) -> Verdict:
    rng = np.random.default_rng([seed, index])
    sessions.between_tests()
    context = CheckContext(spec, test, rng, sessions.get, restart_session=sessions.restart,
                           grading=sessions.grading, progress=progress)
    sessions.deadline = min(time.monotonic() + test.timeout_s, total_deadline or math.inf)
    try:
        verdict = _verdict(test, context, handin or Handin([], {}), interrupts)
    finally:
        sessions.deadline = None
    verdict.extra = json_safe(context.extra)
    verdict.metrics = dict(context.metrics)
    stdout, stderr = sessions.output()
    return _with_output(verdict, stdout, stderr)


def _verdict(test: TestSpec, context: CheckContext, handin: Handin,
             interrupts: Interrupts = ()) -> Verdict:
    try:
        check = lookup(test.check, context.spec.folder)
        _ = context.params  # validated before the check starts (ParamsError)
        fraction = check(context)
    except interrupts:
        raise  # the caller's: the grading as a whole must stop (a soft time limit)
    except CheckFailed as failed:
        return Verdict(Outcome.FAILED, failed.fraction, failed.message)
    except ParamsError as exc:  # the spec's params, not the handin: staff must fix them
        return Verdict(Outcome.ERROR, 0.0, MISCONFIGURED, str(exc))
    except StudentException as exc:
        return _student_exception(exc, context, handin)
    except SessionDied as death:
        return _death(death, context)
    except MemoryError:  # the trusted side's: this host ran out of memory
        return Verdict(Outcome.ERROR, 0.0, NOT_GRADED_HERE, traceback.format_exc(),
                       infrastructure="the grading host ran out of memory")
    except OSError as exc:
        if exc.errno not in HOST_ERRNOS:
            return Verdict(Outcome.ERROR, 0.0, "The grader hit an internal error in this test.",
                           traceback.format_exc())
        return Verdict(Outcome.ERROR, 0.0, NOT_GRADED_HERE, traceback.format_exc(),
                       infrastructure=f"the grading host failed: {exc}")
    except Exception:  # noqa: BLE001 - a bug in a check must not stop the other tests
        return Verdict(Outcome.ERROR, 0.0, "The grader hit an internal error in this test.",
                       traceback.format_exc())
    fraction = 1.0 if fraction is None else min(max(float(fraction), 0.0), 1.0)
    outcome = Outcome.PASSED if fraction >= 1.0 else Outcome.FAILED
    return Verdict(outcome, fraction, "\n".join(context.notes) or "Passed.")


def _student_exception(exc: StudentException, context: CheckContext,
                       handin: Handin) -> Verdict:
    if exc.type_name in ("SyntaxError", "IndentationError", "TabError") and handin.unparsable:
        return Verdict(Outcome.FAILED, 0.0, _not_compiling(list(handin.unparsable)))
    during = f" during {exc.what}" if exc.what else ""
    if exc.type_name in MEMORY_EXCEPTIONS:
        limit = context.spec.sandbox.memory_mb
        return Verdict(Outcome.OOM, 0.0,
                       f"Your code exceeded the {limit} MB memory limit{during} ({exc.type_name}).")
    interface = mismatch(exc)
    if interface is not None:
        return Verdict(Outcome.FAILED, 0.0, interface)
    message = f"Your code raised {exc.type_name}{during}: {exc.message}"
    if exc.traceback.strip():
        message += f"\n{feedback.clean_traceback(exc.traceback, handin.files).rstrip()}"
    return Verdict(Outcome.FAILED, 0.0, message)


def _death(death: SessionDied, context: CheckContext) -> Verdict:
    if death.reason == "timeout":
        return Verdict(Outcome.TIMEOUT, 0.0, f"Time limit: {death.detail}.")
    if death.reason == "start":
        return Verdict(Outcome.ERROR, 0.0, "The grader could not start a sandbox for this test.",
                       death.detail, infrastructure=death.detail)
    if death.reason == "oom":
        return Verdict(Outcome.OOM, 0.0, f"{_sentence(death.detail)}.")
    if death.reason == "killed":
        return Verdict(Outcome.KILLED, 0.0,
                       f"{_sentence(death.detail)} (a CPU, memory or process limit was hit).")
    if death.reason == "malformed":
        return Verdict(Outcome.CRASH, 0.0, f"The sandbox sent a {death.detail}.")
    return Verdict(Outcome.CRASH, 0.0,
                   f"{_sentence(death.detail)} (exit status {death.exit_code}).")


def _with_output(verdict: Verdict, stdout: str, stderr: str) -> Verdict:
    sections = [verdict.message]
    if stdout.strip():
        sections.append(f"--- your stdout ---\n{stdout.rstrip()}")
    if stderr.strip():
        sections.append(f"--- your stderr ---\n{stderr.rstrip()}")
    verdict.message = "\n".join(sections)
    return verdict


def _result(spec: AssignmentSpec, index: int, test: TestSpec, verdict: Verdict) -> TestResult:
    return TestResult(
        name=test.name, number=str(index + 1), max_score=test.points,
        score=round(test.points * verdict.fraction, 4), outcome=verdict.outcome,
        output=verdict.message, visibility=test.visibility, tags=test.tags,
        staff_detail=verdict.staff_detail, extra_data=verdict.extra, metrics=verdict.metrics,
    )


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite floats become None (the database's JSON
    and Gradescope both refuse NaN), tuples become lists, anything else its ``str``."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return str(value)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
