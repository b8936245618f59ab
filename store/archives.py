"""Uploaded archives, stored content-addressed (sha256) under the data directory.

An upload is first *staged*: streamed to a temporary name beside the store while it is
hashed. Only an accepted upload is then *kept* (renamed, atomically, to its hash); a
rejected one is *discarded*. So a refused upload never leaves a file behind, and never
touches the file of the same content that another submission (an earlier identical
upload, another student's) already uses: the stored name of a hash is only ever
written, with the same bytes, never removed by an upload.

Durability: the staged file is synced before it is kept, and the folder is synced after
the rename, so a power loss after the upload's commit cannot leave its row without its
archive. A disk that is full (or out of inodes, or over quota) raises :class:`StoreFull`
with nothing left behind; :func:`remove_stale_staging` clears what an upload killed
mid-way (a web worker killed, a power loss) left in the store.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

STAGING_PREFIX = ".upload-"
# What a host out of space says (no space, over quota, out of inodes is ENOSPC too).
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
STALE_STAGING_S = 15 * 60.0  # a live upload writes or renames its staged file within this


class ArchiveTooLarge(Exception):
    """The upload is bigger than the configured limit."""


class StoreFull(OSError):
    """The data directory has no space left; nothing of the upload was kept."""


def out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE


@dataclass(frozen=True)
class Staged:
    """An upload on disk under a temporary name, not yet part of the store."""

    sha256: str
    size: int
    path: Path


class ArchiveStore:
    """``put`` streams an upload to disk while hashing it; the name is the hash."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "archives"

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Store ``stream``; returns (sha256, size). Raises ArchiveTooLarge past max_bytes."""
        staged = self.stage(stream, max_bytes)
        try:
            self.keep(staged)
        finally:
            self.discard(staged)
        return staged.sha256, staged.size

    def stage(self, stream: BinaryIO, max_bytes: int) -> Staged:
        """Write ``stream`` (synced) to a temporary file in the store's folder, so that
        :meth:`keep` is a rename. Raises ArchiveTooLarge past max_bytes (nothing left)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.root, prefix=staging_prefix())
        except OSError as exc:
            _raise_if_full(exc)
            raise
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArchiveTooLarge(f"the upload is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            _raise_if_full(exc)
            raise
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Staged(digest.hexdigest(), size, Path(temporary))

    def keep(self, staged: Staged) -> Path:
        """Move a staged upload to its content address (atomic; an existing file of the
        same hash has the same bytes, and readers holding it open keep theirs)."""
        final = self.path(staged.sha256)
        try:
            if not final.parent.is_dir():
                final.parent.mkdir(parents=True, exist_ok=True)
                sync_directory(final.parent.parent)  # the new folder's own entry
            os.replace(staged.path, final)
            sync_directory(final.parent)  # the rename itself
        except OSError as exc:
            _raise_if_full(exc)
            raise
        return final

    def discard(self, staged: Staged) -> None:
        """Remove a staged upload that was not kept (a no-op once it was)."""
        staged.path.unlink(missing_ok=True)


def sync_directory(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (fsync of the directory)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raise_if_full(exc: OSError) -> None:
    if out_of_space(exc) and not isinstance(exc, StoreFull):
        raise StoreFull(exc.errno, f"the data directory is out of space ({exc.strerror})") \
            from exc


def host_tag() -> str:
    """This host's name as it appears in staging file names (no '-')."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40]


def staging_prefix() -> str:
    """``.upload-<host>-<pid>-``: whose upload a staged file is."""
    return f"{STAGING_PREFIX}{host_tag()}-{os.getpid()}-"


def remove_stale_staging(store: ArchiveStore, older_than_s: float = STALE_STAGING_S,
                         now: float | None = None) -> list[Path]:
    """Remove what uploads killed mid-way left staged (``.upload-*``): at once when the
    process that wrote it (on this host) is gone, else once it has not been written for
    ``older_than_s`` seconds (an upload in progress writes its file continuously and
    keeps or discards it at once). A web process calls this when it starts."""
    cutoff = (time.time() if now is None else now) - older_than_s
    removed: list[Path] = []
    if not store.root.is_dir():
        return removed
    for path in store.root.iterdir():
        if not path.name.startswith(STAGING_PREFIX):
            continue
        try:
            if path.is_file() and (_writer_gone(path.name) or path.stat().st_mtime < cutoff):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # kept or discarded meanwhile
            continue
    return removed


def _writer_gone(name: str) -> bool:
    host, _, rest = name[len(STAGING_PREFIX):].partition("-")
    pid, _, _ = rest.partition("-")
    if host != host_tag() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
