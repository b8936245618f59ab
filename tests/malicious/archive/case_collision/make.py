"""A10: hw2/MC.py next to hw2/mc.py (the same file on a case-insensitive disk)"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("hw2/MC.py", b"raise SystemExit\n")])
