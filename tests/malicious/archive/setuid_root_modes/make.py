"""A7: every member is owned by root, mode 04777 (setuid, world-writable); accepted, extracted 0644 and owned by the service, so the sandbox sees plain read-only files"""

from __future__ import annotations

from pathlib import Path

from tests.malicious.archive_members import solution_members, write_tar


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
