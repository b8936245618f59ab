"""A tiny uploaded-style assignment folder for tests: one course check (checks.py) that
reads ``VALUE`` from the student's answer.py, and a leaderboard of that value.
Grading it takes milliseconds with the ``none`` sandbox."""

from __future__ import annotations

from pathlib import Path

SPEC = '''\
slug = "tiny-hw"
title = "Tiny homework"

[submission]
required_files = ["answer.py"]

[[tests]]
name = "The answer"
check = "tiny.answer"
points = 10
files = ["answer.py"]

[[tests]]
name = "Twice the answer"
check = "tiny.double"
points = 5
files = ["answer.py"]
visibility = "after_due_date"
tags = ["functions"]

[[leaderboard]]
name = "Answer"
test = "The answer"
metric = "answer"
order = "desc"
'''

CHECKS = '''\
from grader.context import CheckFailed
from grader.registry import check


@check("tiny.answer")
def answer(ctx):
    value = ctx.session.import_module("answer").attr("VALUE")
    ctx.metrics["answer"] = float(value)
    if value != 42:
        raise CheckFailed(f"VALUE is {value!r}, not 42.")


@check("tiny.double")
def double(ctx):
    got = ctx.session.import_module("answer").attr("double").call(21)
    if got != 42:
        raise CheckFailed(f"double(21) returned {got!r}, not 42.", 0.5 if got else 0.0)
'''

SOLUTION = "VALUE = 42\n\n\ndef double(x):\n    return 2 * x\n"
BUG = "VALUE = 41\n\n\ndef double(x):\n    return x + x\n"
HANDOUT = "VALUE = None  # TODO\n\n\ndef double(x):\n    raise NotImplementedError\n"


def write_tiny(folder: Path, *, spec: str = SPEC, checks: str | None = CHECKS) -> Path:
    """The folder with spec.toml, checks.py, solution/, handout/ and bugs/off_by_one/."""
    for part in ("solution", "handout", "bugs/off_by_one"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(spec, encoding="utf-8")
    if checks is not None:
        (folder / "checks.py").write_text(checks, encoding="utf-8")
    (folder / "solution/answer.py").write_text(SOLUTION, encoding="utf-8")
    (folder / "handout/answer.py").write_text(HANDOUT, encoding="utf-8")
    (folder / "bugs/off_by_one/answer.py").write_text(BUG, encoding="utf-8")
    (folder / "bugs/off_by_one/expect.toml").write_text(
        'fails = ["The answer"]\nhint = "41"\ndescription = "off by one"\n', encoding="utf-8")
    return folder
