"""grader/grade.py: the whole grading's time (budget, a caller's interrupt), an import
that hangs, and faults of the grading host (issues 17, 18 and 12.8).

A small assignment of three tests, each calling into the handin; the unisolated
sandbox ("none") keeps it fast."""

from __future__ import annotations

import errno
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from grader.grade import NOT_GRADED_HERE, grade_archive, grade_directory
from grader.outcomes import Outcome
from grader.registry import load_builtin_checks
from grader.results import GradingResult
from grader.spec import AssignmentSpec, load_spec
from sandbox.backend import LocalBackend
from tests.services import tar_gz

# Stands for Celery's SoftTimeLimitExceeded, which a task queue raises in the grading
# thread when the soft time limit passes (any exception class a check does not raise).
Stop = LookupError


def assignment(tmp_path: Path, body: str, *, total: float | None = None,
               call_timeout: float = 10, tests: int = 3, timeout: float = 30
               ) -> AssignmentSpec:
    """``tests`` tests whose check runs ``body`` (indented 4) with ``ctx`` and ``n``, the
    test's number; check names are unique per process."""
    folder = tmp_path / "hw"
    folder.mkdir(parents=True)
    name = f"timing_{secrets.token_hex(4)}"
    sandbox = f"[sandbox]\ncall_timeout_s = {call_timeout}\n"
    if total is not None:
        sandbox += f"total_timeout_s = {total}\n"
    tables = "".join(f'\n[[tests]]\nname = "Test {n}"\ncheck = "{name}"\npoints = 1\n'
                     f"timeout_s = {timeout}\nparams = {{n = {n}}}\n" for n in range(1, tests + 1))
    (folder / "spec.toml").write_text(f'slug = "hw"\ntitle = "hw"\n{sandbox}{tables}')
    code = "\n".join(f"    {line}" for line in body.strip().splitlines())
    (folder / "checks.py").write_text(
        "from grader.registry import check\n\n\n"
        f'@check("{name}")\ndef the_check(ctx):\n    n = ctx.params["n"]\n{code}\n')
    return load_spec(folder)


