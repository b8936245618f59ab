"""A4: a directory symlink d -> /tmp followed by a file d/x written through it"""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), member("d", kind=tarfile.SYMTYPE, linkname="/tmp"),
                    member("d/x", b"through the link\n")])
