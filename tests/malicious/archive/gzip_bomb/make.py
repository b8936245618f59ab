"""A8: a .tar.gz whose one extra member expands to 256 MB of zeros (about 250 KB compressed)"""

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

import gzip

SIZE = 256 << 20


def make(solution: Path, out: Path) -> None:
    """Streamed: neither the tar nor the zeros are ever held in memory."""
    with gzip.open(out, "wb", 6) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in solution_members(solution):
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("hw2/weights.bin")
        info.size = SIZE
        tar.addfile(info, _Zeros(SIZE))


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, 1 << 20)
        self.left -= n
        return bytes(n)
