"""rnn-gru-cells is graded three ways: dlgrade's own checks (spec.toml), the course's
runner script (spec-course.toml) and the course's pytest file (spec-pytest.toml), the last
two run unchanged through the proxies. All three give the solution full marks and make
every known bug lose exactly the tests its expect.toml lists; dlgrade's checks also give
each bug's hint. So the three agree on the solution and on every known bug."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grade import grade_path
from grader.known_bugs import build_handin, known_bugs
from grader.spec import load_spec
from grader.verify import StrictReport, verify_strict
from sandbox.backend import Backend

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/rnn-gru-cells"
SPECS = ("spec.toml", "spec-course.toml", "spec-pytest.toml")

pytestmark = pytest.mark.sandbox
_reports: dict[str, StrictReport] = {}


@pytest.mark.parametrize("spec_file", SPECS)
def test_each_grader_passes_the_strict_verify(process_backend: Backend, spec_file: str) -> None:
    spec = load_spec(ASSIGNMENT, spec_file)
    report = verify_strict(spec, process_backend, seed=13, hints=spec_file == "spec.toml")
    _reports[spec_file] = report
    assert report.problems == []
    assert len(report.bugs) == len(known_bugs(ASSIGNMENT)) >= 7
    if spec_file == "spec.toml":
        assert all(row.hint_found for row in report.bugs)


def test_the_three_graders_agree_on_every_known_bug(process_backend: Backend) -> None:
    for spec_file in SPECS:
        if spec_file not in _reports:
            spec = load_spec(ASSIGNMENT, spec_file)
            _reports[spec_file] = verify_strict(spec, process_backend, seed=5, hints=False)
    lost = {spec_file: {row.name: sorted(row.lost) for row in report.bugs}
            for spec_file, report in _reports.items()}
    assert lost["spec.toml"] == lost["spec-course.toml"] == lost["spec-pytest.toml"]
    assert all(report.solution_problems == [] for report in _reports.values())


def test_an_interface_mismatch_is_told_apart_from_an_exception(
    tmp_path: Path, process_backend: Backend
) -> None:
    spec = load_spec(ASSIGNMENT)
    renamed = next(bug for bug in known_bugs(ASSIGNMENT) if bug.name == "rnn_class_renamed")
    result = grade_path(spec, build_handin(ASSIGNMENT / "solution", renamed, tmp_path / "h"),
                        process_backend, seed=1)
    message = next(t.output for t in result.tests if t.name == "RNNCell forward")
    assert message.startswith("Your rnn_cell has no RNNCell")
    assert "raised" not in message
