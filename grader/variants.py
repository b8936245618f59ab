"""Handout variants: one assignment, several versions of its handout (semesters).

A spec may list ``[[variants]]``, each a version of the handout that the same tests grade
with its own points, parameters and set of tests::

    variant = "auto"                # or a variant's name: the deployment's choice

    [[variants]]
    name = "spring-2021"
    title = "Spring 2021 handout"
    recognise = [{ file = "mytorch/conv.py", defines = "Conv2D" }]
    drop = []                       # tests of the spec that this handout does not have
    required_files = []             # replaces [submission] required_files when given
    [variants.tests."Conv1D forward"]
    points = 15                     # points, params (merged), visibility, timeout_s

    [[variants]]
    name = "spring-2020"            # no recognise: the fallback
    drop = ["Conv2D forward", "Conv2D backward"]

Which variant grades a handin: the spec's ``variant`` when it names one (a course pins the
semester it teaches, so a handin cannot choose its own rubric); with ``"auto"``, the first
variant whose ``recognise`` rules all hold for the handin, read from its source with
``ast`` (never imported on the trusted side). A variant without rules always matches, so
the last one is the fallback.

Versions of the homework that the assignment does not grade (another semester's, built on
other files) are listed as ``[[other_handouts]]``, each with ``recognise`` rules (a rule may
say ``absent = true``: the handin has no such file) and a ``message``. A handin recognised
as one is not graded, whatever ``variant`` says; the student reads the message instead of
every test failing for files of a homework they were not set.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.spec import AssignmentSpec, OtherHandout, RecogniseRule, VariantSpec

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    """The variant that grades a handin and why, in words for the student and staff."""

    name: str
    reason: str


def top_level_names(path: Path) -> set[str] | None:
    """Classes, functions and assigned names a Python file defines at its top level (None
    when it is missing or does not parse)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def rule_holds(rule: RecogniseRule, handin: Path) -> bool:
    """Whether one recognise rule holds for the extracted handin at ``handin``."""
    path = handin / rule.file
    if rule.absent:
        return not (path.exists() or path.is_symlink())
    if path.is_symlink() or not path.is_file():
        return False
    if rule.defines is None and rule.lacks is None:
        return True
    names = top_level_names(path)
    if names is None:
        return False
    if rule.defines is not None and rule.defines not in names:
        return False
    return rule.lacks is None or rule.lacks not in names


def describe(rules: Sequence[RecogniseRule]) -> str:
    """The rules as a phrase: "mytorch/conv.py defines Conv2D"."""
    parts = []
    for rule in rules:
        if rule.defines is not None:
            parts.append(f"{rule.file} defines {rule.defines}")
        if rule.lacks is not None:
            parts.append(f"{rule.file} does not define {rule.lacks}")
        if rule.absent:
            parts.append(f"there is no {rule.file}")
        elif rule.defines is None and rule.lacks is None:
            parts.append(f"{rule.file} exists")
    return " and ".join(parts)


def choose(spec: AssignmentSpec, handin: Path) -> Choice | None:
    """The variant that grades ``handin``; None when the spec has no variants."""
    if not spec.variants:
        return None
    if spec.variant != AUTO:
        return Choice(spec.variant, "this assignment is set to that handout")
    for variant in spec.variants:
        if all(rule_holds(rule, handin) for rule in variant.recognise):
            if variant.recognise:
                return Choice(variant.name, f"recognised because {describe(variant.recognise)}")
            return Choice(variant.name, "no other handout version was recognised")
    last = spec.variants[-1]
    return Choice(last.name, "no handout version was recognised; the last one is the default")


def other_handout(spec: AssignmentSpec, handin: Path) -> OtherHandout | None:
    """The first of the spec's ``[[other_handouts]]`` (homework versions it does not grade)
    whose rules all hold for ``handin``; None when the handin is not one of them. Checked
    whatever the spec's ``variant``: such a handin is not for any version graded here."""
    for other in spec.other_handouts:
        if all(rule_holds(rule, handin) for rule in other.recognise):
            return other
    return None


def not_graded(other: OtherHandout) -> str:
    """What the student reads: the spec's message, and what the handin was recognised by."""
    return f"{other.message.strip()} (recognised because {describe(other.recognise)})"


def apply(spec: AssignmentSpec, variant: VariantSpec) -> dict[str, Any]:
    """The spec's fields with ``variant`` applied (tests dropped and overridden), as data for
    ``AssignmentSpec.model_validate``; the result has no variants left."""
    data = spec.model_dump()
    tests = []
    for test in data["tests"]:
        if test["name"] in variant.drop:
            continue
        override = variant.tests.get(test["name"])
        if override is not None:
            changes = override.model_dump(exclude_none=True)
            own = changes.pop("params", {})
            params = {**test["params"], **own}
            defaulted = tuple(k for k in test["defaulted_params"] if k not in own)
            test = {**test, **changes, "params": params, "defaulted_params": defaulted}
        tests.append(test)
    data["tests"] = tests
    if variant.required_files is not None:
        data["submission"]["required_files"] = variant.required_files
    data["variants"] = ()
    data["variant"] = variant.name
    data["variant_title"] = variant.title or variant.name
    return data
