"""tasks/health.py: whether a host can grade (its scratch space, memory, sandbox)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from sandbox.backend import LocalBackend
from sandbox.session import SessionDied
from tasks import health


def test_a_writable_scratch_folder_with_room_is_fine(tmp_path: Path) -> None:
    assert health.scratch_problem([tmp_path]) is None
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_a_scratch_folder_that_cannot_be_written_is_a_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(health.os, "fsync", full)
    problem = health.scratch_problem([tmp_path])
    assert problem == f"its scratch space {tmp_path} cannot be written (No space left on device)"
    assert list(tmp_path.iterdir()) == []


def test_too_little_free_space_is_a_problem(tmp_path: Path) -> None:
    problem = health.scratch_problem([tmp_path], min_free=1 << 62)
    assert problem is not None and "MB free (at least" in problem


def test_memory(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  8000000 kB\nMemAvailable:  100000 kB\n")
    assert health.memory_problem(meminfo=meminfo) == (
        "it has only 98 MB of memory available (at least 256 MB needed)")
    meminfo.write_text("MemTotal:  8000000 kB\nMemAvailable:  4000000 kB\n")
    assert health.memory_problem(meminfo=meminfo) is None
    assert health.memory_problem(meminfo=tmp_path / "absent") is None


def test_a_sandbox_that_does_not_start_is_a_problem() -> None:
    class Broken:
        name = "docker"

        def start(self, config: Any, limits: Any) -> Any:
            raise SessionDied("start", "the engine does not answer")

    assert health.sandbox_problem(Broken()) == (  # type: ignore[arg-type]
        "its docker sandbox does not start (the engine does not answer)")
    assert health.sandbox_problem(LocalBackend()) is None
    assert health.host_problem([], Broken()) is not None  # type: ignore[arg-type]
