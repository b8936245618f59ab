"""A9: 5,000 empty files after the solution (the cap is 2,000 entries)"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), *(member(f"hw2/junk/{i}.py") for i in range(5000))])
