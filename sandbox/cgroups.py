"""Aggregate limits for the process sandbox: one cgroup per sandbox (issue 12.6).

Per-process rlimits do not add up: a sandbox of many processes (a fork, a data loader,
``multiprocessing``) could hold many times its memory and CPU, and 64 such processes
could take the host down. Each process sandbox therefore gets a cgroup of its own,
limiting the whole sandbox:

* memory: ``memory_mb`` in all (tmpfs pages count), no swap; an OOM kill there is
  reported as the memory limit;
* pids: ``max_processes * PIDS_PER_PROCESS`` tasks (threads count, as Docker's
  ``pids_limit`` does);
* CPU: ``threads`` CPUs' worth of time per period.

Both hierarchies are supported: cgroup v2 (the unified one; the worker's own cgroup must
have the three controllers enabled for its children, as a systemd unit with
``Delegate=yes`` and a worker in a leaf of it provides) and cgroup v1 (one hierarchy per
controller; the sandbox's group is made under the worker's own group in each). The
launcher moves itself into the group before it runs anything else, so every process of
the sandbox is inside from the start; student code never sees ``/sys``.

Where no such group can be made (no root, no delegation, a controller missing),
:func:`unavailable_reason` says why; the worker then refuses to run untrusted code in
production, or warns (``DLGRADE_SANDBOX_LIMITS``, as ``DLGRADE_RUNTIME_CHECK`` does for
runc). Standard library only.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
PIDS_PER_PROCESS = 4  # as DockerSettings.pids_per_process
CPU_PERIOD_US = 100_000
PREFIX = "dlgrade-"


@dataclass(frozen=True)
class Hierarchy:
    """Where this worker makes sandbox groups: one parent folder (v2) or one per
    controller (v1)."""

    version: int
    parents: dict[str, Path]  # controller -> the worker's own group folder


@dataclass
class Cgroup:
    """One sandbox's group(s)."""

    version: int
    folders: dict[str, Path]  # controller -> folder (v2: the same folder for all)
    memory_mb: int

    @property
    def procs_files(self) -> list[str]:
        """What the launcher writes "0" to, to move itself in."""
        return sorted({str(folder / "cgroup.procs") for folder in self.folders.values()})

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this sandbox for its memory limit?"""
        folder = self.folders["memory"]
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (folder / name).read_text()
        except OSError:
            return False
        counts = dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)
        return int(counts.get("oom_kill", "0")) > 0

    def oom_message(self) -> str | None:
        if self.oom_killed():
            return f"your code exceeded the {self.memory_mb} MB memory limit"
        return None

    def remove(self, wait_s: float = 5.0) -> None:
        """Kill whatever is left in the group, then remove it (idempotent)."""
        deadline = time.monotonic() + wait_s
        for folder in set(self.folders.values()):
            while folder.exists():
                self._kill(folder)
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)

    def _kill(self, folder: Path) -> None:
        try:
            if self.version == 2 and (folder / "cgroup.kill").exists():
                (folder / "cgroup.kill").write_text("1")
                return
            for pid in (folder / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except OSError:
            pass


def _own_groups() -> dict[str, str]:
    """controller (or "" for v2) -> this process's group path, from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
    return groups


def _mounts() -> dict[str, tuple[Path, str]]:
    """controller (or "" for v2) -> (mount point, the group the mount shows at its root),
    from /proc/self/mountinfo."""
    found: dict[str, tuple[Path, str]] = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            after = fields[fields.index("-") + 1:]
            mount = (Path(fields[4]), fields[3])
            fstype, options = after[0], after[2].split(",")
            if fstype == "cgroup2":
                found.setdefault("", mount)
            elif fstype == "cgroup":
                for controller in CONTROLLERS:
                    if controller in options:
                        found.setdefault(controller, mount)
    return found


def _folder(mount: tuple[Path, str], group: str) -> Path:
    point, root = mount
    inside = os.path.relpath(group, root) if group.startswith(root) else group.lstrip("/")
    return point if inside == "." else point / inside


def detect() -> Hierarchy | str:
    """Where sandbox groups can be made on this host, or why they cannot."""
    try:
        groups, mounts = _own_groups(), _mounts()
    except (OSError, ValueError, IndexError) as exc:
        return f"the cgroups of this process cannot be read ({exc})"
    v1 = {c: _folder(mounts[c], groups[c]) for c in CONTROLLERS if c in mounts and c in groups}
    if len(v1) == len(CONTROLLERS):
        return _writable(Hierarchy(1, v1))
    if "" in mounts and "" in groups:
        parent = _folder(mounts[""], groups[""])
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
        except OSError as exc:
            return f"cgroup v2 at {parent} cannot be read ({exc})"
        missing = [c for c in CONTROLLERS if c not in enabled]
        if missing:
            return (f"the worker's cgroup {parent} does not delegate the {', '.join(missing)} "
                    "controller(s) to its children (run the worker in a delegated cgroup, "
                    "e.g. a systemd unit with Delegate=yes)")
        return _writable(Hierarchy(2, dict.fromkeys(CONTROLLERS, parent)))
    return "no cgroup hierarchy with the memory, pids and cpu controllers is mounted"


def _writable(hierarchy: Hierarchy) -> Hierarchy | str:
    for controller, parent in hierarchy.parents.items():
        if not os.access(parent, os.W_OK):
            return (f"the worker may not make cgroups under {parent} ({controller}); run it as "
                    "root or give it a delegated cgroup")
    return hierarchy


def unavailable_reason() -> str | None:
    """None when per-sandbox cgroups can be made here, else why not."""
    found = detect()
    return found if isinstance(found, str) else None


def create(hierarchy: Hierarchy, *, memory_mb: int, max_processes: int,
           cpus: int) -> Cgroup:
    """A new, empty group with the sandbox's limits; OSError when one cannot be made."""
    name = PREFIX + secrets.token_hex(8)
    folders = {c: parent / name for c, parent in hierarchy.parents.items()}
    group = Cgroup(hierarchy.version, folders, memory_mb)
    try:
        for folder in set(folders.values()):
            folder.mkdir()
        _limit(group, memory_mb << 20, max_processes * PIDS_PER_PROCESS, cpus)
    except OSError:
        group.remove(0.0)
        raise
    return group


def _limit(group: Cgroup, memory: int, pids: int, cpus: int) -> None:
    quota = cpus * CPU_PERIOD_US
    if group.version == 2:
        folder = group.folders["memory"]
        settings = [("memory.max", str(memory)), ("memory.swap.max", "0"),
                    ("memory.oom.group", "1"), ("pids.max", str(pids)),
                    ("cpu.max", f"{quota} {CPU_PERIOD_US}")]
        for name, value in settings:
            if (folder / name).exists() or name in ("memory.max", "pids.max", "cpu.max"):
                (folder / name).write_text(value)
        return
    memory_folder = group.folders["memory"]
    (memory_folder / "memory.limit_in_bytes").write_text(str(memory))
    if (memory_folder / "memory.memsw.limit_in_bytes").exists():  # no swap either
        (memory_folder / "memory.memsw.limit_in_bytes").write_text(str(memory))
    (group.folders["pids"] / "pids.max").write_text(str(pids))
    (group.folders["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
    (group.folders["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
