"""A9: a file name of 4,000 bytes"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("hw2/" + "n" * 4000 + ".py", b"x = 1\n")])
