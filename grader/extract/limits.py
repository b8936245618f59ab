"""Limits, results, the student-facing error and the shapes every reader shares."""

from __future__ import annotations

import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024
_MIB = 1024 * 1024
_RATIO_GRACE_BYTES = _MIB
# Tar headers, pax records and padding read on top of file contents, per entry.
_TAR_OVERHEAD_PER_MEMBER = 4096
# Central-directory bytes allowed per entry on top of the name (fixed part + extras).
_ZIP_CD_BYTES_PER_MEMBER = 46 + 1 + 512

NOT_AN_ARCHIVE = "This file is not a valid .tar, .tar.gz or .zip archive."
EMPTY_ARCHIVE = "The archive is empty."
ARCHIVE_BOMB = "The archive is too highly compressed (possible archive bomb)."
OVERLAPPING = "The archive has overlapping entries (possible archive bomb)."
BAD_ZIP_NAME = "The archive contains a file name that is not valid UTF-8."
CD_TOO_LARGE = "The archive's table of contents is too large."
_REGULAR_ONLY = "submit regular files only"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_JUNK_DIRS = frozenset({"__MACOSX", "__pycache__"})
_TAR_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
# Clean end-of-archive conditions in tarfile (undocumented, absent from typeshed).
_TAR_END_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(tarfile, name) for name in ("EOFHeaderError", "EmptyHeaderError")
)
# Errors that mean "the archive's bytes are bad" while reading or decoding them.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    struct.error,
    RecursionError,
)


class ExtractionError(Exception):
    """Raised with one friendly sentence for the student.

    For example ``"hw1/../x.py: paths may not contain '..'"``.
    """


@dataclass(frozen=True)
class ExtractLimits:
    """Caps applied while extracting; the defaults suit a course handin."""

    max_total_bytes: int = 64 * 1024 * 1024  # uncompressed bytes actually read
    max_members: int = 2000
    max_depth: int = 12
    max_name_bytes: int = 255  # one path component
    max_path_bytes: int = 1024
    max_ratio: float = 200.0  # uncompressed / archive file size, checked past 1 MiB read


@dataclass(frozen=True)
class Extracted:
    """What :func:`extract_archive` wrote."""

    root: Path  # the handin's top level (always ``dest``; a wrapper's contents are moved up)
    files: tuple[str, ...]  # posix paths of the regular files written, relative to root, sorted
    total_bytes: int
    stripped_prefix: str | None  # the wrapping folder that was removed, if any


DEFAULT_LIMITS = ExtractLimits()


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


@dataclass(frozen=True)
class _Member:
    """One archive entry, reduced to what the common policy needs."""

    name: str  # decoded name; undecodable bytes appear as surrogates
    is_dir: bool
    problem: str | None  # why its type is refused ("is a symbolic link; ...")
    chunks: Callable[[], Iterator[bytes]]  # the file's content, in bounded chunks
