"""Tar members for the archive attacks' ``make.py`` (tests/malicious/archive/<case>/): the
reference solution's files as members, so that only the attack is wrong, plus one member
of any kind, and a writer."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

Member = tuple[tarfile.TarInfo, bytes]


def solution_members(solution: Path) -> list[Member]:
    """The reference solution's files as tar members (caches left out)."""
    members = []
    for path in sorted(p for p in solution.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        data = path.read_bytes()
        info = tarfile.TarInfo(path.relative_to(solution).as_posix())
        info.size = len(data)
        members.append((info, data))
    return members


def write_tar(out: Path, members: list[Member], mode: str = "w:gz") -> None:
    with tarfile.open(out, mode) as tar:  # type: ignore[call-overload]
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
           **fields: object) -> Member:
    """One member ``name`` of type ``kind`` (a FIFO, a link, a device ...), with any other
    TarInfo fields set (``linkname``, ``mode``, ``uid`` ...)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data
