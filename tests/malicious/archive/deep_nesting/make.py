"""A9: one file nested 40 directories deep"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("hw2/" + "d/" * 40 + "x.py", b"x = 1\n")])
