"""The backend interface: how a sandbox is started. Small on purpose.

A backend turns a :class:`SandboxConfig` into a running :class:`Session`. The
process backend (namespaces + rlimits), the unisolated local backend and, in a
later module, the Docker backend all plug in here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandbox.session import Sandbox, Session, SessionDied, SessionLimits

AGENT_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from sandbox.agent import main; main(sys.argv[1:])"
)
PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH")


@dataclass(frozen=True)
class SandboxConfig:
    """What one sandbox may see and use. Paths are on the trusted host."""

    submission_dir: Path
    data_dir: Path | None = None
    memory_mb: int = 4096
    cpu_seconds: int = 900
    max_processes: int = 64
    file_size_mb: int = 64
    open_files: int = 256
    tmp_mb: int = 256
    shm_mb: int = 256
    threads: int = 1
    deny_imports: tuple[str, ...] = ()
    deny_reason: str = "this assignment does not allow that package"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Host files and folders (resolved) that must read as empty inside the sandbox even
    # where a mount would show them: the grader's held-out datasets (grader.data).
    hidden_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mask:
    """One place inside the sandbox to cover: a folder gets an empty read-only tmpfs,
    a file an empty one (``/dev/null`` bound read-only)."""

    target: str
    folder: bool


def masks(hidden: Sequence[str], binds: Sequence[tuple[str, str]]) -> list[Mask]:
    """Where each hidden host path appears inside the sandbox, given its bind mounts as
    (host source, sandbox target) pairs: once per mount that shows it."""
    found: dict[str, Mask] = {}
    for path in hidden:
        path = os.path.normpath(path)
        for source, target in binds:
            for root in {os.path.normpath(source), os.path.realpath(source)}:
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    inside = os.path.normpath(target + path[len(root):])
                    found[inside] = Mask(inside, os.path.isdir(path))
    return [found[target] for target in sorted(found)]


class Backend(Protocol):
    """Starts sessions. ``name`` is what the CLI and the results report."""

    name: str

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session: ...


def sandbox_env(config: SandboxConfig, home: str) -> dict[str, str]:
    """The minimal environment of student code: no secrets of the worker."""
    threads = str(config.threads)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "TORCH_HOME": f"{home}/.torch",
        "XDG_CACHE_HOME": f"{home}/.cache",
    }
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    env.update(config.extra_env)
    return env


# What the sandbox gets of dlgrade (the images' Dockerfiles copy the same files).
AGENT_FILES = ("agent.py", "protocol.py", "routines.py", "dropout_replay.py")
_AGENT_DIR: Path | None = None


def agent_dir() -> Path:
    """A private copy of the agent and its protocol: all the sandbox sees of dlgrade."""
    global _AGENT_DIR
    if _AGENT_DIR is None or not _AGENT_DIR.exists():
        staging = Path(tempfile.mkdtemp(prefix="dlgrade-agent-"))
        package = staging / "sandbox"
        package.mkdir()
        (package / "__init__.py").write_text('"""dlgrade sandbox agent."""\n')
        here = Path(__file__).parent
        for name in AGENT_FILES:
            shutil.copyfile(here / name, package / name)
        for path in (staging, package, *package.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        atexit.register(shutil.rmtree, staging, True)
        _AGENT_DIR = staging
    return _AGENT_DIR


def agent_args(
    python: str, agent_root: str, request_fd: int, reply_fd: int,
    config: SandboxConfig, limits: SessionLimits,
) -> list[str]:
    return [
        python, "-I", "-c", AGENT_BOOTSTRAP, agent_root,
        str(request_fd), str(reply_fd), str(limits.max_request_bytes),
        ",".join(config.deny_imports), config.deny_reason,
    ]


def spawn(
    build_command: Callable[[int, int], Sequence[str]],
    *,
    cwd: str | None,
    env: dict[str, str],
    limits: SessionLimits,
    backend: str,
    cleanup: Sequence[Callable[[], object]] = (),
) -> Session:
    """Start ``build_command(request_fd, reply_fd)`` with fresh pipes and wait for the agent."""
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    command = list(build_command(request_r, reply_w))
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            pass_fds=(request_r, reply_w), cwd=cwd, env=env, start_new_session=True,
        )
    except OSError as exc:
        for fd in (request_r, request_w, reply_r, reply_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        for action in cleanup:
            action()
        raise SessionDied("start", f"the sandbox could not start: {exc}") from exc
    for fd in (request_r, reply_w, out_w, err_w):
        os.close(fd)
    sandbox = Sandbox(process, request_w, reply_r, out_r, err_r, backend, list(cleanup))
    return Session(sandbox, limits)


class LocalBackend:
    """No isolation at all: a plain child process. For trusted local checks only."""

    name = "none"

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        env = sandbox_env(config, tempfile.gettempdir())
        root = str(agent_dir())

        def command(request_fd: int, reply_fd: int) -> list[str]:
            return agent_args(sys.executable, root, request_fd, reply_fd, config, limits)

        return spawn(command, cwd=str(config.submission_dir), env=env, limits=limits,
                     backend=self.name)
