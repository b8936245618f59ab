"""A3: mytorch/conv.py is a symbolic link to /etc/passwd"""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.malicious.archive_members import member, solution_members, write_tar


def make(solution: Path, out: Path) -> None:
    rest = [m for m in solution_members(solution) if m[0].name != "mytorch/conv.py"]
    write_tar(out, [*rest, member("mytorch/conv.py", kind=tarfile.SYMTYPE, linkname="/etc/passwd")])
