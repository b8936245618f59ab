"""``dlgrade assignments new SLUG --from HANDOUT_DIR``: an assignment folder to fill in.

From a course's handout (its starter code, and its local autograder if it ships one) this
writes::

    SLUG/spec.toml        one test per class or function the handout defines, a
                          [submission] with required_files, python_path and (when
                          they all lie in one folder) top_level, [defaults]
    SLUG/checks.py        a check template per test, importing only grader.api
    SLUG/handout/         the handout as given
    SLUG/solution/        a copy of the handout, to complete into the reference solution
    SLUG/bugs/example/    one example known bug (an [[edit]] to point at the solution)
    SLUG/course_tests/    the course's own test files and fixtures, if the handout has
                          any (runner.py, *autograder*.py, test_*.py, *_test.py,
                          conftest.py, autograder/ or tests/ folders, *.npz ...):
                          trusted, never in the sandbox, never in solution/, run by
                          course.script / course.pytest tests

Nothing is guessed silently: every place to fill in says TODO. docs/writing-assignments.md
walks through the rest.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE_SUFFIXES = (".npz", ".npy", ".pkl", ".pt", ".json", ".csv", ".txt")
TEST_FOLDERS = ("autograder", "tests", "test", "local_autograder")


class ScaffoldError(Exception):
    """The scaffold cannot be written; the message says why."""


@dataclass
class Found:
    """What the handout defines: module path -> public classes and functions."""

    definitions: dict[str, list[str]] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=lambda: [""])
    course_files: list[Path] = field(default_factory=list)


def scaffold(slug: str, handout: Path, destination: Path) -> Path:
    """Write the assignment folder for ``handout`` at ``destination``; returns it."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", slug):
        raise ScaffoldError(f"{slug!r} cannot be a slug: use lower-case letters, digits and "
                            "dashes")
    if not handout.is_dir():
        raise ScaffoldError(f"{handout} is not a folder")
    if destination.exists() and any(destination.iterdir()):
        raise ScaffoldError(f"{destination} already exists and is not empty")
    found = survey(handout)
    for part in ("handout", "solution"):
        shutil.copytree(handout, destination / part, ignore=_ignored(found, handout))
    _write_course_tests(found, handout, destination / "course_tests")
    tests = _tests(slug, found)
    (destination / "spec.toml").write_text(_spec(slug, found, tests), encoding="utf-8")
    (destination / "checks.py").write_text(_checks(tests), encoding="utf-8")
    _example_bug(destination / "bugs" / "example", tests)
    return destination


def survey(handout: Path) -> Found:
    found = Found()
    bare_imports: set[str] = set()
    folders_of: dict[str, str] = {}
    for path in sorted(handout.rglob("*")):
        relative = path.relative_to(handout)
        if not path.is_file() or "__pycache__" in relative.parts:
            continue
        course = _is_course_file(relative)
        if course:
            found.course_files.append(relative)
        tree = _parse(path) if path.suffix == ".py" else None
        if tree is None:
            continue
        bare_imports |= _imported_names(tree)
        if course:
            continue
        names = [node.name for node in tree.body
                 if isinstance(node, ast.ClassDef | ast.FunctionDef)
                 and not node.name.startswith("_")]
        if not names and _assigns(tree):
            names = ["answers"]  # a module of plain values: multiple choice, numbers
        if names:
            found.definitions[relative.as_posix()] = names
        folders_of[path.stem] = relative.parent.as_posix()
    found.python_path += sorted({folders_of[name] for name in bare_imports
                                 if folders_of.get(name, ".") not in (".", "")})
    return found


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return None


def _assigns(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Assign | ast.AnnAssign) for node in tree.body)


def _imported_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _is_course_file(relative: Path) -> bool:
    """The course's grader, not student code: a file in a test folder, a runner script
    (``runner.py``, ``hw1p1_autograder.py``), its helpers named after it
    (``hw1p1_autograder_flags.py``), a pytest file or a conftest.py."""
    in_tests = bool(set(relative.parts[:-1]) & set(TEST_FOLDERS))
    name = relative.name
    is_test = relative.suffix == ".py" and (
        _course_kind(relative) is not None or "autograder" in name or name == "conftest.py")
    return is_test or (in_tests and (relative.suffix in FIXTURE_SUFFIXES or name.endswith(".py")))


def _course_kind(relative: Path) -> str | None:
    """The check kind of a course file that is run as a whole, or None (helpers, data)."""
    name = relative.name
    if name == "runner.py" or name.endswith("autograder.py"):
        return "course.script"
    if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
        return "course.pytest"
    return None


def _ignored(found: Found, handout: Path) -> Callable[[str, list[str]], list[str]]:
    course = {str(handout / p) for p in found.course_files}

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or str(Path(folder) / n) in course]

    return ignore


