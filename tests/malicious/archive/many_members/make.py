"""A9: 5,000 empty files after the solution (the cap is 2,000 entries)"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def solution_members(solution: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The reference solution's files as tar members (so only the attack is wrong)."""
    members = []
    for path in sorted(p for p in solution.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        data = path.read_bytes()
        info = tarfile.TarInfo(path.relative_to(solution).as_posix())
        info.size = len(data)
        members.append((info, data))
    return members


def write_tar(out: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> None:
    with tarfile.open(out, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data

def make(solution: Path, out: Path) -> None:
    write_tar(out, [*solution_members(solution), *(member(f"hw2/junk/{i}.py") for i in range(5000))])
