"""docs/security-checklist.md stays true: every case of docs/security.md §6 has one row, and
every test or corpus case a row names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/security-checklist.md"
SERIES = {"A": 12, "B": 11, "C": 8, "D": 10, "E": 6, "F": 6, "G": 6, "H": 8}  # 67 cases
ROW = re.compile(r"^\| ([A-H]\d+) \| (.*?) \| (.*) \|$", re.M)


def rows() -> dict[str, str]:
    found: dict[str, str] = {}
    for case, _, tested_by in ROW.findall(DOC.read_text(encoding="utf-8")):
        assert case not in found, f"{case} has two rows"
        found[case] = tested_by
    return found


def test_every_case_of_the_checklist_has_a_row() -> None:
    wanted = {f"{series}{n}" for series, count in SERIES.items() for n in range(1, count + 1)}
    assert set(rows()) == wanted and len(wanted) == 67


def test_every_named_test_and_corpus_case_exists() -> None:
    for case, tested_by in rows().items():
        references = re.findall(r"`([^`]+)`", tested_by)
        if not references:
            assert tested_by.startswith("not covered: "), case
            continue
        for reference in references:
            path, *names = reference.split("::")
            if not names:
                assert (ROOT / path / "expect.toml").is_file(), f"{case}: no corpus case {path}"
                continue
            source = (ROOT / path).read_text(encoding="utf-8")
            *classes, function = names
            for name in classes:
                assert re.search(rf"^class {name}\b", source, re.M), f"{case}: {reference}"
            assert re.search(rf"^\s*def {function}\(", source, re.M), f"{case}: {reference}"


ISSUE_ROW = re.compile(r"^\| (12\.\d [^|]+) \| (.*?) \| (.*) \|$", re.M)


def test_the_issue_12_rows_name_tests_and_corpus_cases_that_exist() -> None:
    found = ISSUE_ROW.findall(DOC.read_text(encoding="utf-8"))
    assert len(found) >= 8
    for case, _, tested_by in found:
        for reference in re.findall(r"`([^`]+)`", tested_by):
            path, *names = reference.split("::")
            if not names:
                assert (ROOT / path / "expect.toml").is_file(), f"{case}: no corpus case {path}"
                continue
            source = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^\s*def {names[-1]}\(", source, re.M), f"{case}: {reference}"
