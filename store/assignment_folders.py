"""Uploaded assignment folders: unpacked, validated, and stored immutably.

A course's own assignment arrives as a folder or an archive (.tar, .tar.gz, .zip, read
with the grader's safe extractor). It is checked the way a TA would want to hear about
it (spec.toml, slug, checks.py, solution/ and handout/, known-bug overlays, size) and
stored under ``<data_dir>/assignments/<course>/<slug>/<sha256>/``, named by the hash of
its content and read-only: an update is a new folder, so a submission being graded keeps
the files it started with, and uploading the same folder twice stores it once.

Loading ``checks.py`` runs it: it is trusted course-staff code, as in the built-ins.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from grader.extract import ExtractionError, ExtractLimits, extract_archive
from grader.known_bugs import BugError, KnownBug, build_handin
from grader.params import problems as params_problems
from grader.registry import load_folder_checks
from grader.spec import AssignmentSpec, SpecError, builtin_assignments, load_spec

MAX_FOLDER_BYTES = 256 << 20
MAX_FOLDER_FILES = 5000
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
COURSE_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class FolderError(Exception):
    """An assignment folder that cannot be used; ``problems`` are sentences for a TA."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class FolderLimits:
    max_bytes: int = MAX_FOLDER_BYTES
    max_files: int = MAX_FOLDER_FILES
    # The longest a grading may take (tasks.broker.grading_budget); None: not checked.
    grading_s: float | None = None


@dataclass(frozen=True)
class StoredFolder:
    """A validated folder in the data dir; ``spec.folder`` is ``path``."""

    spec: AssignmentSpec
    path: Path
    sha256: str


def add_folder(
    source: Path, data_dir: Path, course: str, *, expected_slug: str | None = None,
    limits: FolderLimits = FolderLimits(),
) -> StoredFolder:
    """Unpack ``source`` (folder or archive), validate it and store it; FolderError if not."""
    if not COURSE_SLUG.match(course):
        raise FolderError(f"{course!r} cannot name a course folder; use letters, digits, "
                          "'.', '_' and '-'.")
    with tempfile.TemporaryDirectory(prefix="dlgrade-assignment-") as scratch:
        folder = unpack(source, Path(scratch), limits)
        spec = validate(folder, limits=limits, expected_slug=expected_slug)
        path, digest = store(folder, data_dir / "assignments" / course / spec.slug)
    return StoredFolder(load_spec(path), path, digest)


def unpack(source: Path, scratch: Path, limits: FolderLimits = FolderLimits()) -> Path:
    """The folder itself, or the archive extracted into ``scratch`` (a wrapper folder
    around the files is removed, as for handins)."""
    if source.is_dir():
        return source
    if not source.is_file():
        raise FolderError(f"{source} does not exist.")
    dest = scratch / "assignment"
    dest.mkdir()
    caps = ExtractLimits(max_total_bytes=limits.max_bytes, max_members=limits.max_files,
                         max_depth=16)
    try:
        return extract_archive(source, dest, limits=caps).root
    except ExtractionError as exc:
        raise FolderError(f"{source.name}: {exc}") from None


def validate(
    folder: Path, *, limits: FolderLimits = FolderLimits(), expected_slug: str | None = None
) -> AssignmentSpec:
    """The folder's spec, or FolderError listing every problem found."""
    _check_size(folder, limits)
    spec = _read_spec(folder)
    if expected_slug is not None and spec.slug != expected_slug:
        raise FolderError(f"spec.toml says slug = {spec.slug!r}, but this is the assignment "
                          f"{expected_slug!r}; upload the folder of {expected_slug!r}, or "
                          "create a new assignment for this one.")
    if spec.slug in builtin_assignments():
        raise FolderError(f"{spec.slug!r} is the slug of a built-in assignment; choose "
                          "another slug in spec.toml.")
    problems = _check_checks(folder, spec) + _check_folders(folder, spec) + _check_bugs(folder,
                                                                                      spec)
    if limits.grading_s is not None and spec.time_budget_s > limits.grading_s:
        problems.append(f"The tests' timeouts (timeout_s) add up to {spec.tests_timeout_s:g} s, "
                        f"more than the {limits.grading_s:g} s a grading may take on this "
                        "service (DLGRADE_TASK_TIME_LIMIT); lower them, cap the whole "
                        "grading with [sandbox] total_timeout_s, or ask for a longer task "
                        "time limit.")
    if problems:
        raise FolderError(problems)
    return spec


def _check_size(folder: Path, limits: FolderLimits) -> None:
    files = total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise FolderError(f"{path.relative_to(folder).as_posix()} is a link; an assignment "
                              "folder holds regular files only (copy the file in instead).")
        if path.is_file() and "__pycache__" not in path.parts:
            files += 1
            total += path.stat().st_size
    if files > limits.max_files:
        raise FolderError(f"The assignment folder holds {files} files; the limit is "
                          f"{limits.max_files}.")
    if total > limits.max_bytes:
        raise FolderError(f"The assignment folder holds {total:,} bytes; the limit is "
                          f"{limits.max_bytes:,}.")


