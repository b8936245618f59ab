"""``course.pytest`` and ``course.script``: a spec test whose verdict is the outcome of the
course's own tests, run unchanged on the trusted side (see ``grader.course_tests``).

Params (``[tests.params]``):

- ``file``: the test file, relative to ``folder``;
- ``folder``: the course's trusted test folder, relative to the assignment folder
  (default ``course_tests``; it never enters the sandbox, so fixtures may be secret);
- ``select``: which course tests this spec test is: for pytest, patterns (``fnmatch``)
  over node ids (``test_rnn.py::test_forward[case0]``) or the part after the file
  (``test_forward*``); for a script, the labels on its PASS/FAIL lines. Empty: all tests
  of the file (pytest) or the script's exit status (script);
- ``partial``: the fraction of selected tests passed, instead of all or nothing;
- ``args``: command-line arguments; ``modules``: names to proxy even where the trusted
  side has a module of that name;
- ``pass_words`` / ``fail_words`` (script): default PASS, PASSED / FAIL, FAILED, ERROR;
- ``run_timeout_s``: the whole run's limit (default the test's ``timeout_s``);
- ``plugins`` (pytest): plug-ins to load by name; installed plug-ins are not loaded
  unless named (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).

One file is run once per handin; every spec test naming it (same mode, folder, file and
args) reads that run. The run is charged to the first such test.
"""

from __future__ import annotations

import fnmatch
import re

from pydantic import Field

from grader.context import CheckContext, CheckFailed
from grader.course_tests.relay import RunReport, RunRequest, run_course_tests
from grader.params import CheckParams
from grader.registry import check
from sandbox.session import Session

DEFAULT_FOLDER = "course_tests"
PASS_WORDS = ("PASS", "PASSED")
FAIL_WORDS = ("FAIL", "FAILED", "ERROR")
MAX_MESSAGE = 3000


class CourseRunParams(CheckParams):
    """What ``course.pytest`` and ``course.script`` share (see the module docstring)."""

    file: str = Field(min_length=1, description="the course's test file, relative to folder")
    folder: str = Field(DEFAULT_FOLDER, description="the course's trusted test folder, "
                        "relative to the assignment folder")
    select: str | list[str] = Field(default_factory=list, description="which course tests "
                                    "this spec test is (empty: all of them)")
    partial: bool = Field(False, description="the fraction of selected tests passed instead "
                          "of all or nothing")
    args: list[str] = Field(default_factory=list, description="command-line arguments")
    modules: list[str] = Field(default_factory=list, description="names to proxy even where "
                               "the trusted side has a module of that name")
    run_timeout_s: float | None = Field(None, gt=0, description="the whole run's limit "
                                        "(default: the test's timeout_s)")


class PytestParams(CourseRunParams):
    plugins: list[str] = Field(default_factory=list, description="pytest plug-ins to load "
                               "by name")


class ScriptParams(CourseRunParams):
    pass_words: str | list[str] = Field(default_factory=lambda: list(PASS_WORDS),
                                        description="words that mark a passing line")
    fail_words: str | list[str] = Field(default_factory=lambda: list(FAIL_WORDS),
                                        description="words that mark a failing line")


@check("course.pytest", params=PytestParams)
def course_pytest(ctx: CheckContext) -> float | None:
    report = _run(ctx, "pytest")
    return _pytest_verdict(ctx, report)


@check("course.script", params=ScriptParams)
def course_script(ctx: CheckContext) -> float | None:
    report = _run(ctx, "script")
    return _script_verdict(ctx, report)


def _run(ctx: CheckContext, mode: str) -> RunReport:
    params: CourseRunParams = ctx.params
    folder = (ctx.spec.folder / params.folder).resolve()
    file = params.file
    args = tuple(params.args)
    key = f"course:{mode}:{folder}:{file}:{args!r}"
    if key not in ctx.grading:
        session = ctx.session
        run = RunRequest(
            mode=mode, folder=folder, file=file, args=args,
            modules=tuple(student_modules(session, ctx.spec.submission.python_path)),
            forced=tuple(params.modules),
            timeout_s=float(params.run_timeout_s if params.run_timeout_s is not None
                            else ctx.test.timeout_s),
            plugins=tuple(params.plugins) if isinstance(params, PytestParams) else (),
        )
        ctx.grading[key] = run_course_tests(session, run)
    report: RunReport = ctx.grading[key]
    return report


