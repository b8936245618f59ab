"""The process backend: isolation without Docker, from Linux namespaces and rlimits.

Each session is ``unshare`` (new mount, network, PID, IPC and UTS namespaces)
running ``sandbox/launcher.py``, which assembles a read-only root and execs the
agent as an unprivileged uid under a seccomp filter (see the launcher's docstring;
the filter is the Docker profile's deny-list, ``sandbox/seccomp_bpf.py``). The network
namespace has no interface but a downed loopback; the PID namespace dies with
its first process, so killing the process group from here leaves nothing behind.

The system directories and the base interpreter appear at their host paths; the
runtime's site folder (``sandbox.runtimes``: NumPy, PyTorch only where the assignment
has it) is assembled at ``/runtime`` from one read-only bind per entry. Neither the
worker's virtualenv nor any site-packages folder is bound: those the system binds would
show (the base interpreter's), dlgrade's own packages and the config's hidden paths
(held-out datasets, the assignment folder) are masked wherever a mount shows them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from sandbox import cgroups as cgroups_module
from sandbox import seccomp_bpf
from sandbox.backend import (
    SandboxConfig,
    agent_args,
    agent_dir,
    masks,
    resolve_runtime,
    sandbox_env,
    spawn,
)
from sandbox.runtimes import SANDBOX_SITE, RuntimeStore, base_python, default_store
from sandbox.session import Session, SessionDied, SessionLimits

LAUNCHER = Path(__file__).with_name("launcher.py")
HOST_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")
NAMESPACES = ["--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
UID_BASE, UID_SPAN = 200_000, 50_000


def runtime_paths() -> list[str]:
    """Host directories the agent's interpreter needs at their own paths (the system and
    the base Python's prefix), minus ones already covered."""
    wanted = [*HOST_PATHS, os.path.realpath(sys.base_prefix), os.path.dirname(base_python())]
    kept: list[str] = []
    for path in sorted(set(wanted), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


@cache
def unavailable_reason() -> str | None:
    """None when this machine can build process sandboxes, else why not."""
    if shutil.which("unshare") is None:
        return "the 'unshare' program (util-linux) is not installed"
    command = ["unshare", *_user_flags(), *NAMESPACES, "true"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if result.returncode != 0:
        return f"unshare failed: {result.stderr.decode(errors='replace').strip()[:300]}"
    return None


def _user_flags() -> list[str]:
    return [] if os.geteuid() == 0 else ["--user", "--map-root-user"]


class ProcessBackend:
    """Namespaces + chroot + rlimits + an unprivileged uid + a cgroup per session.

    ``cgroups``: where the per-sandbox cgroups go (default: detected); where none can be
    made, :attr:`unlimited` says why, and sessions run with per-process limits only (the
    worker decides whether to refuse that: tasks.sandboxes, DLGRADE_SANDBOX_LIMITS)."""

    name = "process"

    def __init__(self, store: RuntimeStore | None = None, *,
                 cgroups: cgroups_module.Hierarchy | str | None = None) -> None:
        self.store = store or default_store()
        found = cgroups_module.detect() if cgroups is None else cgroups
        self.hierarchy = found if isinstance(found, cgroups_module.Hierarchy) else None
        self.unlimited: str | None = found if isinstance(found, str) else None

    def _cgroup(self, config: SandboxConfig) -> cgroups_module.Cgroup | None:
        if self.hierarchy is None:
            return None
        try:
            return cgroups_module.create(self.hierarchy, memory_mb=config.memory_mb,
                                         max_processes=config.max_processes, cpus=config.threads)
        except OSError as exc:
            raise SessionDied("start", f"the sandbox's cgroup could not be made: {exc}") from None

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        runtime = resolve_runtime(self.store, config)
        group = self._cgroup(config)
        root = tempfile.mkdtemp(prefix="dlgrade-root-")
        binds = [(str(config.submission_dir), "/submission"), (str(agent_dir()), "/agent")]
        if config.data_dir is not None:
            binds.append((str(config.data_dir), "/data"))
        host_paths = runtime_paths()
        # Site-packages folders are masked where the system's binds show them, not inside
        # the runtime (made of entries of such folders); held-out data everywhere.
        # (Top-level links such as /lib -> usr/lib are links in the sandbox too: masking
        # where they point covers them.)
        system = [(p, p) for p in host_paths if not os.path.islink(p)]
        hidden = masks(config.masked(), system + binds)
        hidden += masks(config.hidden_paths, runtime.binds())
        binds += runtime.binds()
        uid = UID_BASE + secrets.randbelow(UID_SPAN) if os.geteuid() == 0 else None
        env = sandbox_env(config, "/tmp")
        launch = {
            "root": root, "host_paths": host_paths, "binds": binds, "uid": uid,
            "masks": [[mask.target, mask.folder] for mask in hidden],
            "tmp_mb": config.tmp_mb, "shm_mb": config.shm_mb, "memory_mb": config.memory_mb,
            "cpu_seconds": config.cpu_seconds, "max_processes": config.max_processes,
            "file_size_mb": config.file_size_mb, "open_files": config.open_files, "env": env,
            "seccomp": seccomp_bpf.launcher_program(),
            "cgroup_procs": group.procs_files if group is not None else [],
        }

        def command(request_fd: int, reply_fd: int) -> list[str]:
            argv = agent_args(base_python(), "/agent", SANDBOX_SITE, request_fd, reply_fd,
                              config, limits)
            payload = dict(launch, argv=argv, keep_fds=[request_fd, reply_fd])
            return ["unshare", *_user_flags(), *NAMESPACES, sys.executable, "-I",
                    str(LAUNCHER), json.dumps(payload)]

        def remove_root() -> None:
            try:
                os.rmdir(root)
            except OSError:
                pass

        cleanup = [remove_root] + ([group.remove] if group is not None else [])
        return spawn(command, cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                     limits=limits, backend=self.name, cleanup=cleanup,
                     oom=group.oom_message if group is not None else None)
