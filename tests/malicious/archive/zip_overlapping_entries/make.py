"""A12: a zip whose two central-directory entries point at the same local data (CVE-2024-0450)"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from tests.malicious.archive_members import solution_members


def make(solution: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in solution_members(solution):
            zf.writestr(info.name, data)
    raw = bytearray(out.read_bytes())
    # Point the second central-directory entry's local-header offset at the first's.
    records = [i for i in range(len(raw)) if raw[i:i + 4] == b"PK\x01\x02"]
    first = struct.unpack_from("<I", raw, records[0] + 42)[0]
    struct.pack_into("<I", raw, records[1] + 42, first)
    out.write_bytes(bytes(raw))
