"""Whether this host can grade: its scratch space, its memory, its sandbox runtime.

A grading that fails for a reason the host could cause (a sandbox that does not start,
scratch space that is full, the trusted side out of memory) is only the host's fault if
the host fails on its own too: :func:`host_problem` checks with nothing of the handin
(a small write in each scratch folder, the memory left, a blank sandbox that must start
and answer). When it finds a problem, the attempt is given back without counting against
the submission and the worker reports itself unhealthy (``tasks.jobs.HostFault``); when
it finds none, the failure was the handin's and counts as an attempt (issue 17).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox.backend import Backend, SandboxConfig
from sandbox.session import SandboxError, SessionLimits

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 64 << 20  # scratch space below this cannot hold a handin and a sandbox
PROBE_BYTES = 1 << 20  # written (and synced) in each scratch folder by the check
MIN_AVAILABLE_MEMORY = 256 << 20  # MemAvailable below this: no sandbox can be given memory
PROBE_TIMEOUT_S = 30.0


class HostFault(RuntimeError):
    """This host cannot grade now (``reason`` says why); the attempt was not the handin's."""

    def __init__(self, reason: str, during: str = "") -> None:
        super().__init__(reason if not during else f"{reason} (the grading failed with: {during})")
        self.reason = reason


def scratch_folders(work_dir: Path) -> list[Path]:
    """Where this process's gradings write: the temporary directory (handins, agent
    copies, sandbox roots) and the work dir (Docker's sockets), when it exists."""
    folders = [Path(tempfile.gettempdir())]
    if work_dir.exists() and work_dir not in folders:
        folders.append(work_dir)
    return folders


def scratch_problem(folders: Iterable[Path], min_free: int = MIN_FREE_BYTES) -> str | None:
    """A sentence when one of ``folders`` cannot take a small file or has too little free."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = Path(tempfile.mkstemp(prefix=".dlgrade-probe-", dir=folder)[1])
            try:
                with probe.open("wb") as out:
                    out.write(b"\0" * PROBE_BYTES)
                    out.flush()
                    os.fsync(out.fileno())
            finally:
                probe.unlink(missing_ok=True)
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            return f"its scratch space {folder} cannot be written ({exc.strerror or exc})"
        if free < min_free:
            return (f"its scratch space {folder} has only {free / (1 << 20):.0f} MB free "
                    f"(at least {min_free / (1 << 20):.0f} MB needed)")
    return None


def memory_problem(min_available: int = MIN_AVAILABLE_MEMORY,
                   meminfo: Path = Path("/proc/meminfo")) -> str | None:
    """A sentence when the host has less memory available than a sandbox needs."""
    try:
        fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines()
                      if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None  # not Linux, or no such field: nothing to say
    if available < min_available:
        return (f"it has only {available / (1 << 20):.0f} MB of memory available "
                f"(at least {min_available / (1 << 20):.0f} MB needed)")
    return None


def sandbox_problem(backend: Backend) -> str | None:
    """A sentence when a blank sandbox (no handin) does not start and answer a ping."""
    try:
        empty = Path(tempfile.mkdtemp(prefix="dlgrade-probe-"))
    except OSError as exc:
        return f"its scratch space cannot be written ({exc.strerror or exc})"
    try:
        empty.chmod(0o755)
        config = SandboxConfig(submission_dir=empty, cpu_seconds=60)
        limits = SessionLimits(call_timeout_s=PROBE_TIMEOUT_S)
        session = backend.start(config, limits)
        try:
            session.ping()
        finally:
            session.close()
    except (SandboxError, OSError) as exc:
        return f"its {backend.name} sandbox does not start ({exc})"
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    return None


def host_problem(scratch: Iterable[Path], backend: Backend | None = None,
                 checks: Iterable[Callable[[], str | None]] = ()) -> str | None:
    """The first problem found (scratch space, memory, then the sandbox), or None."""
    problem = scratch_problem(scratch) or memory_problem()
    for check in checks:
        problem = problem or check()
    if problem is None and backend is not None:
        problem = sandbox_problem(backend)
    if problem:
        log.error("this host cannot grade: %s", problem)
    return problem
