"""Safe extraction of student handin archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip).

Security policy, in short:

* The format is detected from the file's content, never from its name.
* Only regular files and directories are written; links, devices, FIFOs and anything
  exotic are rejected by name.  Owner, mode and mtime from the archive are ignored:
  files are written 0o644 and directories 0o755, owned by the current user.
* Names must be UTF-8, relative, free of ``..``, backslashes and control characters,
  and unique even ignoring case.  Depth, name and path lengths and the number of
  entries are capped.
* Every decompressed byte is counted as it is read (header sizes are never trusted),
  with a cap on the total and on the compression ratio; decompression is done in
  bounded chunks so memory stays flat.
* On any failure everything written so far is removed again and :class:`ExtractionError`
  is raised with one sentence meant for the student.

``extract``/``extractall`` are never used.  For tar archives the compression layer is
decoded here (gzip/bz2/lzma file objects, which decompress in bounded steps) and the
decoded stream is handed to ``tarfile`` in plain streaming mode (``"r|"``): tarfile's own
``"r|*"`` decompression inflates each 10 KiB input block in one unbounded call, which a
bzip2 bomb turns into hundreds of MB.  For zip archives ``zipfile`` parses the central
directory only; entry data is located, checked for overlaps and decoded here, again in
bounded chunks (``ZipExtFile`` decodes bzip2/lzma input without an output limit).

The package by concern: ``limits`` (caps, results, the error), ``messages`` (the
student's sentences), ``accounting`` (every decompressed byte counted), ``names`` (the
name rules), ``writing`` (no link followed), ``job`` (the common policy per member),
``tar_format`` and ``zip_format`` (the two readers); this module detects the format.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from grader.extract.job import _Job
from grader.extract.limits import (
    ARCHIVE_BOMB,
    BAD_ZIP_NAME,
    CD_TOO_LARGE,
    DEFAULT_LIMITS,
    EMPTY_ARCHIVE,
    NOT_AN_ARCHIVE,
    OVERLAPPING,
    Extracted,
    ExtractionError,
    ExtractLimits,
)
from grader.extract.tar_format import _extract_tar
from grader.extract.zip_format import _extract_zip

__all__ = ["ARCHIVE_BOMB", "BAD_ZIP_NAME", "CD_TOO_LARGE", "DEFAULT_LIMITS", "EMPTY_ARCHIVE",
           "NOT_AN_ARCHIVE", "OVERLAPPING", "ExtractLimits", "Extracted", "ExtractionError",
           "extract_archive"]


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    limits: ExtractLimits = DEFAULT_LIMITS,
    expected_top: Collection[str] = (),
) -> Extracted:
    """Extract ``archive`` into the empty directory ``dest`` following the module's policy.

    Raises :class:`ExtractionError` (leaving ``dest`` empty) when the archive breaks the
    policy, and ``ValueError`` when ``dest`` is not an existing empty directory.
    """
    _require_empty_dir(dest)
    try:
        job = _Job(dest, limits, archive.stat().st_size)
        with archive.open("rb") as fh:
            _extract_any(fh, job)
        return job.finish(expected_top)
    except BaseException:
        _empty_dir(dest)
        raise


def _require_empty_dir(dest: Path) -> None:
    """Refuse a destination that is not an existing, empty, real directory."""
    if dest.is_symlink() or not dest.is_dir():
        raise ValueError(f"{dest} is not a directory")
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")


def _empty_dir(dest: Path) -> None:
    """Remove everything inside ``dest`` (which we populated ourselves)."""
    for entry in os.scandir(dest):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)



def _sniff(fh: BinaryIO) -> str:
    """Identify the archive format from its first bytes."""
    head = fh.read(512)
    fh.seek(0)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) == 512 and (
        head[257:262] == b"ustar" or _tar_checksum_ok(head) or head == bytes(512)
    ):
        return "tar"  # an all-zero first block is an empty tar
    raise ExtractionError(NOT_AN_ARCHIVE)


def _tar_checksum_ok(block: bytes) -> bool:
    """Whether a 512-byte block carries a valid (v7) tar header checksum."""
    field_ = block[148:156].replace(b"\0", b" ").strip()
    if not field_ or any(c not in b"01234567" for c in field_):
        return False
    stored = int(field_, 8)
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(struct.unpack("148b", block[:148])) + 8 * 32
    signed += sum(struct.unpack("356b", block[156:]))
    return stored in (unsigned, signed)


def _extract_any(fh: BinaryIO, job: _Job) -> None:
    """Dispatch on the sniffed format."""
    kind = _sniff(fh)
    if kind == "zip":
        _extract_zip(fh, job)
    else:
        _extract_tar(fh, kind, job)
