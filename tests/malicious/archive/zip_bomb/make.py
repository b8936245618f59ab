"""A8: a zip whose extra entry inflates 256 MB of zeros from about 250 KB"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.malicious.archive_members import solution_members

SIZE = 256 << 20


def make(solution: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in solution_members(solution):
            zf.writestr(info.name, data)
        with zf.open("hw2/weights.bin", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(SIZE >> 20):
                entry.write(chunk)
