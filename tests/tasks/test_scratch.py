"""tasks/scratch.py: a grading host's scratch garbage (dead processes' folders at once,
per-grading folders by age, agent copies after a day), a dry run, and a process's own
scratch folder."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tasks.scratch import (
    PROCESS_PREFIX,
    collect,
    enter_process_scratch,
    host_tag,
    leave_process_scratch,
    remove_tree,
    scratch_roots,
)

HOUR = 3600.0


def folder(root: Path, name: str, hours: float = 0.0) -> Path:
    path = root / name
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "file").write_bytes(b"x" * 100)
    when = time.time() - hours * HOUR
    os.utime(path, (when, when))
    return path


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_what_is_garbage_and_what_is_not(tmp_path: Path) -> None:
    dead = folder(tmp_path, f"{PROCESS_PREFIX}{host_tag()}-{dead_pid()}-abc")
    alive = folder(tmp_path, f"{PROCESS_PREFIX}{host_tag()}-{os.getppid()}-abc", hours=48)
    elsewhere = folder(tmp_path, f"{PROCESS_PREFIX}otherhost-{dead_pid()}-abc", hours=48)
    old_handin = folder(tmp_path, "dlgrade-handin-x", hours=2)
    young_handin = folder(tmp_path, "dlgrade-handin-y", hours=0.1)
    old_root = folder(tmp_path, "dlgrade-root-x", hours=2)
    agent_day = folder(tmp_path, "dlgrade-agent-x", hours=25)
    agent_hours = folder(tmp_path, "dlgrade-agent-y", hours=2)
    other = folder(tmp_path, "somebody-elses", hours=100)
    docker = tmp_path / "work" / "docker"
    docker.mkdir(parents=True)
    channel = folder(docker, "0123456789abcdef-xyz", hours=2)
    warm = folder(docker, "warm", hours=2)
    roots = scratch_roots(tmp_path, tmp_path / "work")
    listed = collect(roots, older_than_s=HOUR, dry_run=True)
    garbage = {dead, old_handin, old_root, agent_day, channel}
    assert {item.path for item in listed.removed} == garbage
    assert all(path.exists() for path in garbage) and listed.freed_bytes == 500
    kinds = {item.path.name: item.kind for item in listed.removed}
    assert kinds[dead.name] == "dead process's scratch"
    assert kinds["dlgrade-handin-x"] == "extracted handin"
    done = collect(roots, older_than_s=HOUR)
    assert {item.path for item in done.removed} == garbage
    assert not any(path.exists() for path in garbage)
    for kept in (alive, elsewhere, young_handin, agent_hours, other, warm):
        assert kept.exists(), kept


def test_read_only_folders_are_removed_too(tmp_path: Path) -> None:
    handin = folder(tmp_path, "dlgrade-handin-ro", hours=2)
    (handin / "sub" / "file").chmod(0o444)
    (handin / "sub").chmod(0o555)
    handin.chmod(0o555)
    assert remove_tree(handin) and not handin.exists()
    assert not remove_tree(handin)  # gone already


def test_a_process_scratch_folder_is_its_temporary_directory_until_it_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", None)
    mine = enter_process_scratch(tmp_path)
    assert mine.parent == tmp_path and mine.name.startswith(
        f"{PROCESS_PREFIX}{host_tag()}-{os.getpid()}-")
    assert tempfile.gettempdir() == str(mine)
    handin = Path(tempfile.mkdtemp(prefix="dlgrade-handin-"))
    assert handin.parent == mine
    assert collect([tmp_path], older_than_s=0).removed == []  # ours, and alive
    leave_process_scratch(mine, tmp_path)
    assert not mine.exists() and tempfile.gettempdir() == str(tmp_path)
