"""A1: a member named ../../etc/cron.d/x next to the solution"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("../../etc/cron.d/x", b"* * * * * root id\n")])
