"""Scratch space of the grading host: what gradings write, and its garbage collection
(``dlgrade scratch gc``, also run by every worker at start and every
``SCRATCH_INTERVAL`` seconds).

A grading writes its extracted handin (``dlgrade-handin-*``), its sandbox roots
(``dlgrade-root-*``), an agent copy (``dlgrade-agent-*``, one per process) and, with
Docker, a channel folder per sandbox (``<token>-*`` in the work dir's ``docker/``).
Each is removed when its grading or process ends normally; a crash (a pool process
SIGKILLed, the host rebooted) leaves them, and Celery's pool processes never run
``atexit``, so agent copies leaked even on clean stops (issue 18).

So each pool process of a worker writes its scratch below a folder of its own,
``dlgrade-worker-<host>-<pid>-*`` (:func:`enter_process_scratch`), removed when the
process stops (:func:`leave_process_scratch`) and, when the process died instead, by
:func:`collect` as soon as that pid no longer runs on this host. Everything else is
judged by age, like ``dlgrade archives gc``: a folder whose last change is older than
the longest a grading can live (``DLGRADE_TASK_TIME_LIMIT`` plus a margin; a day for
the agent copies a long-lived process keeps) is garbage.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROCESS_PREFIX = "dlgrade-worker-"
# (prefix, kind) of what one grading or one sandbox writes, judged by age.
PER_GRADING = (("dlgrade-handin-", "extracted handin"), ("dlgrade-root-", "sandbox root"),
               ("dlgrade-upload-", "trial extraction"), ("dlgrade-pack-", "packed handin"),
               ("dlgrade-probe-", "health probe"), ("dlgrade-bug-", "known-bug copy"))
# ... and what a process keeps for its lifetime, judged by LONG_LIVED_S.
PER_PROCESS = (("dlgrade-agent-", "agent copy"),)
CHANNEL = re.compile(r"[0-9a-f]{16}-")  # sandbox.docker_backend's channel folders
LONG_LIVED_S = 24 * 3600.0
MARGIN_S = 600.0  # beyond the task time limit, before a grading's folder is judged old


@dataclass(frozen=True)
class Scrap:
    path: Path
    size: int
    kind: str


@dataclass
class Collection:
    removed: list[Scrap] = field(default_factory=list)
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return sum(item.size for item in self.removed)


def host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40]


def enter_process_scratch(base: Path | None = None) -> Path:
    """Make this process's scratch folder below ``base`` (default: the temporary
    directory) the temporary directory of the process, and return it."""
    root = Path(base or tempfile.gettempdir())
    folder = Path(tempfile.mkdtemp(prefix=f"{PROCESS_PREFIX}{host_tag()}-{os.getpid()}-",
                                   dir=root))
    folder.chmod(0o755)  # sandboxes (other uids) read the handins and agent below it
    tempfile.tempdir = str(folder)
    return folder


def leave_process_scratch(folder: Path, base: Path | None = None) -> None:
    """Remove the process's scratch folder (at a clean stop)."""
    if tempfile.tempdir == str(folder):
        tempfile.tempdir = str(base) if base else None
    remove_tree(folder)


def collect(roots: Iterable[Path], *, older_than_s: float, now: float | None = None,
            dry_run: bool = False) -> Collection:
    """Remove (unless ``dry_run``) the scratch below ``roots`` that is garbage: folders of
    dead pool processes of this host, and per-grading folders older than ``older_than_s``
    seconds (per-process agent copies: older than a day)."""
    now = time.time() if now is None else now
    done = Collection(dry_run=dry_run)
    for root in dict.fromkeys(Path(r) for r in roots):
        for path, kind in _garbage(root, older_than_s, now):
            size = tree_size(path)
            if dry_run or remove_tree(path):
                done.removed.append(Scrap(path, size, kind))
    return done


def _garbage(root: Path, older_than_s: float, now: float) -> Iterator[tuple[Path, str]]:
    for path in _children(root):
        name = path.name
        age = now - _mtime(path)
        if name.startswith(PROCESS_PREFIX):
            if _process_gone(name):
                yield path, "dead process's scratch"
            continue
        kind = _kind(name, PER_GRADING)
        if kind and age > older_than_s:
            yield path, kind
            continue
        kind = _kind(name, PER_PROCESS)
        if kind and age > max(LONG_LIVED_S, older_than_s):
            yield path, kind
            continue
        if root.name == "docker" and CHANNEL.match(name) and age > older_than_s:
            yield path, "sandbox channel"


def _children(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _kind(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    return next((kind for prefix, kind in table if name.startswith(prefix)), None)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return time.time()


def _process_gone(name: str) -> bool:
    """``dlgrade-worker-<host>-<pid>-*`` of this host whose pid does not run."""
    rest = name[len(PROCESS_PREFIX):]
    host, _, tail = rest.rpartition("-")  # tail: mkdtemp's random part
    host, _, pid = host.rpartition("-")
    if host != host_tag() or not pid.isdigit():
        return False  # another host's (a shared work dir): its own workers judge it
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def tree_size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def remove_tree(path: Path) -> bool:
    """Remove ``path`` and everything below it, read-only folders included (an
    extracted handin may be 0555); never follows a link. False when it was gone."""
    if not path.exists():
        return False

    def writable_then_retry(function: object, failed: str, _: object) -> None:
        parent = os.path.dirname(failed)
        try:
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    shutil.rmtree(path, onerror=writable_then_retry)
    return not path.exists()


def scratch_roots(base: Path, work_dir: Path | None) -> list[Path]:
    """Where gradings of this host write: the temporary directory and, for Docker, the
    work dir's ``tmp`` and ``docker`` folders."""
    roots = [base]
    if work_dir is not None:
        roots += [work_dir / "tmp", work_dir / "docker"]
    return roots