def _read_spec(folder: Path) -> AssignmentSpec:
    if not (folder / "spec.toml").is_file():
        raise FolderError("There is no spec.toml at the top of the assignment folder (every "
                          "assignment needs one).")
    try:
        return load_spec(folder)
    except SpecError as exc:
        raise FolderError(str(exc).replace(str(folder / "spec.toml"), "spec.toml")) from None


# Packages a worker has and the web role does not (pyproject.toml: worker, torch-*).
WORKER_ONLY = frozenset({"torch", "sklearn", "docker", "mlxtend", "scattertext"})


def _check_checks(folder: Path, spec: AssignmentSpec) -> list[str]:
    """checks.py imports, every test's check is built in or defined there, and each test's
    params fit its check (grader.params), in every handout version."""
    try:
        load_folder_checks(folder)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        advice = (" The web service installs only the web role's packages (no PyTorch, "
                  "scikit-learn or docker): import it inside the check functions that use "
                  "it, not at the top of checks.py, or add the assignment with `dlgrade "
                  "assignments add` on a worker host." if missing in WORKER_ONLY else "")
        return [f"checks.py fails to import{_line_in(exc, folder / 'checks.py')}: it imports "
                f"{missing or exc}, which is not installed here.{advice}"]
    except Exception as exc:  # noqa: BLE001 - any fault of course code becomes a sentence
        return [f"checks.py fails to import{_line_in(exc, folder / 'checks.py')}: "
                f"{traceback.format_exception_only(exc)[-1].strip()}"]
    return [f"spec.toml: {problem}" if problem.startswith(("tests.", "defaults.")) else problem
            for problem in params_problems(spec)]


def _line_in(exc: BaseException, path: Path) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" (line {exc.lineno})"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if Path(frame.filename).resolve() == path.resolve()]
    return f" (line {lines[-1]})" if lines else ""


def _check_folders(folder: Path, spec: AssignmentSpec) -> list[str]:
    """solution/ must exist; solution/ and handout/ must hold the required files."""
    if not (folder / "solution").is_dir():
        return ["There is no solution/ folder; every assignment needs its reference solution "
                "(--verify grades it, and staff compare handins with it)."]
    problems = []
    for part in ("solution", "handout"):
        if not (folder / part).is_dir():
            continue
        for required in spec.submission.required_files:
            if not (folder / part / required).is_file():
                problems.append(f"{part}/ lacks {required}, which spec.toml lists in "
                                "[submission] required_files.")
    return problems


def _check_bugs(folder: Path, spec: AssignmentSpec) -> list[str]:
    """Every bugs/<name>/ has an expect.toml naming the tests it fails, and its edits
    apply to the solution."""
    root = folder / "bugs"
    if not root.is_dir():
        return []
    tests = {test.name for test in spec.tests}
    problems = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            bug = KnownBug.load(path)
            if (folder / "solution").is_dir():
                with tempfile.TemporaryDirectory(prefix="dlgrade-bug-") as scratch:
                    build_handin(folder / "solution", bug, Path(scratch) / "handin")
        except BugError as exc:
            problems.append(str(exc))
            continue
        problems += [f"bugs/{bug.name}/expect.toml names {name!r}, which is not a test in "
                     "spec.toml." for name in bug.fails if name not in tests]
    return problems


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and content (caches left out)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def store(folder: Path, root: Path) -> tuple[Path, str]:
    """Copy ``folder`` to ``root/<sha256>/`` (read-only) unless it is already there."""
    digest = folder_digest(folder)
    final = root / digest
    if final.is_dir():
        return final, digest
    root.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    try:
        copy = incoming / "folder"
        shutil.copytree(folder, copy, ignore=IGNORED, symlinks=True)
        _set_modes(copy, directory=0o555, file=0o444)
        os.rename(copy, final)  # the top stays writable until here: rename updates its ".."
        final.chmod(0o555)
    except OSError:
        if not final.is_dir():  # else another upload of the same folder won the race
            raise
    finally:
        _set_modes(incoming, directory=0o755, file=0o644)
        shutil.rmtree(incoming, ignore_errors=True)
    return final, digest


def _set_modes(folder: Path, *, directory: int, file: int) -> None:
    """Modes of everything below ``folder`` (not ``folder`` itself)."""
    if directory & 0o200:  # opening up: parents first, so their children can be listed
        for path in sorted(folder.rglob("*")):
            path.chmod(directory if path.is_dir() else file)
        return
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(directory if path.is_dir() else file)