def _write_course_tests(found: Found, handout: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    for relative in found.course_files:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(handout / relative, target)
    (folder / "README.md").write_text(
        "# Course tests (trusted)\n\nThe course's own test files and fixtures. This folder "
        "never enters the sandbox: fixtures here may be secret. `course.pytest` and "
        "`course.script` tests run these files unchanged, with the student's modules as "
        "proxies (docs/course-tests.md).\n", encoding="utf-8")


@dataclass(frozen=True)
class Planned:
    name: str
    check: str
    module: str
    definition: str
    file: str


def _tests(slug: str, found: Found) -> list[Planned]:
    prefix = slug.replace("-", "_")
    planned = []
    for file, names in found.definitions.items():
        module = _module_name(file, found.python_path)
        for name in names:
            planned.append(Planned(f"{name} ({file})", f"{prefix}.{_snake(name)}", module,
                                   name, file))
    return planned


def _module_name(file: str, python_path: list[str]) -> str:
    path = Path(file).with_suffix("")
    for root in sorted(python_path, key=len, reverse=True):
        if root and path.is_relative_to(root):
            return ".".join(path.relative_to(root).parts)
    return ".".join(path.parts)


def _snake(name: str) -> str:
    """GRUCell -> gru_cell, MultiHeadAttention -> multi_head_attention."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _spec(slug: str, found: Found, tests: list[Planned]) -> str:
    required = sorted({t.file for t in tests})
    lines = [
        f'slug = "{slug}"', f'title = "{slug} (TODO: title)"',
        'description = "TODO: one sentence for students."', "",
        "[submission]", f"required_files = {_toml_list(required)}",
        "# Folders (relative to the handin root) put first on sys.path in the sandbox.",
        f"python_path = {_toml_list(found.python_path)}", *_top_level(required), "",
        "# [policy]  # TODO: a NumPy-only homework forbids the libraries that would do it",
        '# forbidden_imports = ["torch", "tensorflow", "jax"]',
        '# reason = "this homework is NumPy only"', "",
        "[defaults]  # laid under every test: a test's own keys win",
        "timeout_s = 60", "[defaults.params]", "values_rtol = 1e-5", "gradients_rtol = 1e-4", "",
    ]
    for test in tests:
        lines += ["[[tests]]", f'name = "{test.name}"', f'check = "{test.check}"',
                  "points = 10  # TODO", f'files = ["{test.file}"]',
                  f'params = {{ module = "{test.module}", name = "{test.definition}" }}', ""]
    for relative in found.course_files:
        kind = _course_kind(relative)
        if kind is not None:
            lines += ["# The course's own tests, run unchanged (select = their test ids or",
                      "# the labels of their PASS/FAIL lines). TODO: points, select.",
                      "[[tests]]", f'name = "Course tests: {relative.as_posix()}"',
                      f'check = "{kind}"', "points = 0", "timeout_s = 300",
                      f'params = {{ file = "{relative.as_posix()}", select = [] }}', ""]
    return "\n".join(lines)


def _top_level(required: list[str]) -> list[str]:
    """``top_level`` when every required file lies in one folder (all in mytorch/): a
    handin of just that folder is then kept as it is, not taken for a wrapper and
    stripped (which would lose mytorch/ from every path)."""
    tops = {Path(file).parts[0] if len(Path(file).parts) > 1 else "" for file in required}
    if len(tops) != 1 or "" in tops:
        return []
    return ["# A handin whose only top-level entry is this folder keeps it (not a wrapper).",
            f"top_level = {_toml_list(sorted(tops))}"]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _checks(tests: list[Planned]) -> str:
    header = '''"""Trusted checks of this assignment (they run on the grader, never in the sandbox).

Import only grader.api; helpers of this folder with relative imports
(``from .reference import ...``). See docs/writing-assignments.md.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from grader.api import (
    CheckContext,
    CheckFailed,
    Tolerances,
    check,
    construct,
    expect_array,
    student_class,
)


class Target(Tolerances):
    """The params these checks take (spec.toml [tests.params]); a key not declared here is
    an error when the folder is added. Add a field for each key a check reads."""

    module: str = Field(description="the student's module, e.g. 'gru_cell'")
    name: str = Field(description="its class or function, e.g. 'GRUCell'")
'''
    blocks = [header]
    for test in tests:
        blocks.append(f'''

@check("{test.check}", params=Target)
def {test.check.split(".")[-1]}(ctx: CheckContext) -> float | None:
    """{test.name}: TODO compare with the reference (inputs from ctx.rng, never fixed)."""
    params: Target = ctx.params
    cls = student_class(ctx, params.module, params.name)
    # obj = construct(ctx, cls, ...)               # the constructor's arguments
    # x = ctx.rng.standard_normal((2, 3))          # fresh inputs every attempt
    # got = obj.method("forward", x)               # arrays cross as data
    # expect_array(ctx, "forward(x)", got, reference_forward(x))
    raise CheckFailed("TODO: this check is not written yet")
''')
    return "".join(blocks)


def _example_bug(folder: Path, tests: list[Planned]) -> None:
    folder.mkdir(parents=True)
    first = tests[0] if tests else None
    fails = f'"{first.name}"' if first else '"TODO: test name"'
    file = first.file if first else "TODO.py"
    (folder / "expect.toml").write_text(
        "# A known bug: the solution with these edits must lose exactly the tests in fails,\n"
        "# with the hint in the first failing test's message (dlgrade assignments add\n"
        "# --verify). TODO: make `replace` a line of your solution, `with` the bug.\n"
        f"fails = [{fails}]\n"
        'hint = "TODO: words the failing message must contain"\n'
        'description = "TODO: what the bug is"\n\n'
        "[[edit]]\n"
        f'file = "{file}"\n'
        'replace = "TODO: one line of the solution, exactly as written"\n'
        'with = "TODO: the same line with the bug"\n', encoding="utf-8")
