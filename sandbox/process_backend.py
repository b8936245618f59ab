"""The process backend: isolation without Docker, from Linux namespaces and rlimits.

Each session is ``unshare`` (new mount, network, PID, IPC and UTS namespaces)
running ``sandbox/launcher.py``, which assembles a read-only root and execs the
agent as an unprivileged uid under a seccomp filter (see the launcher's docstring;
the filter is the Docker profile's deny-list, ``sandbox/seccomp_bpf.py``). The network
namespace has no interface but a downed loopback; the PID namespace dies with
its first process, so killing the process group from here leaves nothing behind.

The system directories and the base Python appear at their host paths; a
virtualenv appears at ``/opt/venv`` (as in the Docker backend), so the agent's
command line, PID 1's in the sandbox, names no host checkout. The config's
hidden paths (held-out datasets inside packages) are masked wherever a mount
shows them.
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

from sandbox import seccomp_bpf
from sandbox.backend import SandboxConfig, agent_args, agent_dir, masks, sandbox_env, spawn
from sandbox.session import Session, SessionLimits

LAUNCHER = Path(__file__).with_name("launcher.py")
HOST_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")
NAMESPACES = ["--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
UID_BASE, UID_SPAN = 200_000, 50_000
VENV = "/opt/venv"


def in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def runtime_paths() -> list[str]:
    """Host directories the agent's Python needs at their own paths (the system and the
    base Python; a virtualenv is bound at /opt/venv instead), minus ones already covered."""
    wanted = list(HOST_PATHS)
    for prefix in (sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        wanted.append(os.path.realpath(prefix))
    if not in_venv():
        wanted.append(os.path.dirname(os.path.abspath(sys.executable)))
    kept: list[str] = []
    for path in sorted(set(wanted), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def runtime_binds() -> list[tuple[str, str]]:
    """(host, sandbox) pairs of everything the runtime needs."""
    binds = [(path, path) for path in runtime_paths()]
    if in_venv():
        binds.append((os.path.realpath(sys.prefix), VENV))
    return binds


def sandbox_python() -> str:
    """The agent's interpreter as the sandbox sees it."""
    if in_venv():
        return f"{VENV}/bin/{os.path.basename(sys.executable)}"
    return sys.executable


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
    """Namespaces + chroot + rlimits + an unprivileged uid per session."""

    name = "process"

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        root = tempfile.mkdtemp(prefix="dlgrade-root-")
        binds = [(str(config.submission_dir), "/submission"), (str(agent_dir()), "/agent")]
        if config.data_dir is not None:
            binds.append((str(config.data_dir), "/data"))
        if in_venv():
            binds.append((os.path.realpath(sys.prefix), VENV))
        host_paths = runtime_paths()
        hidden = masks(config.hidden_paths, [(p, p) for p in host_paths] + binds)
        uid = UID_BASE + secrets.randbelow(UID_SPAN) if os.geteuid() == 0 else None
        env = sandbox_env(config, "/tmp")
        launch = {
            "root": root, "host_paths": host_paths, "binds": binds, "uid": uid,
            "masks": [[mask.target, mask.folder] for mask in hidden],
            "tmp_mb": config.tmp_mb, "shm_mb": config.shm_mb, "memory_mb": config.memory_mb,
            "cpu_seconds": config.cpu_seconds, "max_processes": config.max_processes,
            "file_size_mb": config.file_size_mb, "open_files": config.open_files, "env": env,
            "seccomp": seccomp_bpf.launcher_program(),
        }

        def command(request_fd: int, reply_fd: int) -> list[str]:
            argv = agent_args(sandbox_python(), "/agent", request_fd, reply_fd, config, limits)
            payload = dict(launch, argv=argv, keep_fds=[request_fd, reply_fd])
            return ["unshare", *_user_flags(), *NAMESPACES, sys.executable, "-I",
                    str(LAUNCHER), json.dumps(payload)]

        def remove_root() -> None:
            try:
                os.rmdir(root)
            except OSError:
                pass

        return spawn(command, cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                     limits=limits, backend=self.name, cleanup=[remove_root])
