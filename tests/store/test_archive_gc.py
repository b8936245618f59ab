"""store/archive_gc.py: old crashed uploads and old unreferenced archives are removed;
referenced archives and anything younger than the threshold stay; a dry run lists."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import delete

from store.archive_gc import Collection, _remove_if_unchanged, collect
from store.archives import STAGING_PREFIX, ArchiveStore
from store.db import SessionFactory
from store.models import Submission
from tests.services import World

HOUR = 3600.0
NOW = time.time()


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


def age(path: Path, hours: float) -> Path:
    when = NOW - hours * HOUR
    os.utime(path, (when, when))
    return path


def staged(store: ArchiveStore, content: bytes, hours: float) -> Path:
    return age(store.stage(io.BytesIO(content), 1 << 20).path, hours)


def stored(store: ArchiveStore, content: bytes, hours: float) -> Path:
    sha256, _ = store.put(io.BytesIO(content), 1 << 20)
    return age(store.path(sha256), hours)


def run(world: World, hours: float = 24, dry_run: bool = False) -> Collection:
    with world.db_factory() as db:
        return collect(db, ArchiveStore(world.data_dir), older_than_s=hours * HOUR, now=NOW,
                       dry_run=dry_run)


def test_removes_old_crashed_uploads_and_unreferenced_archives(world: World) -> None:
    store = ArchiveStore(world.data_dir)
    crashed, fresh_upload = staged(store, b"crashed", 30), staged(store, b"uploading", 1)
    orphan, young_orphan = stored(store, b"orphan", 48), stored(store, b"being kept", 1)
    done = run(world)
    assert {(g.path, g.kind, g.size) for g in done.removed} == {
        (crashed, "staged", 7), (orphan, "unreferenced", 6)}
    assert done.freed_bytes == 13
    assert not crashed.exists() and not orphan.exists()
    assert fresh_upload.exists() and young_orphan.exists()  # younger than the threshold


def test_referenced_archives_are_kept_however_old(world: World) -> None:
    store = ArchiveStore(world.data_dir)
    assignment = world.assignment()
    world.submission(assignment, b"handin one")
    shared = world.submission(assignment, b"handin one")  # the same content, twice
    path = age(store.path(world.get(shared).archive_sha256), 1000)
    assert run(world, hours=1).removed == []
    assert path.read_bytes() == b"handin one"
    with world.db_factory() as db:  # once no row uses it, it goes
        db.execute(delete(Submission))
        db.commit()
    assert [g.path for g in run(world, hours=1).removed] == [path]
    assert not path.exists()


def test_the_threshold_decides(world: World) -> None:
    store = ArchiveStore(world.data_dir)
    orphan = stored(store, b"orphan", 5)
    crashed = staged(store, b"crashed", 5)
    assert run(world, hours=6).removed == []
    assert {g.path for g in run(world, hours=4).removed} == {orphan, crashed}


def test_a_dry_run_lists_and_removes_nothing(world: World) -> None:
    store = ArchiveStore(world.data_dir)
    orphan, crashed = stored(store, b"orphan", 48), staged(store, b"crashed", 48)
    done = run(world, dry_run=True)
    assert {g.path for g in done.removed} == {orphan, crashed} and done.freed_bytes == 13
    assert orphan.exists() and crashed.exists()


def test_an_empty_or_missing_store_is_fine(world: World) -> None:
    assert run(world).removed == []


def test_an_archive_kept_again_meanwhile_is_put_back(world: World) -> None:
    store = ArchiveStore(world.data_dir)
    orphan = stored(store, b"same bytes", 48)
    judged = orphan.stat()  # judged old and unreferenced; then an upload keeps it anew
    stored(store, b"same bytes", 0)
    assert not _remove_if_unchanged(orphan, judged, NOW - HOUR)
    assert orphan.read_bytes() == b"same bytes"
    assert [p.name for p in store.root.iterdir() if p.is_file()] == []  # nothing aside
    assert not any(p.name.startswith(STAGING_PREFIX) for p in store.root.iterdir())
