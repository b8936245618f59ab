"""A2: an absolute member /tmp/pwn"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [member("/tmp/pwn", b"pwned\n"), *solution_members(solution)])
