"""Known-bug variants of an assignment, and handins built from them.

A variant is a folder ``bugs/<name>/`` holding an ``expect.toml``::

    fails = ["names of the tests this bug fails"]
    hint = "words the first failing test's message must contain"
    description = "what the bug is"
    variant = "spring-2020"   # optional: grade as this handout version (grader.variants)

    [[edit]]                  # any number: each replaces text that occurs exactly once
    file = "attention.py"
    replace = "        return self.dropout(weights) @ v\\n"
    with = "        return self.dropout(weights @ v)\\n"

and, optionally, whole files laid over the solution (a new file, or one rewritten too much
for an edit to read well). The handin is: the solution, then those files, then the edits
in order. An edit is stated against the text it changes, so a bug stays one small
difference from the solution and follows it when the rest of the file changes.

The hostile-submission corpus (tests/malicious) builds its handins the same way.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

EXPECT = "expect.toml"
CACHES = ("__pycache__", "*.pyc")


class BugError(Exception):
    """A variant folder that cannot be read or applied; the message says which and why."""


@dataclass(frozen=True)
class Edit:
    """Replace the one occurrence of ``replace`` in ``file`` with ``with_``; ``label``
    says where the edit is written (for messages)."""

    file: str
    replace: str
    with_: str
    label: str = "edit"

    @classmethod
    def parse(cls, table: Any, where: str) -> Edit:
        if not isinstance(table, Mapping):
            raise BugError(f"{where} must be a table with file, replace and with.")
        values = {key: table.get(key) for key in ("file", "replace", "with")}
        missing = [key for key, value in values.items() if not isinstance(value, str)]
        if missing:
            raise BugError(f"{where} needs {' and '.join(missing)} (text).")
        path = PurePosixPath(str(values["file"]))
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise BugError(f"{where}: file {values['file']!r} must be a relative path inside "
                           "the handin.")
        if not values["replace"]:
            raise BugError(f"{where}: replace is empty; say which text the bug changes.")
        return cls(path.as_posix(), str(values["replace"]), str(values["with"]), where)

    def apply(self, text: str) -> str:
        count = text.count(self.replace)
        if count != 1:
            found = "is not in" if count == 0 else f"occurs {count} times in"
            first = self.replace.strip().splitlines()[0] if self.replace.strip() else ""
            raise BugError(f"{self.label}: the text to replace ({first[:60]!r}…) {found} "
                           f"{self.file}; it must occur exactly once.")
        return text.replace(self.replace, self.with_)


def read_edits(expect: Mapping[str, Any], where: str) -> list[Edit]:
    """The ``[[edit]]`` tables of an expect.toml (``where`` names the file in messages)."""
    tables = expect.get("edit", [])
    if not isinstance(tables, list):
        raise BugError(f"{where}: edit must be an array of tables, written [[edit]].")
    return [Edit.parse(table, f"{where}, edit {i}") for i, table in enumerate(tables, 1)]


def overlay_files(folder: Path) -> list[Path]:
    """The files a variant lays over the solution (relative paths), expect.toml left out."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and p.name != EXPECT and "__pycache__" not in p.parts
                  and p.suffix != ".pyc")


@dataclass(frozen=True)
class KnownBug:
    name: str
    folder: Path
    fails: list[str]
    hint: str
    description: str
    edits: list[Edit]
    variant: str | None = None

    @classmethod
    def load(cls, folder: Path) -> KnownBug:
        where = f"bugs/{folder.name}/{EXPECT}"
        try:
            expect = tomllib.loads((folder / EXPECT).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BugError(f"bugs/{folder.name}/ has no {EXPECT} (it lists the tests the bug "
                           "fails, as fails = [...]).") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BugError(f"{where} is not valid TOML: {exc}") from None
        fails = expect.get("fails")
        if not isinstance(fails, list) or not fails or not all(isinstance(f, str) for f in fails):
            raise BugError(f"{where} needs fails = [...], the names of the tests this bug "
                           "fails.")
        variant = expect.get("variant")
        if variant is not None and not isinstance(variant, str):
            raise BugError(f"{where}: variant must be the name of a handout variant (text).")
        return cls(folder.name, folder, list(fails), str(expect.get("hint", "")),
                   str(expect.get("description", "")), read_edits(expect, where), variant)

    def touched(self) -> list[str]:
        """Every handin path the variant changes (laid-over files and edited ones)."""
        laid = [p.as_posix() for p in overlay_files(self.folder)]
        return sorted(set(laid) | {edit.file for edit in self.edits})

    def apply(self, handin: Path) -> None:
        """Lay the variant's files over ``handin`` (a writable copy of the solution), then
        make its edits."""
        lay_over(handin, self.folder)
        apply_edits(handin, self.edits)


def known_bugs(assignment_folder: Path) -> list[KnownBug]:
    """The assignment's variants, by name (folders without an expect.toml left out)."""
    root = assignment_folder / "bugs"
    folders = sorted(p for p in root.iterdir() if (p / EXPECT).is_file()) if root.is_dir() else []
    return [KnownBug.load(folder) for folder in folders]


def lay_over(handin: Path, folder: Path) -> None:
    for relative in overlay_files(folder):
        target = handin / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / relative, target)


def apply_edits(handin: Path, edits: Iterable[Edit]) -> None:
    for edit in edits:
        target = handin / edit.file
        if not target.is_file():
            raise BugError(f"{edit.label}: {edit.file} is neither in the solution nor laid "
                           "over it.")
        target.write_text(edit.apply(target.read_text(encoding="utf-8")), encoding="utf-8")


def copy_solution(solution: Path, handin: Path) -> Path:
    """A writable copy of ``solution`` (a stored folder is read-only), caches left out."""
    shutil.copytree(solution, handin, ignore=shutil.ignore_patterns(*CACHES))
    for path in [handin, *handin.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return handin


def build_handin(solution: Path, bug: KnownBug | None, handin: Path) -> Path:
    """The solution with ``bug`` applied, written to ``handin`` (which must not exist)."""
    copy_solution(solution, handin)
    if bug is not None:
        bug.apply(handin)
    return handin
