"""A7: every member is owned by root, mode 04777 (setuid, world-writable); accepted, extracted 0644 and owned by the service, so the sandbox sees plain read-only files"""

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
    members = []
    for info, data in solution_members(solution):
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o4777, 0, 0, "root", "root"
        members.append((info, data))
    mc = next(data for info, data in members if info.name == "hw2/mc.py")
    probe = (b"import os, stat\n"
             b"for _p in ('/submission/hw2/mc.py', '/submission/mytorch/conv.py'):\n"
             b"    _m = os.stat(_p).st_mode\n"
             b"    print('MODE', _p, oct(stat.S_IMODE(_m)), 'writable' if os.access(_p, os.W_OK) else 'read-only')\n")
    members = [(i, probe + mc if i.name == "hw2/mc.py" else d) for i, d in members]
    for info, data in members:
        info.size = len(data)
    write_tar(out, members)
