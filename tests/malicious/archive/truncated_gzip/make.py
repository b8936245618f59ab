"""A11: the solution's .tar.gz cut off in the middle"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, solution_members(solution))
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
