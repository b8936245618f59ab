"""A10: mytorch/conv.py twice, the second copy a wrong one that would win on a plain extract"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("mytorch/conv.py", b"raise SystemExit\n")])