def student_modules(session: Session, python_path: tuple[str, ...]) -> list[str]:
    """Top-level module and package names of the handin under each python_path folder,
    as the sandbox lists them (a name the trusted side also has is never proxied)."""
    os_module = session.import_module("os")
    names: set[str] = set()
    for root in python_path:
        try:
            entries = os_module.method("listdir", root or ".")
        except Exception:  # noqa: BLE001 - a python_path folder the handin lacks
            continue
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            stem = entry[:-3] if entry.endswith(".py") else entry
            if stem.isidentifier() and (entry.endswith(".py") or "." not in entry):
                names.add(stem)
    return sorted(names)


def _selected(params: CourseRunParams) -> list[str]:
    select = params.select
    return [select] if isinstance(select, str) else list(select)


def _pytest_verdict(ctx: CheckContext, report: RunReport) -> float | None:
    patterns = _selected(ctx.params)
    cases = {nodeid: case for nodeid, case in report.cases.items()
             if not patterns or any(_matches(nodeid, p) for p in patterns)}
    if not cases:
        _fail_without_cases(ctx, report, ", ".join(patterns) or "any test")
    failed = {nodeid: case for nodeid, case in cases.items() if case["outcome"] != "passed"}
    if not failed:
        return None
    if report.died is not None:
        raise report.died
    lines = [f"{len(failed)} of {len(cases)} course tests failed:"]
    for nodeid, case in failed.items():
        lines.append(f"- {nodeid}")
        if ctx.detailed and case["message"].strip():
            lines.append(_indent(_tail(case["message"], 1200)))
    raise CheckFailed(_cap("\n".join(lines)), _fraction(ctx, len(cases), len(failed)))


def _matches(nodeid: str, pattern: str) -> bool:
    short = nodeid.split("::", 1)[-1]
    return fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(short, pattern)


def _script_verdict(ctx: CheckContext, report: RunReport) -> float | None:
    labels = _selected(ctx.params)
    if not labels:
        if report.exit_code == 0 and report.error is None and report.died is None:
            return None
        _fail_without_cases(ctx, report, "exit status 0")
    params: ScriptParams = ctx.params
    passes, fails = _words(params.pass_words), _words(params.fail_words)
    lines = report.stdout.splitlines()
    failed = []
    for label in labels:
        said = [line for line in lines if label in line]
        if not (said and any(passes.search(s) for s in said)
                and not any(fails.search(s) for s in said)):
            failed.append((label, said))
    if not failed:
        return None
    if report.died is not None:
        raise report.died
    text = [f"{len(failed)} of {len(labels)} course tests failed:"]
    for label, said in failed:
        shown = said[-3:] if said else ["(the runner printed no line for it)"]
        text.append(f"- {label}: " + (" | ".join(s.strip() for s in shown)
                                       if ctx.detailed else "failed"))
    if report.error or (report.exit_code not in (0, None) and ctx.detailed):
        text.append(_runner_trouble(report))
    raise CheckFailed(_cap("\n".join(text)), _fraction(ctx, len(labels), len(failed)))


def _words(words: str | list[str]) -> re.Pattern[str]:
    listed = [words] if isinstance(words, str) else words
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in listed) + r")\b")


def _fail_without_cases(ctx: CheckContext, report: RunReport, wanted: str) -> None:
    if report.died is not None:
        raise report.died
    raise CheckFailed(_cap(f"The course tests gave no result for {wanted}. "
                           + _runner_trouble(report)))


def _runner_trouble(report: RunReport) -> str:
    if report.error:
        return f"The course test run failed: {report.error}.\n{_tail(report.stderr, 1500)}"
    return (f"The course test run ended with exit status {report.exit_code}."
            + (f"\n{_tail(report.stderr, 1500)}" if report.stderr.strip() else ""))


def _fraction(ctx: CheckContext, total: int, failed: int) -> float:
    params: CourseRunParams = ctx.params
    return (total - failed) / total if params.partial and total else 0.0


def _tail(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _cap(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"