def handin(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "handin"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return folder


NAP = "import time\n\n\ndef nap(seconds):\n    time.sleep(seconds)\n    return 1\n"


def outcomes(result: GradingResult) -> list[Outcome]:
    return [test.outcome for test in result.tests]


@pytest.fixture(autouse=True)
def checks_loaded() -> None:
    """A worker imports the built-in checks (torch) before its first grading."""
    load_builtin_checks()


NAPS = 'ctx.session.import_module("slow").attr("nap").call(0 if n == 1 else 60)'


def test_the_total_budget_ends_the_grading_with_timeouts_for_the_rest(tmp_path: Path) -> None:
    """Test 2's call sleeps a minute, within its own 90 s; the submission's total is 8 s:
    test 2 is cut short when it is spent and test 3 is not run at all."""
    spec = assignment(tmp_path, NAPS, total=8, timeout=90)
    assert (spec.tests_timeout_s, spec.time_budget_s) == (270, 8)
    assert assignment(tmp_path / "b", "pass").time_budget_s == 90  # no total: the sum
    started = time.monotonic()
    result = grade_directory(spec, handin(tmp_path, slow=NAP), LocalBackend())
    assert time.monotonic() - started < 30
    assert outcomes(result) == [Outcome.PASSED, Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert "used up its total grading time of 8 s; tests after this one are not run" \
        in result.tests[1].output
    assert result.tests[2].output == ("Not run: this submission used up its total grading "
                                      "time of 8 s in the tests before this one.")
    assert result.score == 1 and result.infrastructure_error is None
    assert "time budget of 8 s spent" in "\n".join(result.staff_log)


def test_a_callers_budget_is_the_smaller(tmp_path: Path) -> None:
    spec = assignment(tmp_path, NAPS, total=600, timeout=90)
    result = grade_directory(spec, handin(tmp_path, slow=NAP), LocalBackend(), budget_s=8)
    assert outcomes(result) == [Outcome.PASSED, Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert "total grading time of 8 s" in result.tests[2].output


def test_an_interrupt_ends_the_grading_with_the_results_so_far(tmp_path: Path) -> None:
    """A soft time limit arriving in test 2: without being named it is a grader error
    and the grading runs on (what Celery's SoftTimeLimitExceeded did); named, it ends the
    grading as a timeout, keeping test 1's result."""
    body = ('if n == 2:\n    raise LookupError("soft time limit")\n'
            'ctx.session.import_module("slow").attr("nap").call(0)')
    spec = assignment(tmp_path, body)
    folder = handin(tmp_path, slow=NAP)
    swallowed = grade_directory(spec, folder, LocalBackend())
    assert outcomes(swallowed) == [Outcome.PASSED, Outcome.ERROR, Outcome.PASSED]
    ended = grade_directory(spec, folder, LocalBackend(), interrupts=(Stop,))
    assert outcomes(ended) == [Outcome.PASSED, Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert ended.tests[1].output.startswith("Time limit: the grading of this submission ran "
                                            "out of time")
    assert ended.tests[2].output.startswith("Not run:")
    assert "(the task's soft time limit)" in "\n".join(ended.staff_log)


def test_an_import_that_hangs_fails_the_later_tests_at_once(tmp_path: Path) -> None:
    """stuck.py sleeps at import. The first test waits its call timeout (5 s); the two
    after it fail at once with the reason, instead of each waiting 5 s again (15 s)."""
    spec = assignment(tmp_path, 'ctx.session.import_module("stuck")', call_timeout=5)
    started = time.monotonic()
    result = grade_directory(spec, handin(tmp_path, stuck="import time\ntime.sleep(60)\n"),
                             LocalBackend())
    elapsed = time.monotonic() - started
    assert outcomes(result) == [Outcome.TIMEOUT] * 3
    assert result.tests[0].output.startswith("Time limit: import stuck did not finish within 5 s")
    for later in result.tests[1:]:
        assert later.output.startswith("Time limit: import stuck did not finish in an earlier "
                                       "test (import stuck did not finish within 5 s), so it "
                                       "was not tried again")
    assert elapsed < 10, f"the later tests waited again ({elapsed:.1f} s)"


def test_an_import_cut_short_by_the_test_is_tried_again(tmp_path: Path) -> None:
    """Not a hang: the import had less than its own timeout (test 1's time was nearly
    spent), so test 2 imports it again, and it works."""
    body = ("if n == 1:\n    s = ctx.session\n    left = s.deadline - time.monotonic()\n"
            '    s.import_module("slow").attr("nap").call(left - 1.0)\n'
            'ctx.session.import_module("late")')
    spec = assignment(tmp_path, "import time\n" + body, call_timeout=10, tests=2, timeout=10)
    slow_import = "import time\ntime.sleep(3)\n"
    result = grade_directory(spec, handin(tmp_path, slow=NAP, late=slow_import),
                             LocalBackend())
    assert outcomes(result) == [Outcome.TIMEOUT, Outcome.PASSED]
    assert result.tests[0].output.startswith("Time limit: import late did not finish within")


def test_full_scratch_space_is_the_hosts_fault_not_the_handins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = assignment(tmp_path, 'ctx.session.import_module("slow")')
    archive = tmp_path / "handin.tar.gz"
    archive.write_bytes(tar_gz(handin(tmp_path, slow=NAP)))

    def full(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("grader.grade.tempfile.mkdtemp", full)
    result = grade_archive(spec, archive, LocalBackend())
    assert result.infrastructure_error is not None
    assert "no scratch space for the handin" in result.infrastructure_error
    assert result.rejected is None and outcomes(result) == [Outcome.ERROR] * 3
    assert all(test.output == NOT_GRADED_HERE for test in result.tests)


def test_a_disk_filling_up_during_extraction_is_the_hosts_fault(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = assignment(tmp_path, 'ctx.session.import_module("slow")')
    archive = tmp_path / "handin.tar.gz"
    archive.write_bytes(tar_gz(handin(tmp_path, slow=NAP)))

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("grader.grade.extract_archive", full)
    result = grade_archive(spec, archive, LocalBackend())
    assert result.infrastructure_error is not None and "could not be unpacked" in \
        result.infrastructure_error
    assert result.rejected is None
