"""Tar archives: bounded decompression, then tarfile in plain streaming mode."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO, Self

from grader.extract.accounting import _CountingReader
from grader.extract.job import _Job
from grader.extract.limits import (
    _REGULAR_ONLY,
    _TAR_END_ERRORS,
    _TAR_OVERHEAD_PER_MEMBER,
    _TAR_REGULAR,
    CHUNK,
    _Member,
    _Readable,
)
from grader.extract.messages import _corrupt, _opening, _reading, _reason


class _StrictTarInfo(tarfile.TarInfo):
    """TarInfo that reports a bad header after the first as corruption.

    tarfile silently treats a truncated or garbled header after the first one as the
    end of the archive; a handin cut short must not be graded as if it were complete.
    """

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> Self:
        """Read the next header, treating a bad one after the first as corruption."""
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as exc:
            if archive.offset == 0 or isinstance(exc, _TAR_END_ERRORS):
                raise
            raise _corrupt(f"bad header ({_reason(exc)})") from exc


@contextmanager
def _decompressed(fh: BinaryIO, kind: str) -> Iterator[_Readable]:
    """A reader that decompresses the tar stream in bounded steps."""
    if kind == "gz":
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            yield gz
    elif kind == "bz2":
        with bz2.BZ2File(fh) as bz:
            yield bz
    elif kind == "xz":
        with lzma.LZMAFile(fh) as xz:
            yield xz
    else:
        yield fh


def _extract_tar(fh: BinaryIO, kind: str, job: _Job) -> None:
    """Stream a (possibly compressed) tar archive member by member."""
    # Headers, pax records and padding are read too, and so is the content of skipped
    # entries, so the stream may exceed the content limit by a bounded overhead.
    job.budget.read_cap += _TAR_OVERHEAD_PER_MEMBER * (job.limits.max_members + 1)
    with _decompressed(fh, kind) as source:
        reader = _CountingReader(source, job.budget)
        with _opening():
            tf = tarfile.open(
                fileobj=reader,
                mode="r|",
                tarinfo=_StrictTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            )
        with tf:
            for info in _tar_infos(tf):
                chunks = partial(_tar_chunks, tf, info)
                job.add(_Member(info.name, info.isdir(), _tar_problem(info), chunks))


def _tar_infos(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Iterate the members, reporting read errors as corruption."""
    members = iter(tf)
    while True:
        with _reading():
            info = next(members, None)
        if info is None:
            return
        yield info


def _tar_problem(info: tarfile.TarInfo) -> str | None:
    """Why a tar member's type is refused, or None for files and directories."""
    if info.issym():
        return f"is a symbolic link; {_REGULAR_ONLY}"
    if info.islnk():
        return f"is a hard link; {_REGULAR_ONLY}"
    if info.ischr() or info.isblk() or info.isfifo():
        return f"is a special file (device or FIFO); {_REGULAR_ONLY}"
    if info.issparse():
        return f"has an unsupported type (sparse file); {_REGULAR_ONLY}"
    if info.isdir() or info.type in _TAR_REGULAR:
        return None
    code = info.type.decode("ascii", "replace")
    return f"has an unsupported type (tar type {code!r}); {_REGULAR_ONLY}"


def _tar_chunks(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[bytes]:
    """The current member's content in chunks."""
    with _reading():
        src = tf.extractfile(info)
    if src is None:
        return
    while True:
        with _reading():
            chunk = src.read(CHUNK)
        if not chunk:
            return
        yield chunk
