"""The similarity report of an assignment: pairs of students whose counted submissions
are suspiciously alike, found with copydetect (winnowing over the token stream, the
method of MOSS), not a comparison of our own.

Each student's counted submission is read from its stored archive (the grader's safe
extractor), its Python files joined in path order into one document; the starter code
is given to copydetect as boilerplate, so what every student was handed does not count
as copied. The reference solution is compared too (a handin that matches it stands
out). Pairs at or above ``threshold`` of either side's tokens are listed, most alike
first.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from copydetect import CodeFingerprint, compare_files

from grader.spec import AssignmentSpec
from web.code_view import read_files
from web.handout import starter_files

NOISE_K = 25  # tokens in a fingerprinted k-gram (copydetect's default)
WINDOW = 1
MAX_STUDENTS = 400
SOLUTION = "the reference solution"


@dataclass(frozen=True)
class Handin:
    label: str  # the student's e-mail, or SOLUTION
    submission_id: int | None
    code: str


@dataclass(frozen=True)
class Pair:
    first: Handin
    second: Handin
    first_share: float  # of the first's tokens found in the second
    second_share: float
    tokens: int

    @property
    def share(self) -> float:
        return max(self.first_share, self.second_share)


def joined(files: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"# ---- {path}\n{text}" for path, text in sorted(files))


def python_of(archive: Path, top_level: Sequence[str]) -> str:
    return joined([(f.path, f.text) for f in read_files(archive, top_level)
                   if f.path.endswith(".py") and f.text is not None])


def folder_code(folder: Path) -> str:
    if not folder.is_dir():
        return ""
    return joined([(p.relative_to(folder).as_posix(), p.read_text(errors="replace"))
                   for p in folder.rglob("*.py") if p.is_file() and not p.is_symlink()])


def fingerprint(code: str, boilerplate: Sequence[int] = ()) -> CodeFingerprint:
    return CodeFingerprint("handin.py", NOISE_K, WINDOW, boilerplate=list(boilerplate),
                           fp=io.StringIO(code))


def report(spec: AssignmentSpec, handins: Sequence[Handin],
           threshold: float = 0.5) -> list[Pair]:
    """The pairs of ``handins`` (and the solution) sharing ``threshold`` or more."""
    starter = joined([(p.name, p.read_text(errors="replace")) for p in starter_files(spec)
                      if p.suffix == ".py"])
    boilerplate = list(fingerprint(starter).hashes) if starter else []
    everyone = [*handins[:MAX_STUDENTS]]
    solution = folder_code(spec.folder / "solution")
    if solution:
        everyone.append(Handin(SOLUTION, None, solution))
    prints = [(h, fingerprint(h.code, boilerplate)) for h in everyone if h.code.strip()]
    pairs = []
    for (a, fa), (b, fb) in itertools.combinations(prints, 2):
        tokens, (share_a, share_b), _ = compare_files(fa, fb)
        if max(share_a, share_b) >= threshold:
            pairs.append(Pair(a, b, float(share_a), float(share_b), int(tokens)))
    return sorted(pairs, key=lambda p: (-p.share, p.first.label, p.second.label))
