"""Garbage collection of the archive store (``dlgrade archives gc``).

Two kinds of files are garbage once they are older than a threshold (by mtime):

- staged uploads (``.upload-*``) that an upload which crashed left behind: a live upload
  writes its file continuously and renames or removes it within seconds;
- stored archives that no submission row references (a row deleted, or an upload that
  was kept and then rolled back).

The threshold is what makes this safe next to uploads being accepted: an upload keeps
its archive (a rename of a freshly written file, so a young mtime) *before* it commits
the row that references it, so an unreferenced archive may be one that is about to be
referenced, but then it is young. Re-uploading content whose old, unreferenced archive
is being collected replaces that file with a young one at the same name; so a candidate
is first renamed aside, checked to still be the old file it was judged to be, and put
back when it is not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.archives import STAGING_PREFIX, ArchiveStore
from store.models import Submission

TRASH_PREFIX = ".gc-"  # a candidate renamed aside while it is checked
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Garbage:
    path: Path
    size: int
    kind: str  # "staged" (a crashed upload) | "unreferenced" (no submission uses it)


@dataclass
class Collection:
    removed: list[Garbage] = field(default_factory=list)
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return sum(item.size for item in self.removed)


def collect(db: Session, store: ArchiveStore, *, older_than_s: float, now: float,
            dry_run: bool = False) -> Collection:
    """Remove (unless ``dry_run``) staged files and unreferenced archives whose mtime is
    more than ``older_than_s`` seconds before ``now`` (a Unix time)."""
    cutoff = now - older_than_s
    done = Collection(dry_run=dry_run)
    for path, stat in _old(_staged(store), cutoff):
        if dry_run or _unlink(path):
            done.removed.append(Garbage(path, stat.st_size, "staged"))
    candidates = list(_old(_stored(store), cutoff))  # listed before the rows are read
    referenced = set(db.scalars(select(Submission.archive_sha256).distinct()))
    for path, stat in candidates:
        if path.name in referenced:
            continue
        if dry_run or _remove_if_unchanged(path, stat, cutoff):
            done.removed.append(Garbage(path, stat.st_size, "unreferenced"))
    return done


def _staged(store: ArchiveStore) -> Iterator[Path]:
    if store.root.is_dir():
        for path in store.root.iterdir():
            if path.name.startswith((STAGING_PREFIX, TRASH_PREFIX)) and path.is_file():
                yield path


def _stored(store: ArchiveStore) -> Iterator[Path]:
    if not store.root.is_dir():
        return
    for folder in sorted(store.root.iterdir()):
        if len(folder.name) == 2 and folder.is_dir():
            for path in sorted(folder.iterdir()):
                if SHA256.fullmatch(path.name) and path.name[:2] == folder.name:
                    yield path


def _old(paths: Iterator[Path], cutoff: float) -> Iterator[tuple[Path, os.stat_result]]:
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        if stat.st_mtime < cutoff:
            yield path, stat


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _remove_if_unchanged(path: Path, judged: os.stat_result, cutoff: float) -> bool:
    """Rename ``path`` aside and remove it if it is still the old file that was judged
    unreferenced; a file an upload has just kept there (new inode, young) goes back."""
    aside = path.parent.parent / f"{TRASH_PREFIX}{path.name}"
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return False
    moved = aside.stat()
    if (moved.st_ino, moved.st_dev) != (judged.st_ino, judged.st_dev) \
            or moved.st_mtime >= cutoff:
        os.replace(aside, path)  # same name, same bytes as anything kept there since
        return False
    aside.unlink()
    return True
