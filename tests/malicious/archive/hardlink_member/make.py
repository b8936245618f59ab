"""A5: a hard link to /etc/shadow"""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("hw2/shadow", kind=tarfile.LNKTYPE, linkname="/etc/shadow")])
