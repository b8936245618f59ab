"""The backend interface: how a sandbox is started. Small on purpose.

A backend turns a :class:`SandboxConfig` into a running :class:`Session`. The
process backend (namespaces + rlimits), the unisolated local backend and, in a
later module, the Docker backend all plug in here.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandbox.runtimes import (
    Runtime,
    RuntimeRequest,
    RuntimeStore,
    RuntimeUnavailable,
    base_python,
    default_store,
    masked_locations,
    worker_request,
)
from sandbox.session import Sandbox, Session, SessionDied, SessionLimits

# Run as ``python -I -S -c AGENT_BOOTSTRAP AGENT_ROOT RUNTIME_SITE ...``: isolated mode and
# no site module, so sys.path is the standard library, the agent and the runtime's site
# folder, never a site-packages folder of the interpreter or of the worker.
AGENT_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); sys.path.append(sys.argv.pop(1)); "
    "from sandbox.agent import main; main(sys.argv[1:])"
)
PYTHON_FLAGS = ("-I", "-S")
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
    # where a mount would show them: the grader's held-out datasets (grader.data), the
    # assignment's folder. The backends add the site-packages folders and dlgrade's own
    # packages (sandbox.runtimes.masked_locations).
    hidden_paths: tuple[str, ...] = ()
    # The Python packages student code sees (sandbox.runtimes); None: the worker's own
    # NumPy, and its PyTorch unless torch is a denied import.
    runtime: RuntimeRequest | None = None
    # Folders of the handin put first on sys.path, in order ("" = the handin root).
    python_path: tuple[str, ...] = ("",)
    # Handin files (patterns) that may import the denied packages all the same: the agent
    # allows such an import only while nothing but those files is on the call stack.
    allow_imports_in: tuple[str, ...] = ()

    def runtime_request(self) -> RuntimeRequest:
        return self.runtime or worker_request(torch="torch" not in self.deny_imports)

    def masked(self) -> tuple[str, ...]:
        """Every host path the sandbox must not read, wherever a bind would show it."""
        return tuple(sorted({*self.hidden_paths, *masked_locations()}))


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
        if not os.path.lexists(path):
            continue
        for source, target in binds:
            for root in {os.path.normpath(source), os.path.realpath(source)}:
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    inside = os.path.normpath(target + path[len(root):])
                    found[inside] = Mask(inside, os.path.isdir(path))
    folders = [target for target, mask in found.items() if mask.folder]
    # A mask inside a masked folder has nothing left to cover (and no mount point).
    return [found[target] for target in sorted(found)
            if not any(target.startswith(f.rstrip("/") + "/") for f in folders)]


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
        # The sandbox's uid has no passwd entry: getpass.getuser() (PyTorch's compile and
        # export caches call it) reads these first, where pwd.getpwuid() would raise.
        "USER": "student",
        "LOGNAME": "student",
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
    python: str, agent_root: str, site_dir: str, request_fd: int, reply_fd: int,
    config: SandboxConfig, limits: SessionLimits,
) -> list[str]:
    return [python, *PYTHON_FLAGS, "-c", AGENT_BOOTSTRAP, agent_root, site_dir,
            str(request_fd), str(reply_fd), *agent_options(config, limits)]


def agent_options(config: SandboxConfig, limits: SessionLimits) -> list[str]:
    """The agent's arguments after its channel: ``MAX_REQUEST DENIED REASON PYTHON_PATH
    ALLOWED_IN``."""
    return [str(limits.max_request_bytes), ",".join(config.deny_imports), config.deny_reason,
            json.dumps(list(config.python_path)), json.dumps(list(config.allow_imports_in))]


def resolve_runtime(store: RuntimeStore, config: SandboxConfig) -> Runtime:
    """The config's runtime on this host; a missing one is a sandbox that cannot start
    (a fault of the host, never a verdict on the handin)."""
    try:
        return store.resolve(config.runtime_request())
    except RuntimeUnavailable as exc:
        raise SessionDied("start", f"the sandbox runtime is not available: {exc}") from None


def spawn(
    build_command: Callable[[int, int], Sequence[str]],
    *,
    cwd: str | None,
    env: dict[str, str],
    limits: SessionLimits,
    backend: str,
    cleanup: Sequence[Callable[[], object]] = (),
    oom: Callable[[], str | None] | None = None,
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
    sandbox = Sandbox(process, request_w, reply_r, out_r, err_r, backend, list(cleanup), oom)
    return Session(sandbox, limits)


class LocalBackend:
    """No isolation at all: a plain child process. For trusted local checks only. It runs
    the same runtime as the sandboxes (a folder of links to its entries)."""

    name = "none"

    def __init__(self, store: RuntimeStore | None = None) -> None:
        self.store = store or default_store()

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        env = sandbox_env(config, tempfile.gettempdir())
        root = str(agent_dir())
        site_dir = str(self.store.view(resolve_runtime(self.store, config)))

        def command(request_fd: int, reply_fd: int) -> list[str]:
            return agent_args(base_python(), root, site_dir, request_fd, reply_fd, config,
                              limits)

        return spawn(command, cwd=str(config.submission_dir), env=env, limits=limits,
                     backend=self.name)
