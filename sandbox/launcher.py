"""Builds the process sandbox from inside fresh namespaces, then becomes the agent.

Run by ``sandbox.process_backend`` as ``unshare --mount --net --pid ... python -I
launcher.py CONFIG_JSON``: it is still trusted code (no student code has run),
holding root inside the new mount namespace. It

0. moves itself into the sandbox's cgroup (``sandbox/cgroups.py``: memory, pids and CPU
   limits for the whole sandbox), when the backend made one;
1. makes every mount private, so nothing leaks back to the host;
2. assembles a new root on a small tmpfs: the host runtime (/usr, /lib, /etc,
   the Python prefixes) bound read-only, the submission read-only at
   /submission, public data read-only at /data, the agent at /agent, a
   size-capped /tmp and /dev/shm, a minimal /dev and a fresh /proc;
   then covers each masked path (held-out data inside mounted packages) with
   an empty read-only tmpfs (a folder) or ``/dev/null`` (a file);
3. chroots into it, sets rlimits, drops to an unprivileged uid with
   no-new-privileges and a parent-death signal, installs the seccomp filter
   the backend built (``sandbox/seccomp_bpf.py``, the Docker profile's deny-list;
   absent on a host that is not x86_64) and execs the agent.

Nothing of dlgrade but the agent and its protocol is visible afterwards: not the
reference code, not the data directory, not other submissions. Standard library
only.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 24, 22, 38
SECCOMP_MODE_FILTER = 2
DEVICES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    encoded = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def bind_read_only(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(source, target, None, MS_BIND | MS_REC, None)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def mount_tmpfs(target: str, size_mb: int, mode: str, flags: int = 0) -> None:
    os.makedirs(target, exist_ok=True)
    options = f"size={size_mb}m,mode={mode}"
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | flags, options)


def host_path(root: str, path: str) -> None:
    """Make host ``path`` visible at the same place under ``root`` (read-only)."""
    if os.path.islink(path) and os.path.dirname(path) == "/":
        os.symlink(os.readlink(path), root + path)  # merged-/usr links such as /bin -> usr/bin
    elif os.path.exists(path):
        bind_read_only(path, root + path)


def mask(root: str, target: str, folder: bool) -> None:
    """Cover ``target`` (a sandbox path) so that it reads as empty; fails closed."""
    path = root + target
    if not os.path.lexists(path) or os.path.realpath(path) != os.path.realpath(root) + target:
        raise OSError(f"cannot mask {target}: it is missing or behind a link in the sandbox")
    if folder:
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=555")
    else:
        mount("/dev/null", path, None, MS_BIND, None)
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, None)


def build_root(config: dict[str, Any]) -> str:
    root = config["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    mount_tmpfs(root, 16, "755")
    # /tmp and /dev first: a runtime that lives under /tmp (a venv in a CI checkout, say)
    # is then bound on top of the tmpfs instead of being hidden by it.
    mount_tmpfs(root + "/tmp", config["tmp_mb"], "1777")
    mount_tmpfs(root + "/dev", 1, "755", MS_NOEXEC)
    for name in DEVICES:
        open(f"{root}/dev/{name}", "a").close()
        mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND, None)
    mount_tmpfs(root + "/dev/shm", config["shm_mb"], "1777")
    for path in config["host_paths"]:
        host_path(root, path)
    for source, target in config["binds"]:
        bind_read_only(source, root + target)
    for target, folder in config["masks"]:
        mask(root, target, folder)
    os.makedirs(root + "/proc", exist_ok=True)
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    return str(root)


def set_limits(config: dict[str, Any]) -> None:
    mb = 1 << 20
    limits = {
        resource.RLIMIT_AS: config["memory_mb"] * mb,
        resource.RLIMIT_CPU: config["cpu_seconds"],
        resource.RLIMIT_NPROC: config["max_processes"],
        resource.RLIMIT_FSIZE: config["file_size_mb"] * mb,
        resource.RLIMIT_NOFILE: config["open_files"],
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


def drop_capability_bounding_set() -> None:
    """No capability survives the exec of the agent, even as root of a user namespace
    (the non-root mode, where ``uid`` is None): student code cannot undo a mount, such
    as the masks over held-out data."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")


def drop_privileges(uid: int | None) -> None:
    drop_capability_bounding_set()
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    # Changing credentials clears the parent-death signal that unshare set: set it again.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def install_seccomp(program: list[list[int]]) -> None:
    """Install a classic-BPF filter (``[code, jt, jf, k]`` rows) on this process and all
    it execs or forks; needs no-new-privileges first. Fails closed: no filter, no agent."""
    filters = (SockFilter * len(program))(*(SockFilter(*row) for row in program))
    fprog = SockFprog(len(program), filters)
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_SECCOMP): {os.strerror(errno)}")


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process (and so everything it starts) into the sandbox's cgroup, before
    anything else happens; fails closed."""
    for path in procs_files:
        with open(path, "w") as handle:
            handle.write("0")


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    join_cgroups(config.get("cgroup_procs", []))
    root = build_root(config)
    os.chroot(root)
    os.chdir("/submission")
    set_limits(config)
    drop_privileges(config["uid"])
    for fd in config["keep_fds"]:
        os.set_inheritable(fd, True)
    if config.get("seccomp"):
        install_seccomp(config["seccomp"])
    os.execve(config["argv"][0], config["argv"], config["env"])


if __name__ == "__main__":
    main(sys.argv[1:])
