"""Uploaded archives, stored content-addressed (sha256) under the data directory.

An upload is first *staged*: streamed to a temporary name beside the store while it is
hashed. Only an accepted upload is then *kept* (renamed, atomically, to its hash); a
rejected one is *discarded*. So a refused upload never leaves a file behind, and never
touches the file of the same content that another submission (an earlier identical
upload, another student's) already uses: the stored name of a hash is only ever
written, with the same bytes, never removed by an upload.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

STAGING_PREFIX = ".upload-"


class ArchiveTooLarge(Exception):
    """The upload is bigger than the configured limit."""


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
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=STAGING_PREFIX)
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
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Staged(digest.hexdigest(), size, Path(temporary))

    def keep(self, staged: Staged) -> Path:
        """Move a staged upload to its content address (atomic; an existing file of the
        same hash has the same bytes, and readers holding it open keep theirs)."""
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, final)
        return final

    def discard(self, staged: Staged) -> None:
        """Remove a staged upload that was not kept (a no-op once it was)."""
        staged.path.unlink(missing_ok=True)
