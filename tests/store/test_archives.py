"""store/archives.py: durable keeps (the folder synced after the rename), a full disk
(StoreFull, nothing left), and the staging files of interrupted uploads."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from store import archives
from store.archives import ArchiveStore, StoreFull, remove_stale_staging, staging_prefix


def test_a_kept_archive_is_durable_its_file_and_its_folder_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("folder" if stat.S_ISDIR(mode) else "file")
        real(fd)

    monkeypatch.setattr(archives.os, "fsync", record)
    store = ArchiveStore(tmp_path)
    sha256, _ = store.put(io.BytesIO(b"an upload"), 1 << 20)
    assert store.path(sha256).read_bytes() == b"an upload"
    # the staged file, the new shard folder's entry in the store, the rename in the shard
    assert synced == ["file", "folder", "folder"]
    synced.clear()
    store.put(io.BytesIO(b"an upload"), 1 << 20)  # the shard exists: the rename only
    assert synced == ["file", "folder"]


def test_a_full_disk_leaves_nothing_staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives.os, "fsync", full)
    store = ArchiveStore(tmp_path)
    with pytest.raises(StoreFull, match="the data directory is out of space"):
        store.put(io.BytesIO(b"an upload"), 1 << 20)
    assert list(store.root.iterdir()) == []


def test_staging_files_of_interrupted_uploads_are_removed(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.root.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = staging_prefix().rsplit("-", 2)[0]
    dead = store.root / f"{host}-{gone.pid}-abc"
    live = store.root / f"{staging_prefix()}abc"  # this very process: an upload in progress
    old = store.root / ".upload-otherhost-7-abc"
    young = store.root / ".upload-otherhost-8-abc"
    for path in (dead, live, old, young):
        path.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert sorted(remove_stale_staging(store)) == sorted([dead, old])
    assert live.exists() and young.exists()
