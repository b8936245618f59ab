"""Aggregate limits of the process sandbox (sandbox/cgroups.py, issue 12.6): the memory,
processes and CPU of a whole sandbox are capped, whatever its processes do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox import cgroups
from sandbox.backend import SandboxConfig
from sandbox.process_backend import ProcessBackend
from sandbox.session import Session, SessionDied, SessionLimits
from tests.conftest import require

pytestmark = pytest.mark.sandbox

MANY_PROCESSES = """
    import multiprocessing as mp, os, time

    def hold(mb, seconds):
        block = bytearray(mb << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(seconds)

    def spread(children, mb):
        # Each child stays under the per-process limit; together they do not.
        ctx = mp.get_context("fork")
        procs = [ctx.Process(target=hold, args=(mb, 3)) for _ in range(children)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return [p.exitcode for p in procs]
"""


@pytest.fixture
def limited() -> ProcessBackend:
    from sandbox.process_backend import unavailable_reason

    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    backend = ProcessBackend()
    require(backend.hierarchy is not None, f"per-sandbox cgroups ({backend.unlimited})")
    return backend


def start(backend: ProcessBackend, folder: Path, source: str, **config: object) -> Session:
    folder.chmod(0o755)
    (folder / "student.py").write_text(textwrap.dedent(source))
    (folder / "student.py").chmod(0o644)
    return backend.start(SandboxConfig(folder, **config),  # type: ignore[arg-type]
                         SessionLimits(call_timeout_s=60))


def group_of(session: Session) -> cgroups.Cgroup:
    oom = session.sandbox.oom
    assert oom is not None
    group = getattr(oom, "__self__", None)
    assert isinstance(group, cgroups.Cgroup)
    return group


def test_each_sandbox_gets_its_own_limited_group_removed_after(
        limited: ProcessBackend, tmp_path: Path) -> None:
    session = start(limited, tmp_path, "x = 1\n", memory_mb=768, max_processes=16, threads=2)
    group = group_of(session)
    memory, pids, cpu = (group.folders[c] for c in ("memory", "pids", "cpu"))
    agent = str(session.ping()["pid"])  # the agent's pid in its namespace: 1
    assert agent == "1"
    members = (memory / "cgroup.procs").read_text().split()
    assert members and members == (pids / "cgroup.procs").read_text().split()
    if group.version == 1:
        assert int((memory / "memory.limit_in_bytes").read_text()) == 768 << 20
        assert (pids / "pids.max").read_text().strip() == str(16 * cgroups.PIDS_PER_PROCESS)
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == str(2 * cgroups.CPU_PERIOD_US)
    else:
        assert (memory / "memory.max").read_text().strip() == str(768 << 20)
        assert (cpu / "cpu.max").read_text().split() == [str(2 * cgroups.CPU_PERIOD_US),
                                                          str(cgroups.CPU_PERIOD_US)]
    session.close()
    assert not any(folder.exists() for folder in group.folders.values())


def test_processes_that_together_exceed_the_memory_limit_are_the_memory_limit(
        limited: ProcessBackend, tmp_path: Path) -> None:
    """Four children of 200 MB each: every one is under the 512 MB per-process limit,
    together they hold 800 MB of a 512 MB sandbox."""
    session = start(limited, tmp_path, MANY_PROCESSES, memory_mb=512)
    with pytest.raises(SessionDied) as died:
        session.import_module("student").method("spread", 4, 200)
    assert died.value.reason == "oom"
    assert "exceeded the 512 MB memory limit" in died.value.detail
    session.close()


def test_under_the_limit_the_same_code_runs(limited: ProcessBackend, tmp_path: Path) -> None:
    with start(limited, tmp_path, MANY_PROCESSES, memory_mb=1024) as session:
        assert session.import_module("student").method("spread", 2, 150) == [0, 0]


def test_where_no_group_can_be_made_the_backend_says_why(tmp_path: Path) -> None:
    backend = ProcessBackend(cgroups="no cgroup hierarchy is mounted")
    assert backend.hierarchy is None and backend.unlimited == "no cgroup hierarchy is mounted"
