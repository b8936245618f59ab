"""A6: a character device node (/dev/mem's numbers)"""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("hw2/mem", kind=tarfile.CHRTYPE, devmajor=1, devminor=1)])
